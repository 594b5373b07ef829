"""The token repository's lookups, on every backend."""

import pytest

from application.identity import hash_token
from entrypoints.container import Container
from tests.conftest import BACKENDS, url_for


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    return url_for(request.param, request)


@pytest.mark.parametrize("asked", [0, 1, 2, 3])
async def test_find_many_finds_the_tokens_of_the_hashes_and_no_others(
    container: Container, owner_id: int, asked: int
) -> None:
    identity = container.identity_service()
    issued = [await identity.issue_token("alice", f"t{i}") for i in range(4)]
    wanted = {t.record.secret_hash for t in issued[:asked]}

    async with container.identity_unit_of_work(read_only=True) as uow:
        found = await uow.tokens.find_many({*wanted, hash_token("taskhub_unknown")})

    assert sorted(t.secret_hash for t in found) == sorted(wanted)
    by_hash = {t.record.secret_hash: t.record for t in issued}
    assert all(t == by_hash[t.secret_hash] for t in found)
