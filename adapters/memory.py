"""An in-memory implementation of the ports: a real adapter, not only a test double.

`TASKHUB_DATABASE_URL=memory://` serves from it. One unit of work at a time holds
the store's lock, so units of work are serialisable, and a rollback restores the
snapshot taken when the unit of work began.
"""

import asyncio
import itertools
import secrets
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar

from application.ports import IdempotencyRecord, StoredResponse
from application.queries import (
    Page,
    Position,
    ProjectQuery,
    TaskQuery,
    settle_total,
)
from domain.errors import (
    ConcurrentUpdate,
    IdTaken,
    InvalidValue,
    ProjectHasTasks,
    ProjectNameTaken,
    UserNameTaken,
)
from domain.projects import Project
from domain.tasks import Task
from domain.users import ApiToken, User
from domain.values import search_key

E = TypeVar("E", Task, Project)


@dataclass
class InMemoryStore:
    """The data itself; lives as long as the process (one per container)."""

    tasks: dict[int, Task] = field(default_factory=dict)
    projects: dict[int, Project] = field(default_factory=dict)
    users: dict[int, User] = field(default_factory=dict)
    tokens: dict[int, ApiToken] = field(default_factory=dict)
    task_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    project_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    user_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    token_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Outside units of work and their snapshots, as in SQL, where each call
    # of the idempotency store is a transaction of its own.
    idempotency: dict[tuple[int, str], IdempotencyRecord] = field(default_factory=dict)


def _sort_key(value: Any) -> tuple[bool, Any]:
    # None sorts last; descending is the exact reverse (NULLS FIRST), as in SQL.
    return value is None, value


async def _page(
    rows: Iterable[E],
    value: Callable[[E], Any],
    query: TaskQuery | ProjectQuery,
) -> Page[E]:
    def key(entity: E) -> tuple[tuple[bool, Any], int | None]:
        return _sort_key(value(entity)), entity.id

    ordered = sorted(rows, key=key, reverse=query.descending)
    following = ordered
    if (position := query.after) is not None:
        after = _sort_key(position.value), position.id
        following = [
            e
            for e in ordered
            if (after > key(e) if query.descending else key(e) > after)
        ]
    window = query.window
    selected = following[window.offset : window.offset + window.limit + 1]
    more = len(selected) > window.limit
    selected = selected[: window.limit]

    async def count(bound: int | None) -> int:
        return len(ordered) if bound is None else min(len(ordered), bound)

    next_position = None
    if more:
        last = selected[-1]
        assert last.id is not None
        next_position = Position(value(last), last.id)
    return Page(
        items=[e.copy() for e in selected],
        total=await settle_total(query, len(selected), more, count),
        next=next_position,
    )


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


def _free_id(ids: Iterator[int], taken: dict[int, Any]) -> int:
    """The next id of `ids` that no row holds: rows may come with ids of their
    own (an import that keeps them), which the counter must step over."""
    while (candidate := next(ids)) in taken:
        pass
    return candidate


async def random_secret() -> bytes:
    """A key for this process alone: memory's data lives no longer anyway."""
    return secrets.token_bytes(32)


class _InMemoryRepository(Generic[E]):
    """What both repositories do alike: private copies in, private copies out,
    and only one owner's rows in sight."""

    _kind: ClassVar[str]

    def __init__(self, store: InMemoryStore, owner_id: int) -> None:
        self._store = store
        self._owner_id = owner_id

    async def add(self, entity: E) -> None:
        entity.owner_id = self._owner_id
        self._check(entity)
        if entity.id is None:
            entity.id = self._next_id()
        elif entity.id in self._all:
            raise IdTaken(self._kind, entity.id)
        self._all[entity.id] = entity.copy()

    async def get(self, entity_id: int, *, for_update: bool = False) -> E | None:
        # The store's lock already serializes units of work.
        entity = self._mine(entity_id)
        return entity.copy() if entity else None

    async def update(self, entity: E, expected_version: int) -> None:
        assert entity.id is not None
        stored = self._mine(entity.id)
        if stored is None or stored.version != expected_version:
            raise ConcurrentUpdate(self._kind, entity.id)
        self._check(entity)
        self._all[entity.id] = entity.copy()

    async def remove(self, entity_id: int, expected_version: int | None = None) -> bool:
        stored = self._mine(entity_id)
        if stored is None:
            return False
        if expected_version is not None and stored.version != expected_version:
            raise ConcurrentUpdate(self._kind, entity_id)
        del self._all[entity_id]
        return True

    def _mine(self, entity_id: int) -> E | None:
        entity = self._all.get(entity_id)
        return entity if entity and entity.owner_id == self._owner_id else None

    @property
    def _rows(self) -> Iterator[E]:
        """This owner's rows."""
        return (e for e in self._all.values() if e.owner_id == self._owner_id)

    @property
    def _all(self) -> dict[int, E]:
        raise NotImplementedError

    def _next_id(self) -> int:
        raise NotImplementedError

    def _check(self, entity: E) -> None:
        """Enforce what the SQL schema's constraints enforce there."""


