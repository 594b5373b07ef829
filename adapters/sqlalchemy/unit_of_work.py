from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.sqlalchemy.repositories import (
    SqlAlchemyProjectRepository,
    SqlAlchemyTaskRepository,
)


class SqlAlchemyUnitOfWork:
    """One AsyncSession, hence one transaction, per unit of work."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._session_factory = session_factory

    async def __aenter__(self) -> Self:
        self._session = self._session_factory()
        self.tasks = SqlAlchemyTaskRepository(self._session)
        self.projects = SqlAlchemyProjectRepository(self._session)
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
        await self._session.commit()
