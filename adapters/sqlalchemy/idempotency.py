"""Idempotency records in SQL, each call one short transaction of its own, so a
claim is visible to every worker and host while its request runs.

Its statements run on the driver, as the units of work's do (adapters.
sqlalchemy.driver), so that a request's idempotency records and its use case
take the one connection the request holds: a second connection, taken from the
pool while the request kept one, could wait for ever once every connection was
kept by requests waiting alike.
"""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from adapters.sqlalchemy.mapping import idempotency_to_record, idempotency_to_row
from adapters.sqlalchemy.tables import CROSS_OWNER
from adapters.sqlalchemy.tables import idempotency_keys as keys
from adapters.sqlalchemy.unit_of_work import SessionFactory
from application.ports import IdempotencyRecord, StoredResponse
from domain.errors import RequestInProgress


class SqlAlchemyIdempotencyStore:
    def __init__(self, session_factory: SessionFactory) -> None:
        self._session_factory = session_factory

    async def insert(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        where = (keys.c.owner_id == record.owner_id, keys.c.key == record.key)
        for _ in range(3):  # the key may be released between insert and select
            try:
                await self._run(sa.insert(keys).values(idempotency_to_row(record)))
                return None
            except IntegrityError:
                pass  # the key is taken (a concurrent insert waited for its commit)
            row = (await self._run(sa.select(keys).where(*where))).one_or_none()
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
        # Every owner's keys at once: an audited exception to the owner rule.
        statement = sa.delete(keys).where(keys.c.expires_at <= now)
        options = {CROSS_OWNER: "purge-expired-idempotency-keys"}
        result = await self._run(statement.execution_options(**options))
        return int(result.rowcount)

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
        result = await self._run(statement)
        return bool(result.rowcount)

    async def _run(self, statement: Any) -> Any:
        """`statement`'s result, in a transaction of its own, committed."""
        session = self._session_factory()
        try:
            result = await session.execute(statement)
            await session.commit()
        finally:
            await session.close()
        return result
