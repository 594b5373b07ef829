"""Two `taskhub serve` processes on one PostgreSQL database and one Redis behave
as one service: whatever one of them does, the other sees at once.

Each process keeps a few things in memory: the cursor key (read once at start),
the idempotency service's last purge time, the rate limiter's counts without
Redis, and SQLAlchemy's compiled statements. None of them may decide what a
request sees; the tests below show for each what does decide it (the database,
or Redis), by sending one half of the traffic to each instance.
"""

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import coredis
import httpx
import pytest

from tests.databases import fresh_postgres_database, postgres_server
from tests.served import Served, environment, serve, taskhub

pytestmark = pytest.mark.postgres

RATE_LIMIT = 60  # per minute and token: more than any other test here spends
CONCURRENT = 20


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("TASKHUB_REQUIRE_REDIS") == "1":
        pytest.fail(f"TASKHUB_REQUIRE_REDIS=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass(frozen=True)
class Pair:
    """Two instances of one service, and how to run its command line."""

    a: Served
    b: Served
    env: dict[str, str]
    tokens: list[str] = field(default_factory=list)

    def new_token(self) -> str:
        """The first token of a new user, made on the command line."""
        name = f"user-{uuid.uuid4().hex[:12]}"
        token = taskhub(self.env, "users", "create", name).stdout.strip()
        self.tokens.append(token)
        return token


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with postgres_server() as server, fresh_postgres_database(server) as url:
        yield url


@pytest.fixture(scope="module")
def redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        _unavailable("no Redis: TEST_REDIS_URL is unset")
    return url


async def _delete_keys(url: str, tokens: list[str]) -> None:
    """Drop the rate limit keys of `tokens`, and no other run's."""
    client = coredis.Redis.from_url(url, connect_timeout=2, stream_timeout=2)
    try:
        for token in tokens:
            digest = hashlib.sha256(token.encode()).hexdigest()
            keys = [key async for key in client.scan_iter(match=f"*{digest}*")]
            if keys:
                await client.delete(keys)
    finally:
        client.connection_pool.disconnect()


@pytest.fixture(scope="module")
def pair(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    """Two instances counting one rate limit in Redis."""
    logs = tmp_path_factory.mktemp("two-instances")
    env = environment(
        database_url,
        first_token_file="",
        redis_url=redis_url,
        rate_limit=f"{RATE_LIMIT}/minute",
    )
    with ExitStack() as stack:
        a = stack.enter_context(serve(env, logs / "a.log"))
        b = stack.enter_context(serve(env, logs / "b.log"))
        pair = Pair(a, b, env)
        yield pair
    asyncio.run(_delete_keys(redis_url, pair.tokens))


@pytest.fixture
async def clients(pair: Pair) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    """A client of each instance, both acting as one new user."""
    headers = {"Authorization": f"Bearer {pair.new_token()}"}
    async with (
        httpx.AsyncClient(base_url=pair.a.base_url, headers=headers) as a,
        httpx.AsyncClient(base_url=pair.b.base_url, headers=headers) as b,
    ):
        yield a, b


async def test_of_twenty_if_match_patches_over_both_instances_exactly_one_wins(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = clients
    created = await a.post("/tasks", json={"title": "Contended"})
    etag = created.headers["etag"]
    path = created.headers["location"]

    async def patch(n: int) -> httpx.Response:
        client = (a, b)[n % 2]
        return await client.patch(
            path, json={"title": f"Winner {n}"}, headers={"If-Match": etag}
        )

    answers = await asyncio.gather(*(patch(n) for n in range(CONCURRENT)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] + [412] * (CONCURRENT - 1)
    (winner,) = [answer for answer in answers if answer.status_code == 200]
    for client in clients:
        task = await client.get(path)
        assert task.json()["title"] == winner.json()["title"]
        assert task.json()["version"] == 2
        assert task.headers["etag"] == '"2"'


async def test_identical_posts_with_one_key_over_both_instances_make_one_task(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = clients
    key = uuid.uuid4().hex
    body = {"title": f"Once {key}"}

    async def post(n: int) -> httpx.Response:
        client = (a, b)[n % 2]
        return await client.post("/tasks", json=body, headers={"Idempotency-Key": key})

    answers = await asyncio.gather(*(post(n) for n in range(CONCURRENT)))
    assert {answer.status_code for answer in answers} <= {201, 409}
    created = [answer for answer in answers if answer.status_code == 201]
    assert created, "no request with the key got its task made"
    assert len({answer.headers["location"] for answer in created}) == 1
    assert len({answer.content for answer in created}) == 1
    for answer in answers:
        if answer.status_code == 409:
            assert "retry-after" in answer.headers

    # Once the first is done, a retry on either instance is a replay.
    for client in clients:
        retry = await client.post("/tasks", json=body, headers={"Idempotency-Key": key})
        assert retry.status_code == 201
        assert retry.headers["idempotent-replayed"] == "true"
        assert retry.content == created[0].content
    listing = await b.get("/tasks", params={"q": key})
    assert listing.json()["total"] == 1


async def test_the_rate_limit_is_spent_by_both_instances_together(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = clients
    remaining = []
    for n in range(RATE_LIMIT):
        answer = await (a, b)[n % 2].get("/tasks", params={"limit": 1})
        assert answer.status_code == 200, f"request {n + 1} of {RATE_LIMIT}"
        remaining.append(int(answer.headers["ratelimit-remaining"]))
    # One count: each answer, from either instance, has one request less left.
    assert remaining == list(range(RATE_LIMIT - 1, -1, -1))
    for client in clients:
        refused = await client.get("/tasks")
        assert refused.status_code == 429
        assert "retry-after" in refused.headers


def test_a_token_revoked_on_the_command_line_is_refused_at_once_by_both(
    pair: Pair,
) -> None:
    token = pair.new_token()
    headers = {"Authorization": f"Bearer {token}"}
    for served in (pair.a, pair.b):
        answer = httpx.get(f"{served.base_url}/tasks", headers=headers)
        assert answer.status_code == 200
    taskhub(pair.env, "tokens", "revoke", token[:16])
    for served in (pair.a, pair.b):
        answer = httpx.get(f"{served.base_url}/tasks", headers=headers)
        assert answer.status_code == 401


async def test_a_change_through_one_instance_is_read_fresh_from_the_other(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = clients
    path = (await a.post("/tasks", json={"title": "First"})).headers["location"]
    before = await b.get(path)
    assert before.headers["etag"] == '"1"'

    assert (await a.patch(path, json={"title": "Second"})).status_code == 200
    after = await b.get(path, headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200  # not 304: B holds no stale copy
    assert after.json()["title"] == "Second"
    assert after.headers["etag"] == '"2"'
    listed = await b.get("/tasks", params={"q": "Second"})
    assert [task["title"] for task in listed.json()["items"]] == ["Second"]

    assert (await a.delete(path)).status_code == 204
    assert (await b.get(path)).status_code == 404
    assert (await b.get("/tasks", params={"q": "Second"})).json()["total"] == 0


async def test_a_cursor_from_one_instance_pages_on_with_the_other(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = clients
    for title in ("One", "Two", "Three"):
        await a.post("/tasks", json={"title": title})
    first = await a.get("/tasks", params={"sort": "id", "limit": 2})
    cursor = first.json()["next_cursor"]
    rest = await b.get("/tasks", params={"sort": "id", "limit": 2, "cursor": cursor})
    assert rest.status_code == 200
    assert [task["title"] for task in rest.json()["items"]] == ["Three"]


def test_without_redis_each_instance_counts_its_own_rate_limit(
    database_url: str, tmp_path: Path
) -> None:
    limit = 5
    env = environment(
        database_url, first_token_file="", rate_limit=f"{limit}/minute", redis_url=""
    )
    token = taskhub(env, "users", "create", f"user-{uuid.uuid4().hex[:12]}").stdout
    headers = {"Authorization": f"Bearer {token.strip()}"}
    with serve(env, tmp_path / "a.log") as a, serve(env, tmp_path / "b.log") as b:
        for served in (a, b):
            for _ in range(limit):
                answer = httpx.get(f"{served.base_url}/tasks", headers=headers)
                assert answer.status_code == 200
        # Twice the limit went through; each instance now refuses on its own.
        for served in (a, b):
            answer = httpx.get(f"{served.base_url}/tasks", headers=headers)
            assert answer.status_code == 429
