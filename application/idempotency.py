"""Idempotency keys: a retried request gets the first one's response instead of
being carried out again.

The first request with a key claims it, runs, and stores its response; a retry
with the same key and the same request replays that response. A claim is a
lease: if the worker holding it dies, a retry may take it over once it lapses.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from application.ports import (
    Clock,
    IdempotencyRecord,
    IdempotencyStore,
    StoredResponse,
)
from domain.errors import IdempotencyKeyReused, RequestInProgress

logger = logging.getLogger(__name__)

KEEP_FOR: Final = timedelta(hours=24)
LEASE: Final = timedelta(seconds=60)
PURGE_EVERY: Final = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Claim:
    """The right to carry out the request with this key, and store its answer."""

    owner_id: int
    key: str
    claim: str


class IdempotencyService:
    def __init__(
        self,
        store: IdempotencyStore,
        clock: Clock,
        keep_for: timedelta = KEEP_FOR,
        lease: timedelta = LEASE,
    ) -> None:
        self._store = store
        self._clock = clock
        self._keep_for = keep_for
        self._lease = lease
        self._purged_at: datetime | None = None

    async def begin(
        self, owner_id: int, key: str, fingerprint: str
    ) -> Claim | StoredResponse:
        """A claim to go ahead, or the response to replay.

        IdempotencyKeyReused if the key came with another request first;
        RequestInProgress while the first request with it is still running.
        """
        now = self._clock.now()
        record = self._new_record(owner_id, key, fingerprint, now)
        existing = await self._store.insert(record)
        if existing is None:
            await self._purge_now_and_then(now)
            return Claim(owner_id, key, record.claim)
        if existing.expires_at <= now:  # a stale key is a new key
            return await self._take_over(existing, record)
        if existing.fingerprint != fingerprint:
            raise IdempotencyKeyReused()
        if existing.response is not None:
            return existing.response
        if existing.locked_until > now:
            raise RequestInProgress()
        # Its worker died without answering: carry the request out afresh.
        return await self._take_over(existing, record)

    async def finish(self, claim: Claim, response: StoredResponse) -> None:
        """Store the response of the claimed request, for retries to replay."""
        await self._store.complete(claim.owner_id, claim.key, claim.claim, response)

    async def abandon(self, claim: Claim) -> None:
        """Give the key up: the request failed, so a retry may carry it out."""
        await self._store.release(claim.owner_id, claim.key, claim.claim)

    async def purge(self) -> int:
        """Forget every expired key; how many there were."""
        return await self._store.purge(self._clock.now())

    def _new_record(
        self, owner_id: int, key: str, fingerprint: str, now: datetime
    ) -> IdempotencyRecord:
        return IdempotencyRecord(
            owner_id=owner_id,
            key=key,
            claim=uuid.uuid4().hex,
            fingerprint=fingerprint,
            created_at=now,
            expires_at=now + self._keep_for,
            locked_until=now + self._lease,
        )

    async def _take_over(
        self, existing: IdempotencyRecord, record: IdempotencyRecord
    ) -> Claim:
        if not await self._store.replace(record, previous_claim=existing.claim):
            raise RequestInProgress()  # another retry took it over first
        return Claim(record.owner_id, record.key, record.claim)

    async def _purge_now_and_then(self, now: datetime) -> None:
        """Purge expired keys at most every few minutes per process, so the table
        stays small without a scheduled job."""
        if self._purged_at is None or now - self._purged_at >= PURGE_EVERY:
            self._purged_at = now
            try:
                await self._store.purge(now)
            except Exception:
                # Housekeeping must not fail the request that holds the claim
                # (nor leave its key claimed); the next purge catches up.
                logger.warning("Purging expired idempotency keys failed", exc_info=True)
