"""Users and tokens, on the in-memory adapter."""

import asyncio
import hashlib
from datetime import timedelta
from functools import partial
from typing import Self

import pytest

from adapters.memory import InMemoryIdentityUnitOfWork, InMemoryStore
from application.identity import TOKEN_PREFIX, IdentityService
from domain.errors import InvalidValue, Unauthenticated, UserNameTaken, UserNotFound
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
