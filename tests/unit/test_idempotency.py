"""IdempotencyService's decisions, on the in-memory store with a frozen clock."""

import asyncio
from datetime import datetime, timedelta

import pytest

from adapters.memory import InMemoryIdempotencyStore, InMemoryStore
from application.idempotency import (
    KEEP_FOR,
    LEASE,
    PURGE_EVERY,
    Claim,
    IdempotencyService,
)
from application.ports import IdempotencyRecord, StoredResponse
from domain.errors import IdempotencyKeyReused, RequestInProgress
from tests.fakes import FrozenClock

OWNER = 1
KEY = "key-1"
REQUEST = "a" * 64
OTHER_REQUEST = "b" * 64
CREATED = StoredResponse(
    201, (("content-type", "application/json"), ("location", "/tasks/1")), b"{}"
)
TICK = timedelta(microseconds=1)


class YieldingStore(InMemoryIdempotencyStore):
    """Lets other tasks run after each insert, as a database round trip does."""

    async def insert(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        existing = await super().insert(record)
        await asyncio.sleep(0)
        return existing


@pytest.fixture
def service(store: InMemoryStore, clock: FrozenClock) -> IdempotencyService:
    return IdempotencyService(InMemoryIdempotencyStore(store), clock)


async def claim(service: IdempotencyService, key: str = KEY) -> Claim:
    outcome = await service.begin(OWNER, key, REQUEST)
    assert isinstance(outcome, Claim), outcome
    return outcome


# --- the decision table -------------------------------------------------------


async def test_a_new_key_is_claimed_and_held_in_the_store(
    service: IdempotencyService, store: InMemoryStore, clock: FrozenClock
) -> None:
    claimed = await claim(service)

    assert (claimed.owner_id, claimed.key) == (OWNER, KEY)
    record = store.idempotency[OWNER, KEY]
    assert record.claim == claimed.claim
    assert record.fingerprint == REQUEST
    assert record.response is None
    assert record.created_at == clock.now()
    assert record.expires_at == clock.now() + KEEP_FOR
    assert record.locked_until == clock.now() + LEASE


async def test_the_same_request_after_a_response_gets_that_response(
    service: IdempotencyService, clock: FrozenClock
) -> None:
    await service.finish(await claim(service), CREATED)
    clock.advance(hours=23)

    assert await service.begin(OWNER, KEY, REQUEST) == CREATED
    assert await service.begin(OWNER, KEY, REQUEST) == CREATED


async def test_another_request_with_the_key_is_refused_before_and_after_a_response(
    service: IdempotencyService,
) -> None:
    claimed = await claim(service)
    with pytest.raises(IdempotencyKeyReused):
        await service.begin(OWNER, KEY, OTHER_REQUEST)

    await service.finish(claimed, CREATED)
    with pytest.raises(IdempotencyKeyReused):
        await service.begin(OWNER, KEY, OTHER_REQUEST)


async def test_the_same_request_is_in_progress_while_the_lease_holds(
    service: IdempotencyService, clock: FrozenClock
) -> None:
    await claim(service)

    with pytest.raises(RequestInProgress):
        await service.begin(OWNER, KEY, REQUEST)
    clock.advance(seconds=LEASE.total_seconds() - 1)
    with pytest.raises(RequestInProgress):
        await service.begin(OWNER, KEY, REQUEST)


async def test_a_lapsed_lease_is_taken_over_and_the_dead_claim_is_void(
    service: IdempotencyService, clock: FrozenClock
) -> None:
    dead = await claim(service)
    clock.advance(seconds=LEASE.total_seconds())

    taken_over = await claim(service)
    await service.finish(dead, StoredResponse(500, (), b"too late"))
    await service.abandon(dead)
    with pytest.raises(RequestInProgress):  # the new claim still holds the key
        await service.begin(OWNER, KEY, REQUEST)
    await service.finish(taken_over, CREATED)

    assert taken_over.claim != dead.claim
    assert await service.begin(OWNER, KEY, REQUEST) == CREATED


async def test_a_lapsed_lease_still_refuses_another_request(
    service: IdempotencyService, clock: FrozenClock
) -> None:
    await claim(service)
    clock.advance(seconds=LEASE.total_seconds())

    with pytest.raises(IdempotencyKeyReused):
        await service.begin(OWNER, KEY, OTHER_REQUEST)


async def test_an_expired_key_is_a_new_key_whatever_it_was_used_for(
    service: IdempotencyService, store: InMemoryStore, clock: FrozenClock
) -> None:
    await service.finish(await claim(service), CREATED)
    clock.advance(seconds=KEEP_FOR.total_seconds() - 1)
    assert await service.begin(OWNER, KEY, REQUEST) == CREATED
    clock.advance(seconds=1)

    outcome = await service.begin(OWNER, KEY, OTHER_REQUEST)

    assert isinstance(outcome, Claim)
    record = store.idempotency[OWNER, KEY]
    assert (record.fingerprint, record.response) == (OTHER_REQUEST, None)
    assert record.expires_at == clock.now() + KEEP_FOR


async def test_an_abandoned_key_can_be_claimed_again(
    service: IdempotencyService, store: InMemoryStore
) -> None:
    await service.abandon(await claim(service))

    assert (OWNER, KEY) not in store.idempotency
    await claim(service)


async def test_keys_belong_to_their_owner(service: IdempotencyService) -> None:
    await service.finish(await claim(service), CREATED)

    assert isinstance(await service.begin(OWNER + 1, KEY, OTHER_REQUEST), Claim)


async def test_of_two_concurrent_take_overs_exactly_one_wins(
    store: InMemoryStore, clock: FrozenClock
) -> None:
    service = IdempotencyService(YieldingStore(store), clock)
    await claim(service)
    clock.advance(seconds=LEASE.total_seconds())

    outcomes = await asyncio.gather(
        service.begin(OWNER, KEY, REQUEST),
        service.begin(OWNER, KEY, REQUEST),
        return_exceptions=True,
    )

    winners = [o for o in outcomes if isinstance(o, Claim)]
    assert len(winners) == 1, outcomes
    assert [type(o) for o in outcomes if o not in winners] == [RequestInProgress]
    assert store.idempotency[OWNER, KEY].claim == winners[0].claim


# --- purging ------------------------------------------------------------------


def expired_record(key: str, clock: FrozenClock) -> IdempotencyRecord:
    long_ago = clock.now() - KEEP_FOR - TICK
    return IdempotencyRecord(
        owner_id=OWNER,
        key=key,
        claim="old",
        fingerprint=REQUEST,
        created_at=long_ago,
        expires_at=long_ago + KEEP_FOR,
        locked_until=long_ago + LEASE,
    )


async def test_purge_forgets_the_expired_keys_and_counts_them(
    service: IdempotencyService, store: InMemoryStore, clock: FrozenClock
) -> None:
    await claim(service, "live")
    for key in ("old-1", "old-2"):
        store.idempotency[OWNER, key] = expired_record(key, clock)

    assert await service.purge() == 2
    assert set(store.idempotency) == {(OWNER, "live")}
    assert await service.purge() == 0


async def test_claiming_keys_purges_expired_ones_at_most_every_few_minutes(
    service: IdempotencyService, store: InMemoryStore, clock: FrozenClock
) -> None:
    store.idempotency[OWNER, "old-1"] = expired_record("old-1", clock)
    await claim(service, "first")  # purges: the first claim of this service
    assert (OWNER, "old-1") not in store.idempotency

    store.idempotency[OWNER, "old-2"] = expired_record("old-2", clock)
    clock.advance(seconds=PURGE_EVERY.total_seconds() - 1)
    await claim(service, "soon-after")
    assert (OWNER, "old-2") in store.idempotency

    clock.advance(seconds=1)
    await claim(service, "later")
    assert (OWNER, "old-2") not in store.idempotency


async def test_a_failing_purge_neither_fails_the_request_nor_keeps_its_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class PurgeFails(InMemoryIdempotencyStore):
        async def purge(self, now: datetime) -> int:
            raise OSError("the database went away")

    store = InMemoryStore()
    service = IdempotencyService(PurgeFails(store), FrozenClock())

    claim = await service.begin(1, "k", "f" * 64)
    assert isinstance(claim, Claim)
    await service.abandon(claim)

    assert store.idempotency == {}
    assert "Purging expired idempotency keys failed" in caplog.text
