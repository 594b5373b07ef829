"""The in-memory and the SQL adapter, driven through the same random use cases.

A Hypothesis state machine runs every step on two service stacks, one on
memory://, one on SQL (SQLite, and PostgreSQL where there is one), and checks
that both give the same outcome (the same entity or page, or the same domain
error) and afterwards hold the same rows. Each side assigns its own ids, so the
machine keeps every entity as a pair of ids and translates SQL ids before
comparing. Both stacks read one frozen clock, so their timestamps must agree to
the microsecond after a round trip through the database.

TASKHUB_STATEFUL_EXAMPLES and TASKHUB_STATEFUL_STEPS make a run longer or shorter.
"""

import asyncio
import os
import shutil
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any, Literal, TypeVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from hypothesis.strategies import SearchStrategy

from adapters.memory import InMemoryStore
from application.queries import (
    COUNT_CAP,
    PROJECT_SORT_FIELDS,
    TASK_SORT_FIELDS,
    Page,
    Position,
    ProjectQuery,
    TaskQuery,
    Window,
)
from application.services import CreateTask, ProjectService, TaskService
from domain.errors import DomainError
from domain.projects import NAME_MAX, Project, ProjectChanges
from domain.tasks import TITLE_MAX, Task, TaskChanges
from domain.values import DESCRIPTION_MAX, UNSET, Priority, Unset
from entrypoints.container import build_container
from entrypoints.settings import MEMORY_URL
from tests.conftest import test_settings
from tests.databases import run_sql
from tests.fakes import FrozenClock

T = TypeVar("T")
Side = Literal["memory", "sql"]

EXAMPLES = int(os.environ.get("TASKHUB_STATEFUL_EXAMPLES", "40"))
STEPS = int(os.environ.get("TASKHUB_STATEFUL_STEPS", "40"))

OWNERS = ("alice", "bob")
INT64_MAX = 2**63 - 1
# Far above any id a run can reach on either side, so "missing" means the same
# thing to both.
MISSING_IDS = st.integers(min_value=2**40, max_value=INT64_MAX)
# Whole listings in every order, one order per check in turn: each shows all
# rows, and ties (equal priorities, no due dates...) must break alike.
EVERYTHING = Window(limit=10_000)
ALL_TASKS = [
    TaskQuery(sort=sort, descending=descending, window=EVERYTHING)
    for sort in TASK_SORT_FIELDS
    for descending in (False, True)
]
ALL_PROJECTS = [
    ProjectQuery(sort=sort, descending=descending, window=EVERYTHING)
    for sort in PROJECT_SORT_FIELDS
    for descending in (False, True)
]
# Microseconds on the clock from the start, so a lost fraction shows; a moment
# before Europe's clocks change, should a local time sneak in anywhere.
START = datetime(2026, 3, 29, 0, 59, 59, 987_654, tzinfo=UTC)


# --- what the steps draw --------------------------------------------------------


def _mostly(usual: SearchStrategy[T], rare: SearchStrategy[T]) -> SearchStrategy[T]:
    """`usual` three times in four, else `rare` (shrinking towards `usual`)."""
    return st.integers(0, 3).flatmap(lambda n: rare if n == 3 else usual)


def _filter(values: SearchStrategy[T]) -> SearchStrategy[T | None]:
    """A filter one time in eight: several at once would leave nothing to list."""
    return st.integers(0, 7).flatmap(lambda n: values if n == 7 else st.none())


def _texts(*examples: str, min_size: int = 0) -> SearchStrategy[str]:
    """Random text (NUL included) or one of the examples that probe a rule."""
    return st.sampled_from(examples) | st.text(min_size=min_size, max_size=10)


TITLES = _texts(
    "Buy milk",
    "BUY MILK",
    "  padded  ",
    "",
    " \t\n",
    "Straße",
    "50%_off",
    "back\\slash",
    "💡 idea",
    "x" * TITLE_MAX,
    "💡" * TITLE_MAX,  # characters, not bytes or UTF-16 units, are counted
    " " + "x" * TITLE_MAX + " ",
    "x" * (TITLE_MAX + 1),
    "lone \ud800 surrogate",
)


def _spellings(name: str) -> list[str]:
    return [name, name.upper(), name.lower(), name.casefold(), f"  {name} "]