class InMemoryTaskRepository(_InMemoryRepository[Task]):
    _kind = "Task"

    async def defer_indexes(self) -> None:
        """Nothing to defer: dicts have no indexes to rebuild."""

    async def add_many(self, tasks: Sequence[Task]) -> None:
        # As in SQL, the stored rows get ids and the entities do not, unless
        # they came with ids to keep.
        keep_ids = bool(tasks) and tasks[0].id is not None
        if any((task.id is not None) != keep_ids for task in tasks):
            raise ValueError("Either every task has an id to keep or none has.")
        for task in tasks:
            task.owner_id = self._owner_id
            self._check(task)
            stored = task.copy()
            if not keep_ids:
                stored.id = self._next_id()
            elif stored.id in self._all:
                raise IdTaken("Task")
            assert stored.id is not None
            self._all[stored.id] = stored

    async def list(self, query: TaskQuery) -> Page[Task]:
        rows = (t for t in self._rows if _task_matches(t, query))
        return await _page(rows, _TASK_SORT_KEYS[query.sort], query)

    async def count_in_project(self, project_id: int) -> int:
        return sum(t.project_id == project_id for t in self._rows)

    @property
    def _all(self) -> dict[int, Task]:
        return self._store.tasks

    def _next_id(self) -> int:
        return _free_id(self._store.task_ids, self._all)

    def _owner_has_project(self, project_id: int) -> bool:
        project = self._store.projects.get(project_id)
        return project is not None and project.owner_id == self._owner_id

    def _check(self, entity: Task) -> None:
        project_id = entity.project_id
        if project_id is not None and not self._owner_has_project(project_id):
            message = f"Project {project_id} does not exist."
            raise InvalidValue("project_id", message)


class InMemoryProjectRepository(_InMemoryRepository[Project]):
    _kind = "Project"

    async def remove(self, entity_id: int, expected_version: int | None = None) -> bool:
        # As in SQL: a project at another version is not deleted, so no task
        # points at a deleted project.
        stored = self._mine(entity_id)
        at_version = expected_version is None or (
            stored is not None and stored.version == expected_version
        )
        if (
            stored
            and at_version
            and any(t.project_id == entity_id for t in self._store.tasks.values())
        ):
            raise ProjectHasTasks(entity_id)
        return await super().remove(entity_id, expected_version)

    async def list(self, query: ProjectQuery) -> Page[Project]:
        needle = None if query.q is None else search_key(query.q)
        rows = (
            p
            for p in self._rows
            if (needle is None or needle in p.name_key)
            and (query.archived is None or p.archived == query.archived)
        )
        return await _page(rows, _PROJECT_SORT_KEYS[query.sort], query)

    @property
    def _all(self) -> dict[int, Project]:
        return self._store.projects

    def _next_id(self) -> int:
        return _free_id(self._store.project_ids, self._all)

    def _check(self, entity: Project) -> None:
        if any(p.name_key == entity.name_key and p.id != entity.id for p in self._rows):
            raise ProjectNameTaken(entity.name)


class InMemoryUserRepository:
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store

    async def add(self, user: User) -> None:
        if any(u.name == user.name for u in self._store.users.values()):
            raise UserNameTaken(user.name)
        user.id = next(self._store.user_ids)
        self._store.users[user.id] = replace(user)

    async def get_by_name(self, name: str) -> User | None:
        user = next((u for u in self._store.users.values() if u.name == name), None)
        return None if user is None else replace(user)

    async def exists(self) -> bool:
        return bool(self._store.users)

    async def list_after(self, user_id: int | None, limit: int) -> list[User]:
        after = 0 if user_id is None else user_id
        following = sorted(i for i in self._store.users if i > after)[:limit]
        return [replace(self._store.users[i]) for i in following]


class InMemoryTokenRepository:
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store

    async def add(self, token: ApiToken) -> None:
        token.id = next(self._store.token_ids)
        self._store.tokens[token.id] = token.copy()

    async def find(self, secret_hash: str) -> ApiToken | None:
        return self._first(lambda t: t.secret_hash == secret_hash)

    async def find_many(self, secret_hashes: Collection[str]) -> list[ApiToken]:
        tokens = sorted(self._store.tokens.items())
        return [t.copy() for _, t in tokens if t.secret_hash in secret_hashes]

    async def find_by_prefix(self, prefix: str) -> ApiToken | None:
        return self._first(lambda t: t.prefix == prefix)

    async def list_for(self, user_id: int) -> list[ApiToken]:
        tokens = sorted(self._store.tokens.items())
        return [t.copy() for _, t in tokens if t.user_id == user_id]

    async def update(self, token: ApiToken) -> None:
        assert token.id is not None
        self._store.tokens[token.id] = token.copy()

    async def record_use(self, token_id: int, at: datetime) -> None:
        stored = self._store.tokens.get(token_id)
        if stored is not None:
            stored = stored.copy()
            stored.last_used_at = at
            self._store.tokens[token_id] = stored

    def _first(self, matches: Callable[[ApiToken], bool]) -> ApiToken | None:
        token = next((t for t in self._store.tokens.values() if matches(t)), None)
        return None if token is None else token.copy()


