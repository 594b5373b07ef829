"""A request takes one pooled connection for its token and its use case, and
gives it back before its response starts (entrypoints.http.middleware's
OneConnection)."""

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from starlette.types import Message, Receive, Scope, Send

from entrypoints.container import Container
from tests.conftest import url_for


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    return url_for(request.param, request)


@pytest.fixture
def checkouts(container: Container) -> Iterator[list[object]]:
    """Every connection the pool hands out from now on."""
    pool = container.engine().sync_engine.pool
    taken: list[object] = []

    def note(_dbapi: object, _record: object, proxy: object) -> None:
        taken.append(proxy)

    sa.event.listen(pool, "checkout", note)
    yield taken
    sa.event.remove(pool, "checkout", note)


@pytest.fixture
def checked_out_at_start(app: FastAPI, container: Container) -> list[int]:
    """How many connections were out of the pool as each response started."""
    seen: list[int] = []
    pool = container.engine().sync_engine.pool
    inner = app.middleware_stack or app.build_middleware_stack()

    async def noting(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen.append(pool.checkedout())  # type: ignore[attr-defined]
            await send(message)

        await inner(scope, receive, send_noting)

    app.middleware_stack = noting
    return seen


async def test_a_read_with_a_token_takes_one_connection(
    app: FastAPI,
    token: str,
    checkouts: list[object],
    checked_out_at_start: list[int],
) -> None:
    async with AsyncClient(
        transport=ASGITransport(app),
        base_url="http://taskhub",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        created = await client.post("/tasks", json={"title": "one"})
        checkouts.clear()
        got = await client.get(created.headers["Location"])
        listed = await client.get("/tasks")

    assert created.status_code == 201
    assert (got.status_code, got.json()["title"]) == (200, "one")
    assert [t["title"] for t in listed.json()["items"]] == ["one"]
    assert len(checkouts) == 2  # one per request: the token's and the read's
    assert checked_out_at_start == [0, 0, 0]  # back before each response began


async def test_a_refused_token_leaves_no_connection_out(
    app: FastAPI, container: Container, checked_out_at_start: list[int]
) -> None:
    async with AsyncClient(
        transport=ASGITransport(app),
        base_url="http://taskhub",
        headers={"Authorization": "Bearer taskhub_not-a-token"},
    ) as client:
        refused = await client.get("/tasks/1")

    assert refused.status_code == 401
    assert checked_out_at_start == [0]
    assert container.engine().sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
