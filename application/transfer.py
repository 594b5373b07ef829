"""Export and import: owners' projects and tasks, out as records and back in.

Records are plain values with every field the API shows; the file formats
that carry them live in the entry points. An import is checked in full before
anything is stored, then stored in one transaction: all of it or none.
"""

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from typing import Any, Final, TypeVar

from application.loading import LineRejected
from application.ports import (
    Clock,
    OwnerData,
    TransferUnitOfWork,
    TransferUnitOfWorkFactory,
)
from application.queries import Page, ProjectQuery, TaskQuery, Window
from domain.errors import DomainError, IdTaken, InvalidValue, UserNotFound
from domain.projects import Project
from domain.tasks import Task
from domain.users import User, clean_user_name
from domain.values import Priority

# Rows per read of an export: memory stays a few batches whatever the total.
EXPORT_BATCH: Final = 1000
# Tasks per add_many of an import, as for `taskhub tasks load`.
IMPORT_BATCH: Final = 5000
# Bad lines reported before the check stops looking: enough to see a pattern.
MAX_REPORTED: Final = 20

E = TypeVar("E", Task, Project)
Q = TypeVar("Q", TaskQuery, ProjectQuery)


@dataclass(frozen=True, slots=True)
class ProjectRecord:
    """A project as exported; `owner` names its user in an export of all."""

    id: int
    name: str
    description: str | None
    archived: bool
    created_at: datetime
    updated_at: datetime
    version: int
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """A task as exported; `project_id` refers to a project record before it."""

    id: int
    title: str
    description: str | None
    done: bool
    completed_at: datetime | None
    priority: Priority
    due_date: date | None
    project_id: int | None
    created_at: datetime
    updated_at: datetime
    version: int
    owner: str | None = None


Record = ProjectRecord | TaskRecord

# Each kind's fields in file order, but the owner: what an entity gives a record.
PROJECT_FIELDS: Final = tuple(
    f.name for f in fields(ProjectRecord) if f.name != "owner"
)
TASK_FIELDS: Final = tuple(f.name for f in fields(TaskRecord) if f.name != "owner")

Line = tuple[int, Record | DomainError]
"""A record and the line it starts on, or why that line holds no record."""

Lines = Callable[[], Iterable[Line]]
"""Reads the input from its start, each time it is called (an import reads twice)."""

Progress = Callable[[int], None]


class RowsRejected(Exception):
    """Lines of the input broke rules (the first MAX_REPORTED of them, in
    order); nothing was stored."""

    def __init__(self, rejected: list[LineRejected], more: bool = False) -> None:
        super().__init__("\n".join(str(r) for r in rejected))
        self.rejected = rejected
        self.more = more


def _ignore(count: int) -> None:
    pass


def project_record(project: Project, owner: str | None) -> ProjectRecord:
    return ProjectRecord(**_fields_of(project, PROJECT_FIELDS), owner=owner)


def task_record(task: Task, owner: str | None) -> TaskRecord:
    return TaskRecord(**_fields_of(task, TASK_FIELDS), owner=owner)


def _fields_of(entity: Project | Task, names: tuple[str, ...]) -> dict[str, Any]:
    assert entity.id is not None
    return {name: getattr(entity, name) for name in names}


class Exporter:
    """One owner's projects and tasks, or every owner's, as a stream of records."""

    def __init__(
        self, uow: TransferUnitOfWorkFactory, batch_size: int = EXPORT_BATCH
    ) -> None:
        self._uow = uow
        self._batch_size = batch_size

    async def export(self, user: str | None) -> AsyncIterator[Record]:
        """The records of `user` (UserNotFound if there is none), or with None
        of every user in turn, each record naming its owner.

        Each owner's projects come first, then the tasks, each by id: the same
        data always gives the same records in the same order. They are read a
        batch at a time, so memory does not grow with their number.
        """
        async with self._uow(read_only=True) as uow:
            async for owner in self._owners(uow, user):
                assert owner.id is not None
                data = uow.owned_by(owner.id)
                name = None if user is not None else owner.name
                projects = self._walk(data.projects.list, ProjectQuery)
                async for project in projects:
                    yield project_record(project, name)
                async for task in self._walk(data.tasks.list, TaskQuery):
                    yield task_record(task, name)

    async def _owners(
        self, uow: TransferUnitOfWork, user: str | None
    ) -> AsyncIterator[User]:
        if user is not None:
            found = await uow.users.get_by_name(user)
            if found is None:
                raise UserNotFound(user)
            yield found
            return
        after = None
        while users := await uow.users.list_after(after, self._batch_size):
            for owner in users:
                yield owner
            after = users[-1].id

    def _walk(
        self, listing: Callable[[Q], Awaitable[Page[E]]], query_type: type[Q]
    ) -> AsyncIterator[E]:
        # Keyset pages by id, never counted (count_up_to=0): each read costs
        # the same however far the walk has got.
        query = query_type(
            sort="id",
            descending=False,
            window=Window(limit=self._batch_size),
            count_up_to=0,
        )
        return _pages(listing, query)


