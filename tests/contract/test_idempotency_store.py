"""The IdempotencyStore contract: every adapter keeps (owner, key) records alike.

Records are read back through the port itself: `insert` answers with the record
already there. `stored` does that and gives the key back if it was free.
"""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from application.idempotency import KEEP_FOR, LEASE
from application.ports import IdempotencyRecord, IdempotencyStore, StoredResponse
from entrypoints.container import Container

T0 = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
RESPONSE = StoredResponse(
    201,
    (
        ("content-type", "application/json"),
        ("location", "/tasks/7"),
        ("etag", '"1"'),
    ),
    b'{"id":7}',
)


def record(
    owner_id: int,
    key: str = "key-1",
    claim: str = "first",
    at: datetime = T0,
    response: StoredResponse | None = None,
) -> IdempotencyRecord:
    return IdempotencyRecord(
        owner_id=owner_id,
        key=key,
        claim=claim,
        fingerprint=claim.ljust(64, "0"),
        created_at=at,
        expires_at=at + KEEP_FOR,
        locked_until=at + LEASE,
        response=response,
    )


async def stored(
    store: IdempotencyStore, owner_id: int, key: str = "key-1"
) -> IdempotencyRecord | None:
    """The record the store holds for (owner, key), or None; changes nothing."""
    probe = record(owner_id, key, claim="probe")
    existing = await store.insert(probe)
    if existing is None:
        await store.release(owner_id, key, "probe")
    return existing


@pytest.fixture
def store(container: Container) -> IdempotencyStore:
    store: IdempotencyStore = container.idempotency_store()
    return store


@pytest.fixture
async def bob(container: Container) -> int:
    return await container.identity_service().ensure_user("bob")


async def test_insert_stores_a_new_key_and_then_answers_with_it(
    store: IdempotencyStore, owner_id: int
) -> None:
    first = record(owner_id)

    assert await store.insert(first) is None
    assert await store.insert(record(owner_id, claim="second", at=T0 + LEASE)) == first
    assert await stored(store, owner_id) == first


async def test_keys_are_per_owner_and_case_sensitive(
    store: IdempotencyStore, owner_id: int, bob: int
) -> None:
    alices = record(owner_id, "Key")
    others = [record(bob, "Key", "bobs"), record(owner_id, "key", "lower")]

    assert await store.insert(alices) is None
    for other in others:
        assert await store.insert(other) is None

    assert await stored(store, owner_id, "Key") == alices
    for other in others:
        assert await stored(store, other.owner_id, other.key) == other


async def test_replace_takes_over_only_from_the_claim_it_names(
    store: IdempotencyStore, owner_id: int
) -> None:
    first = record(owner_id)
    second = record(owner_id, claim="second", at=T0 + LEASE)
    third = record(owner_id, claim="third", at=T0 + 2 * LEASE)
    await store.insert(first)

    assert await store.replace(second, previous_claim="someone-else") is False
    assert await stored(store, owner_id) == first
    assert await store.replace(second, previous_claim="first") is True
    assert await stored(store, owner_id) == second
    # The first claim is spent: a second take-over with it loses.
    assert await store.replace(third, previous_claim="first") is False
    assert await stored(store, owner_id) == second


async def test_replace_creates_no_record_for_a_free_key(
    store: IdempotencyStore, owner_id: int
) -> None:
    assert await store.replace(record(owner_id), previous_claim="first") is False
    assert await stored(store, owner_id) is None


async def test_complete_stores_the_response_only_for_the_holding_claim(
    store: IdempotencyStore, owner_id: int
) -> None:
    first = record(owner_id)
    await store.insert(first)

    await store.complete(owner_id, "key-1", "someone-else", RESPONSE)
    assert await stored(store, owner_id) == first
    await store.complete(owner_id, "key-1", "first", RESPONSE)
    assert await stored(store, owner_id) == replace(first, response=RESPONSE)

    await store.complete(owner_id, "free-key", "first", RESPONSE)
    assert await stored(store, owner_id, "free-key") is None


async def test_release_forgets_the_key_only_for_the_holding_claim(
    store: IdempotencyStore, owner_id: int
) -> None:
    first = record(owner_id)
    await store.insert(first)

    await store.release(owner_id, "key-1", "someone-else")
    assert await stored(store, owner_id) == first
    await store.release(owner_id, "key-1", "first")
    assert await store.insert(record(owner_id, claim="second")) is None


async def test_purge_forgets_the_keys_expired_by_then_and_counts_them(
    store: IdempotencyStore, owner_id: int, bob: int
) -> None:
    now = T0 + KEEP_FOR
    records = {
        "earlier": record(owner_id, "earlier", at=T0 - MICROSECOND),
        "exactly": record(owner_id, "exactly", response=RESPONSE),
        "bobs": record(bob, "bobs", "bobs", at=T0 - timedelta(days=30)),
        "live": record(owner_id, "live", at=T0 + MICROSECOND),
    }
    for each in records.values():
        assert await store.insert(each) is None

    assert await store.purge(now) == 3

    assert await stored(store, owner_id, "live") == records["live"]
    for key, owner in [("earlier", owner_id), ("exactly", owner_id), ("bobs", bob)]:
        assert await stored(store, owner, key) is None, key
    assert await store.purge(now) == 0


async def test_records_round_trip_exactly(
    store: IdempotencyStore, owner_id: int
) -> None:
    visible = "".join(chr(code) for code in range(ord("!"), ord("~") + 1)) * 3
    responses = [
        RESPONSE,
        StoredResponse(201, (), b""),
        StoredResponse(201, (("x", "1"), ("x", "ü €")), bytes(range(256))),
    ]
    expected: list[IdempotencyRecord] = []
    for n, response in enumerate(responses):
        # Inserted whole, and stored as a claim then completed.
        full = record(
            owner_id, visible[n : n + 255], "0123456789abcdef" * 2, response=response
        )
        claimed = record(owner_id, f"completed-{n}", at=T0 + n * MICROSECOND)
        await store.insert(full)
        await store.insert(claimed)
        await store.complete(owner_id, claimed.key, claimed.claim, response)
        expected += [full, replace(claimed, response=response)]

    for each in expected:
        back = await stored(store, owner_id, each.key)
        assert back == each
        assert back is not None
        assert back.response is not None
        assert type(back.response.headers) is tuple
        assert all(type(header) is tuple for header in back.response.headers)
        assert type(back.response.body) is bytes
        for moment in (back.created_at, back.expires_at, back.locked_until):
            assert moment.utcoffset() == timedelta(0)