class _InMemoryTransaction:
    """Holds the store's lock; rolls back to the last commit on the way out."""

    def __init__(self, store: InMemoryStore, read_only: bool = False) -> None:
        self._store = store
        self.read_only = read_only
        self.committed = False
        self._snapshot: tuple[
            dict[int, Task], dict[int, Project], dict[int, User], dict[int, ApiToken]
        ] = ({}, {}, {}, {})

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
        store = self._store
        store.tasks, store.projects, store.users, store.tokens = self._snapshot
        store.lock.release()

    async def commit(self) -> None:
        if self.read_only:
            raise RuntimeError("A read-only unit of work cannot commit.")
        self._take_snapshot()
        self.committed = True

    def _take_snapshot(self) -> None:
        # Entities are stored as private copies, so shallow dict copies suffice.
        store = self._store
        self._snapshot = (
            dict(store.tasks),
            dict(store.projects),
            dict(store.users),
            dict(store.tokens),
        )


class InMemoryUnitOfWork(_InMemoryTransaction):
    """Tasks and projects of one owner."""

    def __init__(
        self, store: InMemoryStore, owner_id: int, read_only: bool = False
    ) -> None:
        super().__init__(store, read_only)
        self.owner_id = owner_id
        self.tasks = InMemoryTaskRepository(store, owner_id)
        self.projects = InMemoryProjectRepository(store, owner_id)


class InMemoryIdentityUnitOfWork(_InMemoryTransaction):
    """Users and their tokens."""

    def __init__(self, store: InMemoryStore, read_only: bool = False) -> None:
        super().__init__(store, read_only)
        self.users = InMemoryUserRepository(store)
        self.tokens = InMemoryTokenRepository(store)


@dataclass(frozen=True, slots=True)
class InMemoryOwnerData:
    tasks: InMemoryTaskRepository
    projects: InMemoryProjectRepository


class InMemoryTransferUnitOfWork(_InMemoryTransaction):
    """The users and every owner's tasks and projects (export, import)."""

    def __init__(self, store: InMemoryStore, read_only: bool = False) -> None:
        super().__init__(store, read_only)
        self.users = InMemoryUserRepository(store)

    def owned_by(self, owner_id: int) -> InMemoryOwnerData:
        return InMemoryOwnerData(
            InMemoryTaskRepository(self._store, owner_id),
            InMemoryProjectRepository(self._store, owner_id),
        )

    async def advance_ids(self) -> None:
        # The counters already step over taken ids (see _free_id); moving them
        # past the largest as well keeps deleted rows' ids unused, as in SQL.
        store = self._store
        store.task_ids = itertools.count(max(next(store.task_ids), _after(store.tasks)))
        store.project_ids = itertools.count(
            max(next(store.project_ids), _after(store.projects))
        )


def _after(rows: dict[int, Any]) -> int:
    return max(rows, default=0) + 1


class InMemoryIdempotencyStore:
    """Each method runs without awaiting, so each is atomic on the event loop."""

    def __init__(self, store: InMemoryStore) -> None:
        self._records = store.idempotency

    async def insert(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        existing = self._records.get((record.owner_id, record.key))
        if existing is None:
            self._records[record.owner_id, record.key] = record
        return existing

    async def replace(self, record: IdempotencyRecord, previous_claim: str) -> bool:
        return self._swap(record.owner_id, record.key, previous_claim, record)

    async def complete(
        self, owner_id: int, key: str, claim: str, response: StoredResponse
    ) -> None:
        existing = self._records.get((owner_id, key))
        if existing is not None:
            self._swap(owner_id, key, claim, replace(existing, response=response))

    async def release(self, owner_id: int, key: str, claim: str) -> None:
        self._swap(owner_id, key, claim, None)

    async def purge(self, now: datetime) -> int:
        expired = [k for k, r in self._records.items() if r.expires_at <= now]
        for key in expired:
            del self._records[key]
        return len(expired)

    def _swap(
        self, owner_id: int, key: str, claim: str, record: IdempotencyRecord | None
    ) -> bool:
        existing = self._records.get((owner_id, key))
        if existing is None or existing.claim != claim:
            return False
        if record is None:
            del self._records[owner_id, key]
        else:
            self._records[owner_id, key] = record
        return True
