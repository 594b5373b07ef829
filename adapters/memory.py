"""An in-memory implementation of the ports: a real adapter, not only a test double.

`TASKHUB_DATABASE_URL=memory://` serves from it. One unit of work at a time holds
the store's lock, so units of work are serialisable, and a rollback restores the
snapshot taken when the unit of work began.
"""

import asyncio
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar

from application.queries import Page, ProjectQuery, TaskQuery, Window
from domain.errors import (
    ConcurrentUpdate,
    InvalidValue,
    ProjectHasTasks,
    ProjectNameTaken,
)
from domain.projects import Project
from domain.tasks import Task
from domain.values import search_key

E = TypeVar("E", Task, Project)


@dataclass
class InMemoryStore:
    """The data itself; lives as long as the process (one per container)."""

    tasks: dict[int, Task] = field(default_factory=dict)
    projects: dict[int, Project] = field(default_factory=dict)
    task_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    project_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _sort_key(value: Any) -> tuple[bool, Any]:
    # None sorts last; descending is the exact reverse (NULLS FIRST), as in SQL.
    return value is None, value


def _page(
    rows: Iterable[E], key: Callable[[E], Any], descending: bool, window: Window
) -> Page[E]:
    ordered = sorted(rows, key=lambda e: (_sort_key(key(e)), e.id))
    if descending:
        ordered.reverse()
    selected = ordered[window.offset : window.offset + window.limit]
    return Page(items=[e.copy() for e in selected], total=len(ordered))


_TASK_SORT_KEYS: dict[str, Callable[[Task], Any]] = {
    "id": lambda t: t.id,
    "created_at": lambda t: t.created_at,
    "updated_at": lambda t: t.updated_at,
    "due_date": lambda t: t.due_date,
    "priority": lambda t: t.priority.rank,
    "title": lambda t: t.title_key,
}
_PROJECT_SORT_KEYS: dict[str, Callable[[Project], Any]] = {
    "id": lambda p: p.id,
    "name": lambda p: p.name_key,
    "created_at": lambda p: p.created_at,
    "updated_at": lambda p: p.updated_at,
}


def _task_matches(task: Task, query: TaskQuery) -> bool:
    return (
        (query.done is None or task.done == query.done)
        and (query.project_id is None or task.project_id == query.project_id)
        and (query.priority is None or task.priority == query.priority)
        and (query.q is None or search_key(query.q) in task.title_key)
        and (
            query.due_before is None
            or (task.due_date is not None and task.due_date < query.due_before)
        )
        and (
            query.due_after is None
            or (task.due_date is not None and task.due_date > query.due_after)
        )
    )


class _InMemoryRepository(Generic[E]):
    """What both repositories do alike: private copies in, private copies out."""

    _kind: ClassVar[str]

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store

    async def add(self, entity: E) -> None:
        self._check(entity)
        entity.id = self._next_id()
        self._rows[entity.id] = entity.copy()

    async def get(self, entity_id: int) -> E | None:
        entity = self._rows.get(entity_id)
        return entity.copy() if entity else None

    async def update(self, entity: E, expected_version: int) -> None:
        assert entity.id is not None
        stored = self._rows.get(entity.id)
        if stored is None or stored.version != expected_version:
            raise ConcurrentUpdate(self._kind, entity.id)
        self._check(entity)
        self._rows[entity.id] = entity.copy()

    async def remove(self, entity_id: int) -> bool:
        return self._rows.pop(entity_id, None) is not None

    @property
    def _rows(self) -> dict[int, E]:
        raise NotImplementedError

    def _next_id(self) -> int:
        raise NotImplementedError

    def _check(self, entity: E) -> None:
        """Enforce what the SQL schema's constraints enforce there."""


class InMemoryTaskRepository(_InMemoryRepository[Task]):
    _kind = "Task"

    async def list(self, query: TaskQuery) -> Page[Task]:
        rows = (t for t in self._rows.values() if _task_matches(t, query))
        key = _TASK_SORT_KEYS[query.sort]
        return _page(rows, key, query.descending, query.window)

    async def count_in_project(self, project_id: int) -> int:
        return sum(t.project_id == project_id for t in self._rows.values())

    @property
    def _rows(self) -> dict[int, Task]:
        return self._store.tasks

    def _next_id(self) -> int:
        return next(self._store.task_ids)

    def _check(self, entity: Task) -> None:
        project_id = entity.project_id
        if project_id is not None and project_id not in self._store.projects:
            message = f"Project {project_id} does not exist."
            raise InvalidValue("project_id", message)


class InMemoryProjectRepository(_InMemoryRepository[Project]):
    _kind = "Project"

    async def remove(self, entity_id: int) -> bool:
        if any(t.project_id == entity_id for t in self._store.tasks.values()):
            raise ProjectHasTasks(entity_id)
        return await super().remove(entity_id)

    async def list(self, query: ProjectQuery) -> Page[Project]:
        needle = None if query.q is None else search_key(query.q)
        rows = (
            p
            for p in self._rows.values()
            if (needle is None or needle in p.name_key)
            and (query.archived is None or p.archived == query.archived)
        )
        key = _PROJECT_SORT_KEYS[query.sort]
        return _page(rows, key, query.descending, query.window)

    @property
    def _rows(self) -> dict[int, Project]:
        return self._store.projects

    def _next_id(self) -> int:
        return next(self._store.project_ids)

    def _check(self, entity: Project) -> None:
        if any(
            p.name_key == entity.name_key and p.id != entity.id
            for p in self._rows.values()
        ):
            raise ProjectNameTaken(entity.name)


class InMemoryUnitOfWork:
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self.tasks = InMemoryTaskRepository(store)
        self.projects = InMemoryProjectRepository(store)
        self.committed = False
        self._snapshot: tuple[dict[int, Task], dict[int, Project]] = ({}, {})

    async def __aenter__(self) -> Self:
        await self._store.lock.acquire()
        self._take_snapshot()
        self.committed = False
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Undo whatever happened since the last commit (nothing, if it was last).
        self._store.tasks, self._store.projects = self._snapshot
        self._store.lock.release()

    async def commit(self) -> None:
        self._take_snapshot()
        self.committed = True

    def _take_snapshot(self) -> None:
        # Entities are stored as private copies, so shallow dict copies suffice.
        self._snapshot = dict(self._store.tasks), dict(self._store.projects)