# Names that clash once casefolded, beyond what lower() folds (ß/SS, ǅ/Ǆ/ǆ),
# mostly; else random ones and the limits of a name's length.
NAMES = _mostly(
    st.sampled_from(["Home", "Straße", "ǅungla"]).flatmap(
        lambda name: st.sampled_from(_spellings(name))
    ),
    _texts(
        "a",
        " a ",
        "50%_off",
        "n" * NAME_MAX,
        "ß" * NAME_MAX,  # its casefolded key is twice as long
        "n" * (NAME_MAX + 1),
        "nul\x00",
        min_size=2,
    ),
)
DESCRIPTIONS = st.none() | _texts(
    "Two\nlines",
    "  ",
    "d" * DESCRIPTION_MAX,
    "d" * (DESCRIPTION_MAX + 1),
)
# What the API lets through as `q`: storable text, mostly LIKE's wildcards and
# escape (literal here) or casefolding. The use cases take any `q`, and an
# unstorable one differs by adapter (NUL: memory matches nothing, SQLite
# everything, PostgreSQL fails); only the HTTP schema keeps it out.
SEARCHES = _mostly(
    st.sampled_from(["%", "_", "\\", "%_", "milk", "SS", "ß", " "]),
    st.text(st.characters(exclude_characters="\x00"), max_size=3),
)
# Mostly a few nearby days, so filters and sorting meet equal and close dates.
DATES = st.dates(date(2026, 4, 1), date(2026, 4, 5)) | st.dates()
PRIORITIES = st.sampled_from(Priority)
# Often small pages, so listings span several (SQL counts only some pages).
WINDOWS = st.builds(
    Window,
    limit=st.integers(1, 5) | st.integers(1, 100),
    offset=_mostly(st.just(0), st.integers(1, 3) | st.integers(0, INT64_MAX)),
)
# How hard to count: the default cap, exactly, or a cap small enough to reach.
COUNT_CAPS = st.sampled_from([COUNT_CAP, None, 0, 2])
# Walks by position take small pages, so that they take several steps.
SMALL_WINDOWS = st.builds(Window, limit=st.integers(1, 4))
NEW_TASKS = st.builds(
    CreateTask,
    title=TITLES,
    description=DESCRIPTIONS,
    priority=PRIORITIES,
    due_date=st.none() | DATES,
)
# Acting on an entity: mostly its owner does; now and then the other owner does
# (and must not see it), or the owner names an id that never existed instead.
STRANGER = "stranger"
Twist = str | int | None  # None, STRANGER, or an id that never existed
TWISTS: SearchStrategy[Twist] = _mostly(st.none(), st.just(STRANGER) | MISSING_IDS)


def _unset_or(values: SearchStrategy[T]) -> SearchStrategy[T | Unset]:
    return st.just(UNSET) | values


@dataclass(frozen=True, slots=True)
class Ref:
    """One entity as both stacks know it: who created it and its id on each side."""

    owner: str
    memory: int
    sql: int


def _nth(refs: list[Ref], owner: str, n: int | None) -> Ref | None:
    """The `n`th (modulo) of the owner's `refs`, if any."""
    mine = [ref for ref in refs if ref.owner == owner]
    return None if n is None or not mine else mine[n % len(mine)]


def _missing(owner: str, entity_id: int) -> Ref:
    return Ref(owner, entity_id, entity_id)


MISSING = st.builds(_missing, st.sampled_from(OWNERS), MISSING_IDS)


@dataclass(frozen=True, slots=True)
class Refused:
    """A domain error, reduced to what both sides must agree on: its type and
    attributes (ids in messages differ by side, so the message is left out)."""

    error: type[DomainError]
    facts: dict[str, object]


def _refused(error: DomainError) -> Refused:
    facts = {k: v for k, v in vars(error).items() if k != "message"}
    return Refused(type(error), facts)


# --- the two stacks --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rows:
    tasks: Page[Task]
    projects: Page[Project]


