"""Users and tokens, on the in-memory adapter."""

import asyncio
import hashlib
from collections.abc import Collection
from datetime import timedelta
from functools import partial
from typing import Any, Self

import pytest

from adapters.memory import InMemoryIdentityUnitOfWork, InMemoryStore
from application.identity import TOKEN_PREFIX, IdentityService
from domain.errors import InvalidValue, Unauthenticated, UserNameTaken, UserNotFound
from domain.users import ApiToken
from tests.fakes import FrozenClock


@pytest.fixture
def identity(store: InMemoryStore, clock: FrozenClock) -> IdentityService:
    return IdentityService(partial(InMemoryIdentityUnitOfWork, store), clock)


async def test_a_new_users_token_authenticates_as_that_user(
    identity: IdentityService,
) -> None:
    user, issued = await identity.create_user("alice")
    assert issued.secret.startswith(TOKEN_PREFIX)
    assert await identity.authenticate(issued.secret) == user.id


async def test_only_the_hash_of_a_token_is_stored(
    identity: IdentityService, store: InMemoryStore
) -> None:
    _, issued = await identity.create_user("alice")
    (record,) = store.tokens.values()
    assert record.secret_hash == hashlib.sha256(issued.secret.encode()).hexdigest()
    assert issued.secret not in repr(record)
    assert issued.secret.startswith(record.prefix)


@pytest.mark.parametrize("secret", ["", "taskhub_", "taskhub_unknown", "x" * 500])
async def test_an_unknown_token_is_refused(
    identity: IdentityService, secret: str
) -> None:
    await identity.create_user("alice")
    with pytest.raises(Unauthenticated):
        await identity.authenticate(secret)


async def test_a_revoked_token_is_refused_at_once(identity: IdentityService) -> None:
    _, issued = await identity.create_user("alice")
    await identity.authenticate(issued.secret)
    await identity.revoke_token(issued.record.prefix)
    with pytest.raises(Unauthenticated):
        await identity.authenticate(issued.secret)


async def test_an_expired_token_is_refused(
    identity: IdentityService, clock: FrozenClock
) -> None:
    await identity.create_user("alice")
    issued = await identity.issue_token("alice", "ci", timedelta(hours=1))
    clock.advance(minutes=59)
    await identity.authenticate(issued.secret)
    clock.advance(minutes=1)
    with pytest.raises(Unauthenticated):
        await identity.authenticate(issued.secret)


async def test_last_use_is_recorded_at_most_once_a_minute(
    identity: IdentityService, clock: FrozenClock
) -> None:
    _, issued = await identity.create_user("alice")
    first = clock.now()
    await identity.authenticate(issued.secret)
    clock.advance(seconds=30)
    await identity.authenticate(issued.secret)
    (token,) = await identity.list_tokens("alice")
    assert token.last_used_at == first
    later = clock.advance(seconds=30)
    await identity.authenticate(issued.secret)
    (token,) = await identity.list_tokens("alice")
    assert token.last_used_at == later


async def test_user_names_are_unique_and_well_formed(identity: IdentityService) -> None:
    await identity.create_user("alice")
    with pytest.raises(UserNameTaken):
        await identity.create_user("alice")
    for bad in ["", "-dash", "has space", "x" * 65]:
        with pytest.raises(InvalidValue):
            await identity.create_user(bad)


async def test_tokens_are_issued_only_to_existing_users_and_never_expired(
    identity: IdentityService,
) -> None:
    with pytest.raises(UserNotFound):
        await identity.issue_token("nobody", "ci")
    await identity.create_user("alice")
    with pytest.raises(InvalidValue):
        await identity.issue_token("alice", "ci", timedelta(0))


async def test_the_first_user_is_made_only_on_an_empty_install(
    identity: IdentityService,
) -> None:
    issued = await identity.create_first_user("admin")
    assert issued is not None
    assert await identity.create_first_user("admin") is None
    assert await identity.ensure_user("admin") == await identity.authenticate(
        issued.secret
    )


async def test_requests_in_flight_together_record_a_tokens_use_once(
    store: InMemoryStore, clock: FrozenClock
) -> None:
    writes = 0

    class SlowToWrite(InMemoryIdentityUnitOfWork):
        async def __aenter__(self) -> Self:
            if not self.read_only:
                nonlocal writes
                writes += 1
                await asyncio.sleep(0.01)  # the others read the token meanwhile
            return await super().__aenter__()

    identity = IdentityService(partial(SlowToWrite, store), clock)
    user, issued = await identity.create_user("alice")
    now = clock.advance(minutes=2)
    writes = 0

    owners = await asyncio.gather(
        *(identity.authenticate(issued.secret) for _ in range(20))
    )

    assert owners == [user.id] * 20
    assert writes == 1
    (token,) = await identity.list_tokens("alice")
    assert token.last_used_at == now


