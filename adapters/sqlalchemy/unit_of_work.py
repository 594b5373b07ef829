from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.sqlalchemy.driver import DriverSession
from adapters.sqlalchemy.repositories import (
    SqlAlchemyProjectRepository,
    SqlAlchemyTaskRepository,
    SqlAlchemyTokenRepository,
    SqlAlchemyUserRepository,
    Statements,
    advance_ids,
    analyze_after_copy,
    rebuild_deferred,
)

SessionFactory = async_sessionmaker[AsyncSession] | Callable[[], DriverSession]


class _SessionUnitOfWork:
    """One session, hence one transaction, per unit of work: an AsyncSession, or
    a DriverSession whose statements run on the driver (adapters.sqlalchemy.
    driver). A read-only one takes its session from `read_session_factory`,
    whose reads cost less (see adapters.sqlalchemy.engine), and refuses to commit.
    """

    def __init__(
        self,
        session_factory: SessionFactory,
        read_session_factory: SessionFactory,
        read_only: bool = False,
    ) -> None:
        self._session_factory = read_session_factory if read_only else session_factory
        self.read_only = read_only

    async def __aenter__(self) -> Self:
        self._session: Statements = self._session_factory()
        self._start(self._session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Closing rolls back whatever was not committed and returns the connection.
        await self._session.close()

    async def commit(self) -> None:
        if self.read_only:
            raise RuntimeError("A read-only unit of work cannot commit.")
        await self._session.commit()

    def _start(self, session: Statements) -> None:
        raise NotImplementedError


class SqlAlchemyUnitOfWork(_SessionUnitOfWork):
    """Tasks and projects of one owner."""

    def __init__(
        self,
        session_factory: SessionFactory,
        read_session_factory: SessionFactory,
        owner_id: int,
        read_only: bool = False,
    ) -> None:
        super().__init__(session_factory, read_session_factory, read_only)
        self.owner_id = owner_id

    async def commit(self) -> None:
        await rebuild_deferred(self._session, [self.tasks])
        await analyze_after_copy(self._session, [self.tasks])
        await super().commit()

    def _start(self, session: Statements) -> None:
        self.tasks = SqlAlchemyTaskRepository(session, self.owner_id)
        self.projects = SqlAlchemyProjectRepository(session, self.owner_id)


class SqlAlchemyIdentityUnitOfWork(_SessionUnitOfWork):
    """Users and their tokens."""

    def _start(self, session: Statements) -> None:
        self.users = SqlAlchemyUserRepository(session)
        self.tokens = SqlAlchemyTokenRepository(session)


@dataclass(frozen=True, slots=True)
class SqlAlchemyOwnerData:
    tasks: SqlAlchemyTaskRepository
    projects: SqlAlchemyProjectRepository


class SqlAlchemyTransferUnitOfWork(_SessionUnitOfWork):
    """The users and every owner's tasks and projects (export, import).

    A read-only one reads one snapshot throughout, so that an export is
    consistent: on SQLite its deferred transaction does so already, on
    PostgreSQL it runs in REPEATABLE READ rather than a statement at a time.
    """

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        read_session_factory: async_sessionmaker[AsyncSession],
        read_only: bool = False,
    ) -> None:
        super().__init__(session_factory, read_session_factory, read_only)

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        if self.read_only and self._transfer.get_bind().dialect.name == "postgresql":
            await self._transfer.connection(
                execution_options={"isolation_level": "REPEATABLE READ"}
            )
        return self

    @property
    def _transfer(self) -> AsyncSession:
        # Both of its factories make sessions: an export reads one snapshot.
        assert isinstance(self._session, AsyncSession)
        return self._session

    async def commit(self) -> None:
        await rebuild_deferred(self._session, (d.tasks for d in self._owned))
        await analyze_after_copy(self._session, (d.tasks for d in self._owned))
        await super().commit()

    def _start(self, session: Statements) -> None:
        self.users = SqlAlchemyUserRepository(session)
        self._owned: list[SqlAlchemyOwnerData] = []

    def owned_by(self, owner_id: int) -> SqlAlchemyOwnerData:
        data = SqlAlchemyOwnerData(
            SqlAlchemyTaskRepository(self._session, owner_id),
            SqlAlchemyProjectRepository(self._session, owner_id),
        )
        self._owned.append(data)
        return data

    async def advance_ids(self) -> None:
        await advance_ids(self._transfer)
