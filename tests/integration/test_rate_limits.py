"""The rate limit counted in Redis: one budget however many app instances count.

Redis comes from TEST_REDIS_URL; without it these tests skip with the reason,
unless TASKHUB_REQUIRE_REDIS=1 makes a missing or unreachable Redis an error.
Each test counts against a token of its own, so runs sharing a server never
share a key, and deletes the keys it made. The tests of a failing Redis need no
server and always run.
"""

import asyncio
import hashlib
import logging
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, NoReturn

import coredis
import pytest
from httpx import ASGITransport, AsyncClient

from entrypoints.container import build_container
from entrypoints.http.app import create_app
from entrypoints.http.ratelimit import REDIS_KEY_PREFIX
from entrypoints.settings import MEMORY_URL, Settings

RATELIMIT_LOGGER = "entrypoints.http.ratelimit"


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("TASKHUB_REQUIRE_REDIS") == "1":
        pytest.fail(f"TASKHUB_REQUIRE_REDIS=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
async def redis() -> AsyncIterator[tuple[str, coredis.Redis[str]]]:
    """The test Redis's URL, and a client of it for looking at the keys."""
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        _unavailable("no Redis: TEST_REDIS_URL is unset")
    client = coredis.Redis.from_url(
        url, decode_responses=True, connect_timeout=2, stream_timeout=2
    )
    try:
        await client.ping()
    except coredis.exceptions.RedisError as error:
        client.connection_pool.disconnect()
        _unavailable(f"Redis at {url} unreachable: {error}")
    yield url, client
    client.connection_pool.disconnect()


@pytest.fixture
async def token(redis: tuple[str, coredis.Redis[str]]) -> AsyncIterator[str]:
    """A token of this test's own; its rate limit keys are deleted afterwards."""
    _, client = redis
    token = f"test-{uuid.uuid4().hex}"
    yield token
    keys = await keys_of(client, token)
    if keys:
        await client.delete(keys)
    assert await keys_of(client, token) == []


async def keys_of(client: coredis.Redis[str], token: str) -> list[str]:
    digest = hashlib.sha256(token.encode()).hexdigest()
    return [key async for key in client.scan_iter(match=f"*{digest}*")]


@asynccontextmanager
async def serve(**settings: Any) -> AsyncIterator[AsyncClient]:
    """A client of a fresh app with its own container (auth off, in memory)."""
    app = create_app(
        build_container(Settings(database_url=MEMORY_URL, auth="disabled", **settings))
    )
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app), base_url="http://taskhub") as client,
    ):
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_two_app_instances_sharing_redis_spend_one_budget(
    redis: tuple[str, coredis.Redis[str]], token: str
) -> None:
    url, _ = redis
    async with (
        serve(rate_limit="4/minute", redis_url=url) as one,
        serve(rate_limit="4/minute", redis_url=url) as two,
    ):
        served = [
            await instance.get("/tasks", headers=bearer(token))
            for instance in (one, two, one, two)
        ]
        refused = [
            await instance.get("/tasks", headers=bearer(token))
            for instance in (one, two)
        ]

    assert [r.status_code for r in served] == [200] * 4
    assert [r.headers["RateLimit-Remaining"] for r in served] == ["3", "2", "1", "0"]
    assert [r.status_code for r in refused] == [429, 429]
    for response in refused:
        assert 1 <= int(response.headers["Retry-After"]) <= 60


async def test_redis_holds_a_hash_of_the_token_never_the_token(
    redis: tuple[str, coredis.Redis[str]], token: str
) -> None:
    url, client = redis
    async with serve(redis_url=url) as app:
        assert (await app.get("/tasks", headers=bearer(token))).status_code == 200

    keys = await keys_of(client, token)
    assert len(keys) == 1
    assert keys[0].startswith(REDIS_KEY_PREFIX + ":")
    assert not [key async for key in client.scan_iter(match=f"*{token}*")]


async def test_requests_go_through_uncounted_while_redis_refuses_connections(
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = "a-secret-token"
    async with serve(redis_url="redis://127.0.0.1:1/0") as app:
        responses = [await app.get("/tasks", headers=bearer(token)) for _ in range(3)]

    assert [r.status_code for r in responses] == [200] * 3
    assert not any("RateLimit-Limit" in r.headers for r in responses)
    warnings = [r for r in caplog.records if r.name == RATELIMIT_LOGGER]
    assert [r.levelno for r in warnings] == [logging.WARNING]  # one, not one each
    assert "not enforced" in warnings[0].getMessage()
    assert token not in caplog.text


@asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """The URL of a server that accepts connections and never answers."""

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()  # until the client gives up and disconnects
        finally:
            writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.close()
        await server.wait_closed()


async def test_requests_go_through_uncounted_while_redis_hangs() -> None:
    async with silent_server() as url, serve(redis_url=url) as app:
        response = await app.get("/tasks")

    assert response.status_code == 200
    assert "RateLimit-Limit" not in response.headers