async def test_a_use_that_failed_to_be_recorded_is_recorded_by_the_next_request(
    store: InMemoryStore, clock: FrozenClock
) -> None:
    failing = True

    class FailsOnce(InMemoryIdentityUnitOfWork):
        async def commit(self) -> None:  # authenticate commits only the use
            if failing:
                raise ConnectionError("the database went away")
            await super().commit()

    identity = IdentityService(partial(InMemoryIdentityUnitOfWork, store), clock)
    _, issued = await identity.create_user("alice")
    flaky = IdentityService(partial(FailsOnce, store), clock)
    now = clock.advance(minutes=2)

    with pytest.raises(ConnectionError):
        await flaky.authenticate(issued.secret)
    failing = False
    await flaky.authenticate(issued.secret)

    (token,) = await identity.list_tokens("alice")
    assert token.last_used_at == now


class CountingReads:
    """The identity service's units of work on the store: its reads of tokens
    counted, able to answer only once `gate` opens, or to fail once
    (`fail_next`). A read takes no lock, as a database's reader takes none."""

    def __init__(self, store: InMemoryStore) -> None:
        self.store = store
        self.reads: list[set[str]] = []  # the hashes each read asked for
        self.read = asyncio.Event()  # a read has read
        self.gate: asyncio.Event | None = None
        self.fail_next = False

    def __call__(self, read_only: bool = False) -> Any:
        return self if read_only else InMemoryIdentityUnitOfWork(self.store)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    @property
    def tokens(self) -> Self:
        return self

    async def find_many(self, hashes: Collection[str]) -> list[ApiToken]:
        self.reads.append(set(hashes))
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("the database went away")
        found = [
            t.copy() for t in self.store.tokens.values() if t.secret_hash in hashes
        ]
        self.read.set()
        if self.gate is not None:  # read now, answer once it opens
            await self.gate.wait()
        await asyncio.sleep(0)  # as a round trip lets other requests run
        return found


@pytest.fixture
def reads(store: InMemoryStore) -> CountingReads:
    return CountingReads(store)


@pytest.fixture
def counted_identity(reads: CountingReads, clock: FrozenClock) -> IdentityService:
    return IdentityService(reads, clock)


async def test_lookups_made_during_a_read_share_the_next_and_each_gets_its_own_user(
    counted_identity: IdentityService, reads: CountingReads
) -> None:
    users = {}
    for name in ("alice", "bob", "carol"):
        user, issued = await counted_identity.create_user(name)
        users[issued.secret] = user.id
    secrets_ = [*users] * 4 + ["taskhub_unknown"]
    reads.reads.clear()

    results = await asyncio.gather(
        *(counted_identity.authenticate(s) for s in secrets_), return_exceptions=True
    )

    assert results[:-1] == [users[s] for s in secrets_[:-1]]
    assert isinstance(results[-1], Unauthenticated)
    # The first read at once, alone; the twelve others asked meanwhile, in one.
    assert len(reads.reads) == 2
    assert len(reads.reads[1]) == 4  # each hash asked for once


async def test_a_lookup_made_during_a_read_waits_for_a_read_that_starts_after_it(
    counted_identity: IdentityService, reads: CountingReads
) -> None:
    _, issued = await counted_identity.create_user("alice")
    reads.gate = asyncio.Event()
    before = asyncio.create_task(counted_identity.authenticate(issued.secret))
    await reads.read.wait()  # its read has read, and waits at the gate

    await counted_identity.revoke_token(issued.record.prefix)
    after = asyncio.create_task(counted_identity.authenticate(issued.secret))
    await asyncio.sleep(0.01)
    assert not after.done()  # it does not take the answer read before it came
    reads.gate.set()

    assert await before == issued.record.user_id  # asked before the revocation
    with pytest.raises(Unauthenticated):  # asked after it
        await after
    assert len(reads.reads) == 2


async def while_one_reads(
    identity: IdentityService, reads: CountingReads, secret: str, waiting: int
) -> tuple["asyncio.Task[int]", list["asyncio.Task[int]"]]:
    """A lookup of `secret` whose read waits at the gate, and `waiting` lookups
    made meanwhile, waiting for the next read."""
    reads.gate = asyncio.Event()
    first = asyncio.create_task(identity.authenticate(secret))
    await reads.read.wait()
    others = [
        asyncio.create_task(identity.authenticate(secret)) for _ in range(waiting)
    ]
    await asyncio.sleep(0)  # each has asked
    return first, others


async def test_a_failed_read_fails_each_lookup_it_answers_and_the_next_read_works(
    counted_identity: IdentityService, reads: CountingReads
) -> None:
    user, issued = await counted_identity.create_user("alice")
    first, others = await while_one_reads(counted_identity, reads, issued.secret, 3)
    reads.fail_next = True  # the next read: the one the three wait for

    assert reads.gate is not None
    reads.gate.set()
    results = await asyncio.gather(*others, return_exceptions=True)

    assert await first == user.id
    assert [type(r) for r in results] == [ConnectionError] * 3
    assert await counted_identity.authenticate(issued.secret) == user.id


async def test_a_cancelled_lookup_leaves_the_others_of_its_read_answered(
    counted_identity: IdentityService, reads: CountingReads
) -> None:
    user, issued = await counted_identity.create_user("alice")
    first, (cancelled, other) = await while_one_reads(
        counted_identity, reads, issued.secret, 2
    )

    cancelled.cancel()
    assert reads.gate is not None
    reads.gate.set()

    async with asyncio.timeout(10):  # answered, not left waiting
        assert [await first, await other] == [user.id, user.id]
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert len(reads.reads) == 2
