"""The TaskRepository contract, run against every adapter."""

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from application.queries import (
    TASK_SORT_FIELDS,
    Position,
    TaskQuery,
    TaskSortField,
    Window,
)
from domain.errors import ConcurrentUpdate, InvalidValue
from domain.projects import Project
from domain.tasks import TITLE_MAX, Task, TaskChanges
from domain.values import DESCRIPTION_MAX, Priority
from tests.contract.support import NewUnitOfWork, get_task, ids, list_tasks, save
from tests.fakes import TickingClock

EVERYTHING = Window(limit=1000)


# --- add, get, remove ---------------------------------------------------------


async def test_adding_a_task_gives_it_an_id(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    first = Task.create("First", clock.now())
    second = Task.create("Second", clock.now())
    assert first.id is None

    await save(new_uow, first, second)

    assert isinstance(first.id, int)
    assert isinstance(second.id, int)
    assert first.id != second.id


async def test_a_stored_task_reads_back_equal_in_every_field(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    project = Project.create("Household", None, clock.now())
    await save(new_uow, project)
    created = clock.now() + timedelta(microseconds=7)
    completed = clock.now() + timedelta(microseconds=999_001)
    task = Task.create(
        "Write the report",
        created,
        description="Two\nlines, ünïcode — and 💡",
        priority=Priority.URGENT,
        due_date=date(2026, 3, 31),
        project_id=project.id,
    )
    task.complete(completed)
    await save(new_uow, task)
    assert task.id is not None

    stored = await get_task(new_uow, task.id)

    assert stored == task
    assert stored is not None
    assert stored.version == 2
    assert stored.priority is Priority.URGENT
    assert type(stored.due_date) is date
    assert stored.created_at.microsecond == created.microsecond
    assert stored.completed_at is not None
    assert stored.completed_at.microsecond == completed.microsecond
    for moment in (stored.created_at, stored.updated_at, stored.completed_at):
        assert moment.utcoffset() == timedelta(0)
        assert moment.tzinfo == UTC


async def test_a_task_with_only_a_title_reads_back_with_its_none_fields(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    task = Task.create("Bare", clock.now())
    await save(new_uow, task)
    assert task.id is not None

    stored = await get_task(new_uow, task.id)

    assert stored == task
    assert stored is not None
    assert stored.description is None
    assert stored.due_date is None
    assert stored.project_id is None
    assert stored.completed_at is None
    assert stored.done is False
    assert stored.priority is Priority.NORMAL
    assert stored.version == 1


@pytest.mark.parametrize(
    ("moment", "due"),
    [
        pytest.param(datetime(1970, 1, 1, tzinfo=UTC), date(1, 1, 1), id="epoch"),
        pytest.param(
            datetime(1901, 12, 13, 20, 45, 52, 1, tzinfo=UTC),
            date(1900, 2, 28),
            id="before-the-epoch",
        ),
        pytest.param(
            datetime(2099, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
            date(9999, 12, 31),
            id="far-future",
        ),
    ],
)
async def test_extreme_dates_and_times_read_back_unchanged(
    new_uow: NewUnitOfWork, moment: datetime, due: date
) -> None:
    task = Task.create("Timeless", moment, due_date=due)
    task.complete(moment)
    await save(new_uow, task)
    assert task.id is not None

    stored = await get_task(new_uow, task.id)

    assert stored == task
    assert stored is not None
    assert stored.completed_at == moment
    assert stored.completed_at.tzinfo == UTC


async def test_the_longest_texts_the_domain_allows_read_back_unchanged(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    # Characters, not bytes: each of these is four bytes in UTF-8.
    task = Task.create(
        "💡" * TITLE_MAX, clock.now(), description="🚀" * DESCRIPTION_MAX
    )
    await save(new_uow, task)
    assert task.id is not None

    stored = await get_task(new_uow, task.id)

    assert stored == task


@pytest.mark.parametrize("priority", list(Priority))
async def test_every_priority_reads_back_as_itself(
    new_uow: NewUnitOfWork, clock: TickingClock, priority: Priority
) -> None:
    task = Task.create("Prioritised", clock.now(), priority=priority)
    await save(new_uow, task)
    assert task.id is not None

    stored = await get_task(new_uow, task.id)

    assert stored is not None
    assert stored.priority is priority


async def test_getting_an_unknown_id_gives_none(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    assert await get_task(new_uow, 1) is None
    task = Task.create("Exists", clock.now())
    await save(new_uow, task)
    assert task.id is not None

    assert await get_task(new_uow, task.id + 1000) is None


async def test_changing_a_fetched_task_without_update_stores_nothing(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    task = Task.create("Original", clock.now())
    await save(new_uow, task)
    assert task.id is not None

    async with new_uow() as uow:
        fetched = await uow.tasks.get(task.id)
        assert fetched is not None
        fetched.apply(TaskChanges(title="Changed"), clock.now())
        await uow.commit()

    assert await get_task(new_uow, task.id) == task


async def test_changing_a_listed_task_without_update_stores_nothing(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    task = Task.create("Original", clock.now())
    await save(new_uow, task)
    assert task.id is not None

    async with new_uow() as uow:
        (listed,) = (await uow.tasks.list(TaskQuery())).items
        listed.apply(TaskChanges(title="Changed"), clock.now())
        await uow.commit()

    assert await get_task(new_uow, task.id) == task


async def test_removing_a_task_returns_true_then_false(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    task = Task.create("Doomed", clock.now())
    await save(new_uow, task)
    assert task.id is not None

    async with new_uow() as uow:
        assert await uow.tasks.remove(task.id) is True
        assert await uow.tasks.remove(task.id) is False
        await uow.commit()
    async with new_uow() as uow:
        assert await uow.tasks.remove(task.id) is False

    assert await get_task(new_uow, task.id) is None


async def test_removing_an_unknown_task_returns_false_and_removes_nothing(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    task = Task.create("Bystander", clock.now())
    await save(new_uow, task)
    assert task.id is not None

    async with new_uow() as uow:
        assert await uow.tasks.remove(task.id + 1000) is False
        await uow.commit()

    assert await get_task(new_uow, task.id) == task


async def test_a_removed_tasks_id_is_never_given_to_a_new_task(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    first = Task.create("First", clock.now())
    second = Task.create("Second", clock.now())
    await save(new_uow, first, second)
    # Removing the highest id too: a plain SQLite rowid would hand it out again.
    async with new_uow() as uow:
        assert first.id is not None
        assert second.id is not None
        assert await uow.tasks.remove(first.id)
        assert await uow.tasks.remove(second.id)
        await uow.commit()

    third = Task.create("Third", clock.now())
    await save(new_uow, third)

    assert third.id not in {first.id, second.id}


# --- update and versions -------------------------------------------------------


async def test_an_update_with_the_expected_version_is_stored(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    home, work = (Project.create(n, None, clock.now()) for n in ("Home", "Work"))
    await save(new_uow, home, work)
    task = Task.create(
        "Before",
        clock.now(),
        description="old",
        priority=Priority.LOW,
        due_date=date(2026, 5, 1),
        project_id=home.id,
    )
    await save(new_uow, task)
    assert task.id is not None

    async with new_uow() as uow:
        loaded = await uow.tasks.get(task.id)
        assert loaded is not None
        version = loaded.version
        loaded.apply(
            TaskChanges(
                title="After",
                description=None,
                priority=Priority.HIGH,
                due_date=None,
                project_id=work.id,
                done=True,
            ),
            clock.now() + timedelta(microseconds=3),
        )
        await uow.tasks.update(loaded, expected_version=version)
        await uow.commit()

    stored = await get_task(new_uow, task.id)
    assert stored == loaded
    assert stored is not None
    assert stored.version == version + 1


async def test_an_update_can_clear_a_tasks_project(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    project = Project.create("Home", None, clock.now())
    await save(new_uow, project)
    task = Task.create("Homeless soon", clock.now(), project_id=project.id)
    await save(new_uow, task)

    task.apply(TaskChanges(project_id=None), clock.now())
    async with new_uow() as uow:
        await uow.tasks.update(task, expected_version=1)
        await uow.commit()

    assert task.id is not None
    stored = await get_task(new_uow, task.id)
    assert stored is not None
    assert stored.project_id is None


async def test_an_update_with_a_stale_version_raises_and_changes_nothing(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    task = Task.create("Contested", clock.now())
    await save(new_uow, task)
    assert task.id is not None
    mine, theirs = task.copy(), task.copy()

    theirs.apply(TaskChanges(title="Theirs"), clock.now())
    async with new_uow() as uow:
        await uow.tasks.update(theirs, expected_version=1)
        await uow.commit()

    mine.apply(TaskChanges(title="Mine"), clock.now())
    async with new_uow() as uow:
        with pytest.raises(ConcurrentUpdate):
            await uow.tasks.update(mine, expected_version=1)

    assert await get_task(new_uow, task.id) == theirs


async def test_an_update_expecting_a_newer_version_than_stored_raises(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    task = Task.create("Contested", clock.now())
    await save(new_uow, task)
    assert task.id is not None

    task.apply(TaskChanges(title="Ahead"), clock.now())
    async with new_uow() as uow:
        with pytest.raises(ConcurrentUpdate):
            await uow.tasks.update(task, expected_version=2)

    stored = await get_task(new_uow, task.id)
    assert stored is not None
    assert (stored.title, stored.version) == ("Contested", 1)


async def test_updating_a_removed_task_raises_concurrent_update(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    task = Task.create("Gone", clock.now())
    await save(new_uow, task)
    assert task.id is not None
    async with new_uow() as uow:
        await uow.tasks.remove(task.id)
        await uow.commit()

    task.apply(TaskChanges(title="Back?"), clock.now())
    async with new_uow() as uow:
        with pytest.raises(ConcurrentUpdate):
            await uow.tasks.update(task, expected_version=1)

    assert await get_task(new_uow, task.id) is None


async def test_the_stored_version_round_trips_through_updates(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    task = Task.create("Busy", clock.now())
    await save(new_uow, task)
    assert task.id is not None

    for n in range(3):
        expected = task.version
        task.apply(TaskChanges(title=f"Busy {n}"), clock.now())
        async with new_uow() as uow:
            await uow.tasks.update(task, expected_version=expected)
            await uow.commit()

    stored = await get_task(new_uow, task.id)
    assert stored is not None
    assert stored.version == task.version == 4


# --- filters -------------------------------------------------------------------


@pytest.fixture
async def filterable(new_uow: NewUnitOfWork, clock: TickingClock) -> dict[str, Any]:
    """Six tasks across two projects and none; returns projects by name."""
    home, work = (Project.create(n, None, clock.now()) for n in ("Home", "Work"))
    await save(new_uow, home, work)
    rows = [
        # title, done, project, priority, due date
        ("Buy milk", False, home, Priority.NORMAL, date(2026, 2, 10)),
        ("Pay rent", True, home, Priority.HIGH, date(2026, 2, 1)),
        ("Write report", False, work, Priority.URGENT, date(2026, 2, 15)),
        ("Review PR", True, work, Priority.NORMAL, None),
        ("Call mum", False, None, Priority.LOW, None),
        ("Plan trip", False, None, Priority.HIGH, date(2026, 2, 20)),
    ]
    tasks = []
    for title, done, project, priority, due in rows:
        task = Task.create(
            title,
            clock.now(),
            priority=priority,
            due_date=due,
            project_id=None if project is None else project.id,
        )
        if done:
            task.complete(clock.now())
        tasks.append(task)
    await save(new_uow, *tasks)
    return {"Home": home.id, "Work": work.id}


FILTERS: list[tuple[dict[str, Any], set[str]]] = [
    (
        {},
        {"Buy milk", "Pay rent", "Write report", "Review PR", "Call mum", "Plan trip"},
    ),
    ({"done": True}, {"Pay rent", "Review PR"}),
    ({"done": False}, {"Buy milk", "Write report", "Call mum", "Plan trip"}),
    ({"project": "Home"}, {"Buy milk", "Pay rent"}),
    ({"project": "Work"}, {"Write report", "Review PR"}),
    ({"priority": Priority.LOW}, {"Call mum"}),
    ({"priority": Priority.NORMAL}, {"Buy milk", "Review PR"}),
    ({"priority": Priority.HIGH}, {"Pay rent", "Plan trip"}),
    ({"priority": Priority.URGENT}, {"Write report"}),
    # Strict bounds; tasks without a due date match neither.
    ({"due_before": date(2026, 2, 15)}, {"Buy milk", "Pay rent"}),
    ({"due_before": date(2026, 2, 1)}, set()),
    ({"due_before": date(2026, 2, 2)}, {"Pay rent"}),
    ({"due_after": date(2026, 2, 10)}, {"Write report", "Plan trip"}),
    ({"due_after": date(2026, 2, 20)}, set()),
    ({"due_after": date(2026, 2, 19)}, {"Plan trip"}),
    (
        {"due_after": date(2026, 2, 1), "due_before": date(2026, 2, 20)},
        {"Buy milk", "Write report"},
    ),
    ({"due_after": date(2026, 2, 15), "due_before": date(2026, 2, 10)}, set()),
    ({"done": False, "project": "Work"}, {"Write report"}),
    ({"done": True, "project": "Home"}, {"Pay rent"}),
    ({"done": False, "priority": Priority.HIGH}, {"Plan trip"}),
    ({"project": "Home", "priority": Priority.HIGH}, {"Pay rent"}),
    ({"project": "Work", "priority": Priority.LOW}, set()),
    ({"project": "Home", "due_after": date(2026, 2, 5)}, {"Buy milk"}),
    (
        {"done": False, "due_before": date(2026, 3, 1)},
        {"Buy milk", "Write report", "Plan trip"},
    ),
    ({"q": "R", "done": True}, {"Pay rent", "Review PR"}),
    ({"q": "r", "done": False, "project": "Work"}, {"Write report"}),
    (
        {
            "done": False,
            "project": "Home",
            "priority": Priority.NORMAL,
            "q": "MILK",
            "due_after": date(2026, 2, 9),
            "due_before": date(2026, 2, 11),
        },
        {"Buy milk"},
    ),
]


@pytest.mark.parametrize(("filters", "expected"), FILTERS)
async def test_the_listing_holds_exactly_the_tasks_matching_every_filter(
    new_uow: NewUnitOfWork,
    filterable: dict[str, int],
    filters: dict[str, Any],
    expected: set[str],
) -> None:
    filters = dict(filters)
    if "project" in filters:
        filters["project_id"] = filterable[filters.pop("project")]

    page = await list_tasks(new_uow, TaskQuery(**filters, window=EVERYTHING))

    assert {task.title for task in page.items} == expected
    assert len(page.items) == len(expected)
    assert page.total == len(expected)


async def test_filtering_by_a_project_without_tasks_finds_nothing(
    new_uow: NewUnitOfWork, clock: TickingClock, filterable: dict[str, int]
) -> None:
    empty = Project.create("Empty", None, clock.now())
    await save(new_uow, empty)

    page = await list_tasks(new_uow, TaskQuery(project_id=empty.id))

    assert (page.items, page.total) == ([], 0)


TITLES = [
    "Ärger mit dem Amt",
    "Kein ÄRGER, doch",
    "ärgerlich",
    "Arger ohne Umlaut",
    "Straße fegen",
    "Buy MILK",
    "50% off sale",
    "500 off sale",
    "snake_case name",
    "snakeXcase name",
    "C:\\temp\\file",
    "C:tempfile",
]

SEARCHES = [
    ("ÄRGER", {"Ärger mit dem Amt", "Kein ÄRGER, doch", "ärgerlich"}),
    ("ärger", {"Ärger mit dem Amt", "Kein ÄRGER, doch", "ärgerlich"}),
    ("Ärger mit", {"Ärger mit dem Amt"}),
    ("milk", {"Buy MILK"}),
    ("bUy mI", {"Buy MILK"}),
    ("ILK", {"Buy MILK"}),
    ("STRASSE", {"Straße fegen"}),
    ("%", {"50% off sale"}),
    ("0%", {"50% off sale"}),
    ("5%0", set()),
    ("_", {"snake_case name"}),
    ("e_c", {"snake_case name"}),
    ("\\", {"C:\\temp\\file"}),
    ("\\t", {"C:\\temp\\file"}),
    (":\\temp\\", {"C:\\temp\\file"}),
    ("no such title", set()),
]


@pytest.mark.parametrize(("q", "expected"), SEARCHES)
async def test_q_matches_a_case_insensitive_literal_substring_of_the_title(
    new_uow: NewUnitOfWork, clock: TickingClock, q: str, expected: set[str]
) -> None:
    await save(new_uow, *(Task.create(title, clock.now()) for title in TITLES))

    page = await list_tasks(new_uow, TaskQuery(q=q, window=EVERYTHING))

    assert {task.title for task in page.items} == expected
    assert page.total == len(expected)


# --- sorting -------------------------------------------------------------------


def _none_last(value: Any) -> tuple[bool, Any]:
    return value is None, value


# The contract's orderings, written out independently of any adapter.
TASK_ORDER: dict[str, Callable[[Task], Any]] = {
    "id": lambda t: t.id,
    "created_at": lambda t: t.created_at,
    "updated_at": lambda t: t.updated_at,
    "due_date": lambda t: _none_last(t.due_date),
    "priority": lambda t: t.priority.rank,
    "title": lambda t: t.title.casefold(),
}


def expected_ids(
    tasks: list[Task], field: TaskSortField, descending: bool
) -> list[int | None]:
    key = TASK_ORDER[field]
    ascending = [t.id for t in sorted(tasks, key=lambda t: (key(t), t.id))]
    return ascending[::-1] if descending else ascending


@pytest.fixture
async def sortable(new_uow: NewUnitOfWork, clock: TickingClock) -> list[Task]:
    """Six tasks with ties in every sort field, each field ordering them differently."""
    created = [clock.now() for _ in range(4)]
    updated = [clock.now() for _ in range(5)]
    rows = [
        # title, created, updated, due date, priority
        ("banana", created[2], updated[3], date(2026, 3, 2), Priority.NORMAL),
        ("Apple", created[0], updated[4], None, Priority.HIGH),
        ("cherry", created[2], updated[0], date(2026, 3, 1), Priority.LOW),
        ("apple", created[1], updated[3], date(2026, 3, 2), Priority.URGENT),
        ("Date", created[3], updated[1], None, Priority.NORMAL),
        ("elderberry", created[0], updated[2], date(2026, 2, 28), Priority.HIGH),
    ]
    tasks = []
    for title, created_at, updated_at, due, priority in rows:
        task = Task.create(title, created_at, priority=priority, due_date=due)
        task.apply(TaskChanges(description=f"about {title}"), updated_at)
        tasks.append(task)
    await save(new_uow, *tasks)
    return tasks


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
@pytest.mark.parametrize("field", TASK_SORT_FIELDS)
async def test_tasks_sort_by_every_field_with_ties_broken_by_id_the_same_way(
    new_uow: NewUnitOfWork,
    sortable: list[Task],
    field: TaskSortField,
    descending: bool,
) -> None:
    query = TaskQuery(sort=field, descending=descending, window=EVERYTHING)

    page = await list_tasks(new_uow, query)

    assert ids(page) == expected_ids(sortable, field, descending)


@pytest.mark.parametrize("field", TASK_SORT_FIELDS)
async def test_descending_order_is_the_exact_reverse_of_ascending(
    new_uow: NewUnitOfWork, sortable: list[Task], field: TaskSortField
) -> None:
    up = await list_tasks(
        new_uow, TaskQuery(sort=field, descending=False, window=EVERYTHING)
    )
    down = await list_tasks(
        new_uow, TaskQuery(sort=field, descending=True, window=EVERYTHING)
    )

    assert ids(down) == ids(up)[::-1]
    assert len(up.items) == len(sortable)


async def test_priority_sorts_by_rank_from_low_to_urgent(
    new_uow: NewUnitOfWork, sortable: list[Task]
) -> None:
    page = await list_tasks(
        new_uow, TaskQuery(sort="priority", descending=False, window=EVERYTHING)
    )

    assert [t.priority for t in page.items] == [
        Priority.LOW,
        Priority.NORMAL,
        Priority.NORMAL,
        Priority.HIGH,
        Priority.HIGH,
        Priority.URGENT,
    ]


async def test_tasks_without_a_due_date_sort_last_ascending_and_first_descending(
    new_uow: NewUnitOfWork, sortable: list[Task]
) -> None:
    dated = [date(2026, 2, 28), date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 2)]

    up = await list_tasks(
        new_uow, TaskQuery(sort="due_date", descending=False, window=EVERYTHING)
    )
    down = await list_tasks(
        new_uow, TaskQuery(sort="due_date", descending=True, window=EVERYTHING)
    )

    assert [t.due_date for t in up.items] == [*dated, None, None]
    assert [t.due_date for t in down.items] == [None, None, *dated[::-1]]


async def test_titles_sort_case_insensitively(
    new_uow: NewUnitOfWork, sortable: list[Task]
) -> None:
    page = await list_tasks(
        new_uow, TaskQuery(sort="title", descending=False, window=EVERYTHING)
    )

    assert [t.title.lower() for t in page.items] == [
        "apple",
        "apple",
        "banana",
        "cherry",
        "date",
        "elderberry",
    ]


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
async def test_titles_sort_by_their_casefolded_text_alike_on_every_backend(
    new_uow: NewUnitOfWork, clock: TickingClock, descending: bool
) -> None:
    # Spaces, punctuation and accents: a database's linguistic collation would
    # order these differently from the in-memory adapter.
    titles = ["zebra", "Äpfel", "a-b", "apple", "äpfel", "ab", "a b", "Zulu", "Éclair"]
    tasks = [Task.create(title, clock.now()) for title in titles]
    await save(new_uow, *tasks)

    page = await list_tasks(
        new_uow, TaskQuery(sort="title", descending=descending, window=EVERYTHING)
    )

    assert ids(page) == expected_ids(tasks, "title", descending)
    assert [t.title.casefold() for t in page.items][:3] == (
        ["éclair", "äpfel", "äpfel"] if descending else ["a b", "a-b", "ab"]
    )


async def test_the_default_listing_puts_the_newest_created_first(
    new_uow: NewUnitOfWork, sortable: list[Task]
) -> None:
    page = await list_tasks(new_uow, TaskQuery())

    assert ids(page) == expected_ids(sortable, "created_at", descending=True)


# --- pagination ----------------------------------------------------------------


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
@pytest.mark.parametrize("field", TASK_SORT_FIELDS)
async def test_pages_cover_the_whole_ordering_without_overlap_or_gaps(
    new_uow: NewUnitOfWork,
    sortable: list[Task],
    field: TaskSortField,
    descending: bool,
) -> None:
    everything = expected_ids(sortable, field, descending)

    for limit in (1, 2, 3, 4, 6):
        walked: list[int | None] = []
        for offset in range(0, len(sortable) + limit, limit):
            query = TaskQuery(
                sort=field,
                descending=descending,
                window=Window(limit=limit, offset=offset),
            )
            page = await list_tasks(new_uow, query)
            assert page.total == len(sortable), (limit, offset)
            walked.extend(ids(page))
        assert walked == everything, limit


@pytest.mark.parametrize(
    ("limit", "offset", "on_page"),
    [
        pytest.param(2, 0, 2, id="first-page-of-several"),
        pytest.param(4, 4, 2, id="partial-last-page"),
        pytest.param(3, 3, 3, id="exactly-full-last-page"),
        pytest.param(6, 0, 6, id="one-exactly-full-page"),
        pytest.param(10, 0, 6, id="one-partial-page"),
        pytest.param(5, 1, 5, id="exactly-full-page-at-an-odd-offset"),
        pytest.param(3, 6, 0, id="offset-at-the-end"),
        pytest.param(3, 50, 0, id="offset-past-the-end"),
    ],
)
async def test_the_total_counts_every_match_whatever_the_window(
    new_uow: NewUnitOfWork,
    sortable: list[Task],
    limit: int,
    offset: int,
    on_page: int,
) -> None:
    query = TaskQuery(sort="id", descending=False, window=Window(limit, offset))

    page = await list_tasks(new_uow, query)

    assert len(page.items) == on_page
    assert page.total == 6
    assert ids(page) == expected_ids(sortable, "id", False)[offset : offset + limit]


@pytest.mark.parametrize(
    ("limit", "offset", "on_page"),
    [
        pytest.param(1, 0, 1, id="full-page-of-several"),
        pytest.param(1, 1, 1, id="exactly-full-last-page"),
        pytest.param(3, 1, 1, id="partial-last-page"),
        pytest.param(2, 2, 0, id="offset-at-the-end"),
        pytest.param(1, 9, 0, id="offset-past-the-end"),
    ],
)
async def test_the_total_counts_only_the_matching_tasks(
    new_uow: NewUnitOfWork,
    sortable: list[Task],
    limit: int,
    offset: int,
    on_page: int,
) -> None:
    query = TaskQuery(priority=Priority.HIGH, window=Window(limit, offset))

    page = await list_tasks(new_uow, query)

    assert len(page.items) == on_page
    assert all(t.priority is Priority.HIGH for t in page.items)
    assert page.total == 2


async def test_an_empty_repository_lists_nothing_and_counts_zero(
    new_uow: NewUnitOfWork,
) -> None:
    page = await list_tasks(new_uow, TaskQuery())

    assert (page.items, page.total) == ([], 0)


async def _walk(
    new_uow: NewUnitOfWork, query: TaskQuery, limit: int
) -> tuple[list[int | None], list[int | None]]:
    """Every page from the start, each resumed after the last; ids and totals."""
    walked: list[int | None] = []
    totals: list[int | None] = []
    after: Position | None = None
    for _ in range(100):
        page = await list_tasks(
            new_uow, replace(query, after=after, window=Window(limit=limit))
        )
        walked.extend(ids(page))
        totals.append(page.total)
        if page.next is None:
            return walked, totals
        assert len(page.items) == limit
        after = page.next
    raise AssertionError("the walk never ended")


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
@pytest.mark.parametrize("field", TASK_SORT_FIELDS)
async def test_walking_by_positions_gives_exactly_the_whole_ordering(
    new_uow: NewUnitOfWork,
    sortable: list[Task],
    field: TaskSortField,
    descending: bool,
) -> None:
    # `sortable` has ties in every field and two tasks without a due date.
    everything = expected_ids(sortable, field, descending)

    for limit in (1, 2, 4, 5, 6, 7):
        query = TaskQuery(sort=field, descending=descending)
        walked, totals = await _walk(new_uow, query, limit)
        assert walked == everything, limit
        # Only a first page that holds everything knows the total uncounted;
        # the first page of several counts; resumed pages do not count.
        assert totals[0] == len(sortable)
        assert totals[1:] == [None] * (len(totals) - 1)


async def test_a_page_followed_by_more_gives_the_position_of_its_last_item(
    new_uow: NewUnitOfWork, sortable: list[Task]
) -> None:
    query = TaskQuery(sort="due_date", descending=False, window=Window(limit=4))

    page = await list_tasks(new_uow, query)
    last = page.items[-1]

    assert last.id is not None
    assert page.next == Position(last.due_date, last.id)


@pytest.mark.parametrize("limit", [5, 6, 100])
async def test_the_last_page_gives_no_position(
    new_uow: NewUnitOfWork, sortable: list[Task], limit: int
) -> None:
    walked, _ = await _walk(new_uow, TaskQuery(sort="id"), limit)

    assert len(walked) == len(sortable)
    page = await list_tasks(new_uow, TaskQuery(window=Window(limit=6)))
    assert page.next is None


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
async def test_positions_among_tasks_without_a_due_date_resume_in_order(
    new_uow: NewUnitOfWork, clock: TickingClock, descending: bool
) -> None:
    dates = [None, date(2026, 5, 1), None, None, date(2026, 5, 1), date(2026, 4, 1)]
    tasks = [Task.create(f"t{n}", clock.now(), due_date=d) for n, d in enumerate(dates)]
    await save(new_uow, *tasks)
    everything = expected_ids(tasks, "due_date", descending)

    for limit in (1, 2, 3):
        walked, _ = await _walk(
            new_uow, TaskQuery(sort="due_date", descending=descending), limit
        )
        assert walked == everything, limit


async def test_a_walk_by_positions_keeps_the_filters(
    new_uow: NewUnitOfWork, filterable: dict[str, int]
) -> None:
    query = TaskQuery(done=False, sort="title", descending=False)

    walked, _ = await _walk(new_uow, query, limit=1)
    whole = await list_tasks(new_uow, replace(query, window=EVERYTHING))

    assert walked == ids(whole)
    assert len(walked) == 4


async def test_tasks_added_or_removed_during_a_walk_shift_none_of_the_others(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    tasks = [Task.create(f"task {n}", clock.now()) for n in range(6)]
    await save(new_uow, *tasks)
    query = TaskQuery(sort="created_at", descending=True, window=Window(limit=2))

    first = await list_tasks(new_uow, query)
    # Meanwhile: a newer task (before the walk's position), and one of the
    # next page's tasks is deleted.
    await save(new_uow, Task.create("newest", clock.now()))
    removed = tasks[3].id
    assert removed is not None
    async with new_uow() as uow:
        assert await uow.tasks.remove(removed)
        await uow.commit()
    walked = ids(first)
    after = first.next
    while after is not None:
        page = await list_tasks(new_uow, replace(query, after=after))
        walked.extend(ids(page))
        after = page.next

    newest_first = [t.id for t in reversed(tasks)]
    assert walked == [i for i in newest_first if i != removed]


@pytest.mark.parametrize(
    ("window", "cap", "total"),
    [
        pytest.param(Window(2, 0), 6, 6, id="counted-at-the-cap"),
        pytest.param(Window(2, 0), 5, None, id="counted-above-the-cap"),
        pytest.param(Window(2, 4), 3, 6, id="a-last-page-tells-it-whatever-the-cap"),
        pytest.param(Window(2, 2), 3, None, id="seen-above-the-cap-uncounted"),
        pytest.param(Window(2, 2), None, 6, id="exact"),
        pytest.param(Window(2, 9), 3, None, id="past-the-end-above-the-cap"),
        pytest.param(Window(2, 9), 6, 6, id="past-the-end-at-the-cap"),
        pytest.param(Window(6, 0), 0, 6, id="one-page-holds-everything"),
    ],
)
async def test_the_total_is_exact_up_to_the_cap_and_none_above(
    new_uow: NewUnitOfWork,
    sortable: list[Task],
    window: Window,
    cap: int | None,
    total: int | None,
) -> None:
    query = TaskQuery(sort="id", window=window, count_up_to=cap)

    page = await list_tasks(new_uow, query)

    assert page.total == total
    everything = expected_ids(sortable, "id", True)
    assert ids(page) == everything[window.offset :][: window.limit]


async def test_a_resumed_page_is_counted_only_when_asked_for_exactly(
    new_uow: NewUnitOfWork, sortable: list[Task]
) -> None:
    first = await list_tasks(new_uow, TaskQuery(window=Window(limit=2)))

    resumed = TaskQuery(window=Window(limit=2), after=first.next)
    assert (await list_tasks(new_uow, resumed)).total is None
    exact = replace(resumed, count_up_to=None)
    assert (await list_tasks(new_uow, exact)).total == len(sortable)


# --- count_in_project ----------------------------------------------------------


async def test_count_in_project_counts_the_projects_tasks_done_or_not(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    busy, idle = (Project.create(n, None, clock.now()) for n in ("Busy", "Idle"))
    await save(new_uow, busy, idle)
    done = Task.create("Done", clock.now(), project_id=busy.id)
    done.complete(clock.now())
    await save(
        new_uow,
        done,
        Task.create("Open", clock.now(), project_id=busy.id),
        Task.create("Loose", clock.now()),
    )
    assert busy.id is not None
    assert idle.id is not None

    async with new_uow() as uow:
        assert await uow.tasks.count_in_project(busy.id) == 2
        assert await uow.tasks.count_in_project(idle.id) == 0
        assert await uow.tasks.count_in_project(busy.id + idle.id + 1000) == 0


async def test_count_in_project_follows_removals_and_moves(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    first, second = (Project.create(n, None, clock.now()) for n in ("One", "Two"))
    await save(new_uow, first, second)
    staying = Task.create("Staying", clock.now(), project_id=first.id)
    leaving = Task.create("Leaving", clock.now(), project_id=first.id)
    moving = Task.create("Moving", clock.now(), project_id=first.id)
    await save(new_uow, staying, leaving, moving)
    assert first.id is not None
    assert second.id is not None
    assert leaving.id is not None

    async with new_uow() as uow:
        await uow.tasks.remove(leaving.id)
        moving.apply(TaskChanges(project_id=second.id), clock.now())
        await uow.tasks.update(moving, expected_version=1)
        await uow.commit()

    async with new_uow() as uow:
        assert await uow.tasks.count_in_project(first.id) == 1
        assert await uow.tasks.count_in_project(second.id) == 1


# --- the project a task points at -----------------------------------------------


async def test_a_task_naming_a_missing_project_is_rejected_on_add_and_update(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    orphan = Task.create("Orphan", clock.now(), project_id=999)
    with pytest.raises(InvalidValue) as error:
        await save(new_uow, orphan)
    assert error.value.field == "project_id"

    task = Task.create("Loose", clock.now())
    await save(new_uow, task)
    assert task.id is not None
    version = task.version
    task.apply(TaskChanges(project_id=999), clock.now())
    async with new_uow() as uow:
        with pytest.raises(InvalidValue):
            await uow.tasks.update(task, expected_version=version)

    stored = await get_task(new_uow, task.id)
    assert stored is not None
    assert (stored.project_id, stored.version) == (None, 1)
    async with new_uow() as uow:
        assert await uow.tasks.count_in_project(999) == 0