class Stack:
    """The real container on one backend, with the shared clock swapped in."""

    def __init__(self, side: Side, url: str, clock: FrozenClock) -> None:
        self.side = side
        self.container = build_container(test_settings(url))
        self.container.clock.override(clock)
        # Memory's ids start elsewhere than SQL's, so every id the machine
        # forgets to translate shows (and a task's id is never a project's).
        self.container.memory_store.override(
            InMemoryStore(task_ids=count(1_001), project_ids=count(501))
        )
        self.tasks: TaskService = self.container.task_service()
        self.projects: ProjectService = self.container.project_service()
        self.owners: dict[str, int] = {}

    async def open(self) -> None:
        identity = self.container.identity_service()
        self.owners = {name: await identity.ensure_user(name) for name in OWNERS}

    async def rows(self, owner: str, check: int) -> Rows:
        """Everything `owner` has, read in one unit of work, in the `check`th order."""
        tasks = ALL_TASKS[check % len(ALL_TASKS)]
        projects = ALL_PROJECTS[check % len(ALL_PROJECTS)]
        async with self.container.unit_of_work(owner_id=self.owners[owner]) as uow:
            return Rows(await uow.tasks.list(tasks), await uow.projects.list(projects))

    async def close(self) -> None:
        if self.container.engine.initialized:
            await self.container.engine().dispose()

    def id(self, ref: Ref) -> int:
        return ref.memory if self.side == "memory" else ref.sql

    def optional_id(self, ref: Ref | Unset | None) -> int | Unset | None:
        return ref if ref is None or ref is UNSET else self.id(ref)


@dataclass
class SqlIds:
    """Which memory id each SQL id stands for, per kind of entity."""

    owners: dict[int, int] = field(default_factory=dict)
    tasks: dict[int, int] = field(default_factory=dict)
    projects: dict[int, int] = field(default_factory=dict)

    def entity(self, entity: Task | Project) -> Task | Project:
        """`entity` as read from SQL, with memory's ids in place of its own."""
        owner_id = self.owners[entity.owner_id]
        if isinstance(entity, Project):
            return replace(entity, id=self.projects[entity.id], owner_id=owner_id)
        project_id = entity.project_id
        return replace(
            entity,
            id=self.tasks[entity.id],
            owner_id=owner_id,
            project_id=None if project_id is None else self.projects[project_id],
        )

    def refused(self, error: DomainError) -> Refused:
        """`error` as raised on SQL, with memory's ids for the ids it names."""
        refused = _refused(error)
        facts = refused.facts
        # Ids the caller passed in: known ones translate, missing ones are equal.
        for key, known in (("task_id", self.tasks), ("project_id", self.projects)):
            value = facts.get(key)
            if isinstance(value, int):
                facts[key] = known.get(value, value)
        return refused


def _assert_utc(entity: Task | Project) -> None:
    """Read back as aware UTC datetimes, as the API prints them (that they keep
    every microsecond, comparing with memory's values shows)."""
    moments = [entity.created_at, entity.updated_at]
    if isinstance(entity, Task) and entity.completed_at is not None:
        moments.append(entity.completed_at)
    for moment in moments:
        assert moment.tzinfo is UTC, moment


def _followed(page: Page[Any]) -> Position | None:
    """A stand-in for the page's next position, alike on both sides: that it
    is after the last item (whose values are compared) or that there is none.
    (Its id, and with sort=id its value, are each side's own.)"""
    if page.next is None:
        return None
    last = page.items[-1]
    assert page.next.id == last.id, (page.next, last)
    return Position(None, 0)


# --- the machine -----------------------------------------------------------------