async def _pages(
    listing: Callable[[Q], Awaitable[Page[E]]], query: Q
) -> AsyncIterator[E]:
    while True:
        page = await listing(query)
        for entity in page.items:
            yield entity
        if page.next is None:
            return
        query = replace(query, after=page.next)


class Importer:
    """Store records for their owners, all or nothing.

    Every record is checked as the API checks what it stores (the entities'
    own rules), and refers only to projects before it in the input. With
    `keep_ids` the records keep their ids and timestamps (and versions);
    without, they get new ids, in input order, with the references between
    them remapped, and the time of the import as their timestamps.
    """

    def __init__(
        self,
        uow: TransferUnitOfWorkFactory,
        clock: Clock,
        batch_size: int = IMPORT_BATCH,
        max_reported: int = MAX_REPORTED,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._batch_size = batch_size
        self._max_reported = max_reported

    async def check(self, lines: Lines, user: str | None, keep_ids: bool) -> int:
        """How many records the input has; RowsRejected (every bad line, up to
        max_reported) if any line breaks a rule, UserNotFound for `user`.

        `user` receives every record; without it, each record's `owner` does.
        """
        if user is not None:
            await self._user_id(user)
        rules = _Rules(user, keep_ids, self._clock.now())
        rejected: list[LineRejected] = []
        count = 0
        for line, item in lines():
            try:
                if isinstance(item, DomainError):
                    raise item
                rules.entity(item)
                count += 1
            except DomainError as error:
                rejected.append(LineRejected(line, error))
                if len(rejected) > self._max_reported:
                    raise RowsRejected(rejected[:-1], more=True) from None
        if rejected:
            raise RowsRejected(rejected)
        return count

    async def store(
        self,
        lines: Lines,
        user: str | None,
        keep_ids: bool,
        progress: Progress = _ignore,
        checked: Progress = _ignore,
    ) -> int:
        """Check the input, then store it in one transaction; how many records.

        `checked` is told how many records there are once all passed the
        check; `progress` how many more were stored, as they are. Owners
        named by records that have no user yet are created, without tokens.
        RowsRejected as for `check`; IdTaken if a kept id is taken.
        """
        checked(await self.check(lines, user, keep_ids))
        rules = _Rules(user, keep_ids, self._clock.now())
        async with self._uow() as uow:
            writer = _Writer(uow, self._clock, self._batch_size, progress)
            for line, item in lines():
                try:
                    if isinstance(item, DomainError):
                        raise item
                    entity = rules.entity(item)
                    await writer.add(rules.owner(item), item.id, entity)
                except IdTaken as error:
                    if error.kind == "Task":  # from a batch: no one line to blame
                        raise
                    raise RowsRejected([LineRejected(line, error)]) from error
                except DomainError as error:
                    # Only what the check could not see: the database's state.
                    raise RowsRejected([LineRejected(line, error)]) from error
            await writer.flush()
            if keep_ids:
                await uow.advance_ids()
            await uow.commit()
        return writer.stored

    async def _user_id(self, name: str) -> int:
        async with self._uow(read_only=True) as uow:
            user = await uow.users.get_by_name(name)
        if user is None or user.id is None:
            raise UserNotFound(name)
        return user.id


class _Rules:
    """The rules over a whole input: each line checked with what came before it.

    Holds what later lines may clash with or refer to, never the records:
    each project's id and name, and with kept ids each task's id.
    """

    def __init__(self, user: str | None, keep_ids: bool, now: datetime) -> None:
        self._user = user
        self._keep_ids = keep_ids
        self._now = now
        self._projects: set[tuple[str, int]] = set()  # what tasks may refer to
        self._names: set[tuple[str, str]] = set()
        # Kept ids are ids in one table for all owners. New ids need none of
        # this: nothing refers to a task, so only projects' ids are held.
        self._kept: dict[str, set[int]] = {"project": set(), "task": set()}

    def owner(self, record: Record) -> str:
        name = self._user if self._user is not None else record.owner
        if name is None:
            raise InvalidValue("owner", "owner: the record names no user to own it.")
        return clean_user_name(name)

    def entity(self, record: Record) -> Task | Project:
        """The entity `record` stands for, as it is to be stored."""
        owner = self.owner(record)
        entity = (
            self._project(owner, record)
            if isinstance(record, ProjectRecord)
            else self._task(owner, record)
        )
        if self._keep_ids:
            entity.id = record.id
        else:
            entity.created_at = entity.updated_at = self._now
            entity.version = 1
            if isinstance(entity, Task) and entity.done:
                entity.completed_at = self._now
        return entity

    def _project(self, owner: str, record: ProjectRecord) -> Project:
        project = Project.restore(
            record.name,
            record.description,
            archived=record.archived,
            created_at=record.created_at,
            updated_at=record.updated_at,
            version=record.version,
        )
        if (owner, record.id) in self._projects:
            raise InvalidValue("id", f"id: another project has the id {record.id}.")
        self._keep("project", record.id)
        self._projects.add((owner, record.id))
        name = (owner, project.name_key)
        if name in self._names:
            raise InvalidValue(
                "name", f"name: another project of {owner} is named {project.name!r}."
            )
        self._names.add(name)
        return project

    def _task(self, owner: str, record: TaskRecord) -> Task:
        task = Task.restore(
            record.title,
            description=record.description,
            priority=record.priority,
            due_date=record.due_date,
            project_id=record.project_id,
            done=record.done,
            completed_at=record.completed_at,
            created_at=record.created_at,
            updated_at=record.updated_at,
            version=record.version,
        )
        project_id = record.project_id
        if project_id is not None and (owner, project_id) not in self._projects:
            raise InvalidValue(
                "project_id",
                f"project_id: no project {project_id} of {owner} comes before it.",
            )
        self._keep("task", record.id)
        return task

    def _keep(self, kind: str, record_id: int) -> None:
        if not self._keep_ids:
            return
        if record_id in self._kept[kind]:
            raise InvalidValue("id", f"id: another {kind} has the id {record_id}.")
        self._kept[kind].add(record_id)


class _Writer:
    """Stores checked entities in one transfer unit of work: projects one by
    one (their new ids are needed at once), tasks in batches per owner."""

    def __init__(
        self,
        uow: TransferUnitOfWork,
        clock: Clock,
        batch_size: int,
        progress: Progress,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._batch_size = batch_size
        self._progress = progress
        self._owners: dict[str, OwnerData] = {}
        self._project_ids: dict[tuple[str, int], int] = {}
        self._batch: list[Task] = []
        self._batch_owner: str | None = None
        self.stored = 0

    async def add(self, owner: str, record_id: int, entity: Task | Project) -> None:
        """Store `entity`, the record `record_id` of the input, for `owner`."""
        data = await self._data(owner)
        if isinstance(entity, Project):
            await self._flush_if(True)
            await data.projects.add(entity)
            assert entity.id is not None
            self._project_ids[owner, record_id] = entity.id
            self._count(1)
            return
        if entity.project_id is not None:
            entity.project_id = self._project_ids[owner, entity.project_id]
        await self._flush_if(owner != self._batch_owner)
        self._batch_owner = owner
        self._batch.append(entity)
        await self._flush_if(len(self._batch) >= self._batch_size)

    async def flush(self) -> None:
        await self._flush_if(True)

    async def _flush_if(self, needed: bool) -> None:
        if not needed or not self._batch:
            return
        assert self._batch_owner is not None
        data = await self._data(self._batch_owner)
        await data.tasks.add_many(self._batch)
        self._count(len(self._batch))
        self._batch = []

    def _count(self, stored: int) -> None:
        self.stored += stored
        self._progress(stored)

    async def _data(self, owner: str) -> OwnerData:
        if owner not in self._owners:
            user = await self._uow.users.get_by_name(owner)
            if user is None:
                user = User.create(owner, self._clock.now())
                await self._uow.users.add(user)
            assert user.id is not None
            self._owners[owner] = self._uow.owned_by(user.id)
        return self._owners[owner]
