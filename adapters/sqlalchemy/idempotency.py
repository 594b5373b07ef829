"""Idempotency records in SQL, each call one short transaction of its own, so a
claim is visible to every worker and host while its request runs."""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.sqlalchemy.mapping import idempotency_to_record, idempotency_to_row
from adapters.sqlalchemy.tables import CROSS_OWNER
from adapters.sqlalchemy.tables import idempotency_keys as keys
from application.ports import IdempotencyRecord, StoredResponse
from domain.errors import RequestInProgress


class SqlAlchemyIdempotencyStore:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._session_factory = session_factory

    async def insert(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        where = (keys.c.owner_id == record.owner_id, keys.c.key == record.key)
        for _ in range(3):  # the key may be released between insert and select
            try:
                values = idempotency_to_row(record)
                async with self._session_factory() as session, session.begin():
                    await session.execute(sa.insert(keys).values(values))
                return None
            except IntegrityError:
                pass  # the key is taken (a concurrent insert waited for its commit)
            async with self._session_factory() as session:
                statement = sa.select(keys).where(*where)
                row = (await session.execute(statement)).one_or_none()
            if row is not None:
                return idempotency_to_record(row)
        raise RequestInProgress()

    async def replace(self, record: IdempotencyRecord, previous_claim: str) -> bool:
        # The owner and the key identify the row; neither changes (the owner is
        # the distribution column when sharded, which an UPDATE may not set).
        values = idempotency_to_row(record)
        del values["owner_id"], values["key"]
        return await self._where_claimed(
            record.owner_id, record.key, previous_claim, values
        )

    async def complete(
        self, owner_id: int, key: str, claim: str, response: StoredResponse
    ) -> None:
        values = {
            "response_status": response.status,
            "response_headers": list(response.headers),
            "response_body": response.body,
        }
        await self._where_claimed(owner_id, key, claim, values)

    async def release(self, owner_id: int, key: str, claim: str) -> None:
        await self._where_claimed(owner_id, key, claim, None)

    async def purge(self, now: datetime) -> int:
        async with self._session_factory() as session, session.begin():
            # Every owner's keys at once: an audited exception to the owner rule.
            statement = sa.delete(keys).where(keys.c.expires_at <= now)
            options = {CROSS_OWNER: "purge-expired-idempotency-keys"}
            result = await session.execute(statement.execution_options(**options))
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def _where_claimed(
        self, owner_id: int, key: str, claim: str, values: dict[str, Any] | None
    ) -> bool:
        """Update (or, without values, delete) the record if `claim` holds it."""
        where = (keys.c.owner_id == owner_id, keys.c.key == key, keys.c.claim == claim)
        statement = (
            sa.delete(keys).where(*where)
            if values is None
            else sa.update(keys).where(*where).values(values)
        )
        async with self._session_factory() as session, session.begin():
            result = await session.execute(statement)
        return bool(result.rowcount)  # type: ignore[attr-defined]