class MemoryAndSqlAgree(RuleBasedStateMachine):
    """Every rule runs a use case on both stacks and expects the same outcome."""

    tasks = Bundle("tasks")
    projects = Bundle("projects")
    # A task's project: none, or either owner's, or now and then one never made.
    project_of_a_task = _mostly(st.none() | projects, MISSING)

    def __init__(self, sql_url: str) -> None:
        super().__init__()
        self.clock = FrozenClock(START)
        self.ids = SqlIds()
        self.first_projects: list[Ref] = []
        self.checks = 0
        self.memory = Stack("memory", MEMORY_URL, self.clock)
        self.sql = Stack("sql", sql_url, self.clock)
        self.loop = asyncio.new_event_loop()  # ours, not pytest-asyncio's
        try:
            self._run(self.memory.open())
            self._run(self.sql.open())
        except BaseException:
            self.teardown()  # Hypothesis only tears down what it got back
            raise
        self.ids.owners = {
            self.sql.owners[name]: self.memory.owners[name] for name in OWNERS
        }

    def teardown(self) -> None:
        try:
            self._run(self.sql.close())
            self._run(self.memory.close())
            self._run(self.loop.shutdown_asyncgens())
            self._run(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()

    # --- a start: a few rows for both owners ---

    @initialize(
        target=projects,
        names=st.lists(
            st.tuples(st.sampled_from(OWNERS), NAMES), min_size=1, max_size=6
        ),
    )
    def some_projects(self, names: list[tuple[str, str]]) -> object:
        created = (self._create_project(owner, name) for owner, name in names)
        self.first_projects = [ref for ref in created if ref is not None]
        return multiple(*self.first_projects)

    @initialize(
        target=tasks,
        commands=st.lists(
            st.tuples(
                st.sampled_from(OWNERS), NEW_TASKS, _mostly(st.integers(), st.none())
            ),
            min_size=2,
            max_size=10,
        ),
    )
    def some_tasks(self, commands: list[tuple[str, CreateTask, int | None]]) -> object:
        # Into the owner's projects made so far, if some_projects ran first.
        created = [
            self._create_task(owner, command, _nth(self.first_projects, owner, n))
            for owner, command, n in commands
        ]
        return multiple(*(ref for ref in created if ref is not None))

    # --- tasks ---

    @rule(
        target=tasks,
        owner=st.sampled_from(OWNERS),
        command=NEW_TASKS,
        project=project_of_a_task,
        twist=TWISTS,
    )
    def create_task(
        self,
        owner: str,
        command: CreateTask,
        project: Ref | None,
        twist: Twist,
    ) -> object:
        # Into a project mostly as its owner, so that the task lands there.
        if project is not None:
            owner, project = self._aim(project, twist)
        return self._create_task(owner, command, project) or multiple()

    @rule(
        task=tasks,
        twist=TWISTS,
        title=_unset_or(TITLES),
        description=_unset_or(DESCRIPTIONS),
        done=_unset_or(st.booleans()),
        priority=_unset_or(PRIORITIES),
        due_date=_unset_or(st.none() | DATES),
        project=_unset_or(project_of_a_task),
    )
    def update_task(
        self,
        task: Ref,
        twist: Twist,
        title: str | Unset,
        description: str | Unset | None,
        done: bool | Unset,
        priority: Priority | Unset,
        due_date: date | Unset | None,
        project: Ref | Unset | None,
    ) -> None:
        changes = TaskChanges(
            title=title,
            description=description,
            done=done,
            priority=priority,
            due_date=due_date,
        )
        owner, task = self._aim(task, twist)
        self._expect_same(
            lambda s: s.tasks.update(
                s.owners[owner],
                s.id(task),
                replace(changes, project_id=s.optional_id(project)),
            )
        )

    @rule(task=tasks, twist=TWISTS)
    def delete_task(self, task: Ref, twist: Twist) -> None:
        owner, task = self._aim(task, twist)
        self._expect_same(lambda s: s.tasks.delete(s.owners[owner], s.id(task)))

    @rule(task=tasks, twist=TWISTS)
    def get_task(self, task: Ref, twist: Twist) -> None:
        owner, task = self._aim(task, twist)
        self._expect_same(lambda s: s.tasks.get(s.owners[owner], s.id(task)))

    @rule(
        owner=st.sampled_from(OWNERS),
        project=_filter(project_of_a_task),
        query=st.builds(
            TaskQuery,
            done=_filter(st.booleans()),
            priority=_filter(PRIORITIES),
            q=_mostly(st.none(), SEARCHES),
            due_before=_filter(DATES),
            due_after=_filter(DATES),
            sort=st.sampled_from(TASK_SORT_FIELDS),
            descending=st.booleans(),
            window=WINDOWS,
            count_up_to=COUNT_CAPS,
        ),
    )
    def list_tasks(self, owner: str, project: Ref | None, query: TaskQuery) -> None:
        self._expect_same(
            lambda s: s.tasks.list(
                s.owners[owner],
                replace(query, project_id=s.optional_id(project)),
            )
        )

    # --- projects ---

    @rule(target=projects, owner=st.sampled_from(OWNERS), name=NAMES)
    def create_project(self, owner: str, name: str) -> object:
        return self._create_project(owner, name) or multiple()

    @rule(
        project=projects,
        twist=TWISTS,
        name=_unset_or(NAMES),
        description=_unset_or(DESCRIPTIONS),
        archived=_unset_or(st.booleans()),
    )
    def update_project(
        self,
        project: Ref,
        twist: Twist,
        name: str | Unset,
        description: str | Unset | None,
        archived: bool | Unset,
    ) -> None:
        changes = ProjectChanges(name=name, description=description, archived=archived)
        owner, project = self._aim(project, twist)
        self._expect_same(
            lambda s: s.projects.update(s.owners[owner], s.id(project), changes)
        )

    @rule(project=projects, twist=TWISTS)
    def delete_project(self, project: Ref, twist: Twist) -> None:
        owner, project = self._aim(project, twist)
        self._expect_same(lambda s: s.projects.delete(s.owners[owner], s.id(project)))

    @rule(project=projects, twist=TWISTS)
    def get_project(self, project: Ref, twist: Twist) -> None:
        owner, project = self._aim(project, twist)
        self._expect_same(lambda s: s.projects.get(s.owners[owner], s.id(project)))

    @rule(
        owner=st.sampled_from(OWNERS),
        query=st.builds(
            ProjectQuery,
            q=_mostly(st.none(), SEARCHES),
            archived=_filter(st.booleans()),
            sort=st.sampled_from(PROJECT_SORT_FIELDS),
            descending=st.booleans(),
            window=WINDOWS,
            count_up_to=COUNT_CAPS,
        ),
    )
    def list_projects(self, owner: str, query: ProjectQuery) -> None:
        self._expect_same(lambda s: s.projects.list(s.owners[owner], query))

    @rule(
        owner=st.sampled_from(OWNERS),
        project=_filter(project_of_a_task),
        query=st.builds(
            TaskQuery,
            done=_filter(st.booleans()),
            priority=_filter(PRIORITIES),
            q=_mostly(st.none(), SEARCHES),
            due_before=_filter(DATES),
            due_after=_filter(DATES),
            sort=st.sampled_from(TASK_SORT_FIELDS),
            descending=st.booleans(),
            window=SMALL_WINDOWS,
            count_up_to=COUNT_CAPS,
        ),
    )
    def walk_tasks_by_positions(
        self, owner: str, project: Ref | None, query: TaskQuery
    ) -> None:
        def page(s: Stack, after: Position | None) -> Awaitable[object]:
            project_id = s.optional_id(project)
            listed = replace(query, project_id=project_id, after=after)
            return s.tasks.list(s.owners[owner], listed)

        self._walk(page)

    @rule(
        owner=st.sampled_from(OWNERS),
        query=st.builds(
            ProjectQuery,
            q=_mostly(st.none(), SEARCHES),
            archived=_filter(st.booleans()),
            sort=st.sampled_from(PROJECT_SORT_FIELDS),
            descending=st.booleans(),
            window=SMALL_WINDOWS,
            count_up_to=COUNT_CAPS,
        ),
    )
    def walk_projects_by_positions(self, owner: str, query: ProjectQuery) -> None:
        def page(s: Stack, after: Position | None) -> Awaitable[object]:
            return s.projects.list(s.owners[owner], replace(query, after=after))

        self._walk(page)

    @rule(
        project=projects,
        twist=TWISTS,
        query=st.builds(
            TaskQuery,
            done=_filter(st.booleans()),
            q=_mostly(st.none(), SEARCHES),
            sort=st.sampled_from(TASK_SORT_FIELDS),
            descending=st.booleans(),
            window=WINDOWS,
        ),
    )
    def list_tasks_of_project(
        self, project: Ref, twist: Twist, query: TaskQuery
    ) -> None:
        owner, project = self._aim(project, twist)
        self._expect_same(
            lambda s: s.projects.list_tasks(s.owners[owner], s.id(project), query)
        )

    # --- time, and the state after every step ---

    @rule(
        delta=st.timedeltas(
            min_value=timedelta(microseconds=1), max_value=timedelta(days=3)
        )
    )
    def time_passes(self, delta: timedelta) -> None:
        self.clock.advance(microseconds=delta // timedelta(microseconds=1))

    @invariant()
    def both_hold_the_same_rows(self) -> None:
        self.checks += 1
        for owner in OWNERS:
            memory = self._run(self.memory.rows(owner, self.checks))
            sql = self._run(self.sql.rows(owner, self.checks))
            self._same(memory.tasks, sql.tasks)
            self._same(memory.projects, sql.projects)

    # --- helpers ---

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def _aim(self, ref: Ref, twist: Twist) -> tuple[str, Ref]:
        """Who acts, on which ids: see TWISTS."""
        if twist == STRANGER:
            return next(owner for owner in OWNERS if owner != ref.owner), ref
        if isinstance(twist, int):
            return ref.owner, _missing(ref.owner, twist)
        return ref.owner, ref

    def _both(
        self, call: Callable[[Stack], Awaitable[object]]
    ) -> tuple[object, object]:
        """Run `call` on memory, then on SQL; a domain error is an outcome too."""
        self.clock.advance(microseconds=1)
        outcomes = []
        for stack in (self.memory, self.sql):
            try:
                outcomes.append(self._run(call(stack)))
            except DomainError as error:
                outcomes.append(error)
        return outcomes[0], outcomes[1]

    def _walk(
        self, page: Callable[[Stack, Position | None], Awaitable[object]]
    ) -> None:
        """Page through a listing on both sides, each resuming after its own
        last position; every page must agree, positions included."""
        after: dict[Side, Position | None] = {"memory": None, "sql": None}
        for _ in range(100):
            memory, sql = self._both(lambda s, after=after: page(s, after[s.side]))
            self._same(memory, sql)
            if not isinstance(memory, Page) or not isinstance(sql, Page):
                return
            if memory.next is None:
                return
            after = {"memory": memory.next, "sql": sql.next}
        raise AssertionError("a walk that never ends")

    def _expect_same(self, call: Callable[[Stack], Awaitable[object]]) -> None:
        self._same(*self._both(call))

    def _same(self, memory: object, sql: object) -> None:
        refused = isinstance(memory, DomainError), isinstance(sql, DomainError)
        assert refused[0] == refused[1], f"memory: {memory!r}, SQL: {sql!r}"
        assert self._from_sql(sql) == self._from_memory(memory)

    def _create_task(
        self, owner: str, command: CreateTask, project: Ref | None
    ) -> Ref | None:
        memory, sql = self._both(
            lambda s: s.tasks.create(
                s.owners[owner], replace(command, project_id=s.optional_id(project))
            )
        )
        return self._created(owner, memory, sql, self.ids.tasks)

    def _create_project(self, owner: str, name: str) -> Ref | None:
        memory, sql = self._both(
            lambda s: s.projects.create(s.owners[owner], name, "about " + name)
        )
        return self._created(owner, memory, sql, self.ids.projects)

    def _created(
        self, owner: str, memory: object, sql: object, known: dict[int, int]
    ) -> Ref | None:
        """The new entity's pair of ids, once both sides agree it exists."""
        if isinstance(memory, Task | Project) and isinstance(sql, Task | Project):
            known[sql.id] = memory.id
            self._same(memory, sql)
            return Ref(owner, memory.id, sql.id)
        self._same(memory, sql)
        return None

    def _from_memory(self, outcome: object) -> object:
        if isinstance(outcome, DomainError):
            return _refused(outcome)
        if isinstance(outcome, Page):
            return Page(outcome.items, outcome.total, _followed(outcome))
        return outcome

    def _from_sql(self, outcome: object) -> object:
        """The SQL outcome in memory's ids, to compare with memory's outcome."""
        if isinstance(outcome, DomainError):
            return self.ids.refused(outcome)
        if isinstance(outcome, Page):
            items = [self._from_sql(item) for item in outcome.items]
            return Page(items, outcome.total, _followed(outcome))
        if isinstance(outcome, Task | Project):
            _assert_utc(outcome)
            return self.ids.entity(outcome)
        return outcome


# --- the tests -------------------------------------------------------------------

SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    # Each step is a few database round trips; their time says nothing here.
    deadline=None,
    print_blob=True,  # a failure prints its steps and a blob to replay them
)


def _sqlite_urls(template: Path, directory: Path) -> Callable[[], str]:
    """A fresh copy of the migrated template per example (no WAL left over)."""
    path = directory / "stateful.db"

    def new_url() -> str:
        for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)
        shutil.copyfile(template, path)
        return f"sqlite+aiosqlite:///{path}"

    return new_url


def _postgres_urls(url: str) -> Callable[[], str]:
    """The run's PostgreSQL database, emptied before each example."""

    def new_url() -> str:
        run_sql(
            url, "TRUNCATE tasks, projects, api_tokens, users RESTART IDENTITY CASCADE"
        )
        return url

    return new_url


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_memory_and_sql_give_the_same_outcomes_step_by_step(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if backend == "sqlite":
        new_url = _sqlite_urls(request.getfixturevalue("sqlite_template"), tmp_path)
    else:
        new_url = _postgres_urls(request.getfixturevalue("postgres_database"))

    run_state_machine_as_test(
        lambda: MemoryAndSqlAgree(new_url()),
        settings=SETTINGS,
    )
