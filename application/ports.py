"""What the use cases need from the outside world, as Protocols.

Adapters implement these structurally; nothing here knows about SQL or HTTP.
Repositories never commit: the unit of work that handed them out does.

Every unit of work for tasks and projects belongs to one owner, and its
repositories see only that owner's rows: another owner's row behaves exactly
like one that does not exist (get gives None, update and remove find nothing,
lists and counts leave it out), and `add` stamps the owner on the entity.
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from application.queries import Page, ProjectQuery, TaskQuery
from domain.projects import Project
from domain.tasks import Task
from domain.users import ApiToken, User


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class TaskRepository(Protocol):
    async def add(self, task: Task) -> None:
        """Store a new task and set its `id` (or keep the one it has: IdTaken
        if a task has it already).

        InvalidValue if the owner has no project with the task's project_id.
        """
        ...

    async def add_many(self, tasks: Sequence[Task]) -> None:
        """Store many new tasks at once, faster than `add` one by one.

        Their ids are not read back: `id` stays None (the owner is stamped, as
        by `add`). Tasks that all have an id keep them (IdTaken if one is
        taken already). The use case checks their projects first; should one
        be gone meanwhile, InvalidValue.
        """
        ...

    async def defer_indexes(self) -> None:
        """Let `add_many` leave the indexes of tasks (all owners') for the unit
        of work's commit to build anew, where a database builds them faster
        than it keeps them up to date row by row; checks such as the
        project's then run at the commit too.

        Every other unit of work that uses tasks waits until this one ends:
        for loads into a quiet database. TasksBusy if others hold the tasks
        too long for this one to begin.
        """
        ...

    async def get(self, task_id: int, *, for_update: bool = False) -> Task | None:
        """The task with this id, or None when there is none.

        `for_update` makes concurrent writers of the task wait for this unit of
        work to end (a row lock), where the database has such locks.
        """
        ...

    async def update(self, task: Task, expected_version: int) -> None:
        """Store `task`; ConcurrentUpdate unless the stored version is expected.

        InvalidValue if the owner has no project with the task's project_id.
        """
        ...

    async def remove(self, task_id: int, expected_version: int | None = None) -> bool:
        """Delete the task; False when there was none.

        With `expected_version`, ConcurrentUpdate if it is at another version.
        """
        ...

    async def list(self, query: TaskQuery) -> Page[Task]:
        """The tasks matching `query`, one window of them, and how many match."""
        ...

    async def count_in_project(self, project_id: int) -> int:
        """How many tasks belong to the project (0 for an unknown project)."""
        ...


class ProjectRepository(Protocol):
    async def add(self, project: Project) -> None:
        """Store a new project and set its `id`, or keep the one it has.

        ProjectNameTaken on a clash of names, IdTaken of ids.
        """
        ...

    async def get(self, project_id: int, *, for_update: bool = False) -> Project | None:
        """The project with this id, or None; `for_update` as for tasks."""
        ...

    async def update(self, project: Project, expected_version: int) -> None:
        """Store `project`; raise ProjectNameTaken or ConcurrentUpdate on a clash."""
        ...

    async def remove(
        self, project_id: int, expected_version: int | None = None
    ) -> bool:
        """Delete the project; False when there was none.

        Raises ProjectHasTasks if tasks still point at it, and ConcurrentUpdate
        if it is not at `expected_version` (when given).
        """
        ...

    async def list(self, query: ProjectQuery) -> Page[Project]:
        """The projects matching `query`, one window of them, and how many match."""
        ...


class Transaction(Protocol):
    """One transaction. `async with uow:` rolls back unless `commit()` was awaited."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None:
        """Make everything done in this unit of work durable."""
        ...


class UnitOfWork(Transaction, Protocol):
    """One owner's tasks and projects, in one transaction."""

    tasks: TaskRepository
    projects: ProjectRepository


class UnitOfWorkFactory(Protocol):
    def __call__(self, owner_id: int, *, read_only: bool = False) -> UnitOfWork:
        """A new unit of work whose repositories see only `owner_id`'s rows.

        A `read_only` one refuses `commit()`; in exchange its reads may cost
        less, and each may see the latest committed state rather than one
        snapshot shared with the others.
        """
        ...


class UserRepository(Protocol):
    async def add(self, user: User) -> None:
        """Store a new user and set its `id`; raise UserNameTaken on a clash."""
        ...

    async def get_by_name(self, name: str) -> User | None:
        """The user with this name, or None when there is none."""
        ...

    async def exists(self) -> bool:
        """Whether there is any user at all."""
        ...

    async def list_after(self, user_id: int | None, limit: int) -> list[User]:
        """Up to `limit` users with ids above `user_id` (None: from the first),
        by id; an empty list past the last."""
        ...


class TokenRepository(Protocol):
    async def add(self, token: ApiToken) -> None:
        """Store a new token record and set its `id`."""
        ...

    async def find(self, secret_hash: str) -> ApiToken | None:
        """The token whose secret hashes to `secret_hash`, or None."""
        ...

    async def find_many(self, secret_hashes: Collection[str]) -> list[ApiToken]:
        """The tokens whose secrets hash to any of `secret_hashes`; none for a
        hash no token has."""
        ...

    async def find_by_prefix(self, prefix: str) -> ApiToken | None:
        """The token whose secret starts with `prefix`, or None."""
        ...

    async def list_for(self, user_id: int) -> list[ApiToken]:
        """The user's tokens, oldest first."""
        ...

    async def update(self, token: ApiToken) -> None:
        """Store changes to a token's record (revocation)."""
        ...

    async def record_use(self, token_id: int, at: datetime) -> None:
        """Set the token's last use to `at` and change nothing else, so that a
        revocation committed meanwhile stands; a missing token is no error."""
        ...


class IdentityUnitOfWork(Transaction, Protocol):
    """Users and their tokens, in one transaction."""

    users: UserRepository
    tokens: TokenRepository


class IdentityUnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> IdentityUnitOfWork:
        """A new identity unit of work; `read_only` as for `UnitOfWorkFactory`."""
        ...


class OwnerData(Protocol):
    """One owner's tasks and projects, as a unit of work hands them out."""

    tasks: TaskRepository
    projects: ProjectRepository


class TransferUnitOfWork(Transaction, Protocol):
    """Every owner's data and the users, in one transaction: for moving all of
    it in or out at once (export, import)."""

    users: UserRepository

    def owned_by(self, owner_id: int) -> OwnerData:
        """Repositories that see only `owner_id`'s rows, in this transaction."""
        ...

    async def advance_ids(self) -> None:
        """Make ids the database assigns from now on follow every stored one,
        after rows were added with ids of their own."""
        ...


class TransferUnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> TransferUnitOfWork:
        """A new transfer unit of work; `read_only` as for `UnitOfWorkFactory`."""
        ...


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    owner_id: int
    key: str
    claim: str  # who holds the key: a new value for every claim and take-over
    fingerprint: str  # of the request, to tell a retry from a different request
    created_at: datetime
    expires_at: datetime
    locked_until: datetime  # the claim's lease, while there is no response
    response: StoredResponse | None = None


class IdempotencyStore(Protocol):
    """Idempotency records by (owner, key). Each method is one transaction of its
    own: a record must be visible to other workers while its request runs."""

    async def insert(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        """Store `record` unless its owner already has its key; if so, the
        record there (and nothing is stored)."""
        ...

    async def replace(self, record: IdempotencyRecord, previous_claim: str) -> bool:
        """Store `record` over the one with its key, if that one still holds
        `previous_claim`; whether it did."""
        ...

    async def complete(
        self, owner_id: int, key: str, claim: str, response: StoredResponse
    ) -> None:
        """Store the response, if the key is still held by `claim`."""
        ...

    async def release(self, owner_id: int, key: str, claim: str) -> None:
        """Forget the key, if it is still held by `claim`."""
        ...

    async def purge(self, now: datetime) -> int:
        """Forget every key that expired by `now`; how many."""
        ...
