"""Request ids, liveness and readiness, and which errors mean "database down"."""

import re
import sqlite3

import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from entrypoints.container import build_container
from entrypoints.http.app import create_app
from entrypoints.logs import RequestIdFilter
from entrypoints.outages import database_unavailable
from tests.api.helpers import assert_problem
from tests.api.test_hardening import BrokenTaskService, serve
from tests.conftest import test_settings
from tests.databases import run_sql

SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


async def test_a_safe_client_request_id_is_echoed_and_in_problem_bodies(
    client: AsyncClient,
) -> None:
    ok = await client.get("/tasks", headers={"X-Request-ID": "abc-123.x:y_z"})
    missing = await client.get("/tasks/999", headers={"X-Request-ID": "trace-1"})

    assert ok.headers["X-Request-ID"] == "abc-123.x:y_z"
    assert missing.headers["X-Request-ID"] == "trace-1"
    assert missing.json()["request_id"] == "trace-1"


@pytest.mark.parametrize(
    "unsafe",
    ["", "a" * 129, "has space", "semi;colon", "caf\u00e9", "line\u2028break"],
)
async def test_an_unsafe_client_request_id_is_replaced(
    client: AsyncClient, unsafe: str
) -> None:
    # Non-ASCII travels as its UTF-8 bytes, as a raw client would send it.
    response = await client.get("/tasks", headers={"X-Request-ID": unsafe.encode()})

    echoed = response.headers["X-Request-ID"]
    assert echoed != unsafe
    assert SAFE_ID.fullmatch(echoed)


async def test_without_a_request_id_each_request_gets_its_own(
    client: AsyncClient,
) -> None:
    first = await client.get("/tasks")
    second = await client.get("/nowhere")

    ids = {first.headers["X-Request-ID"], second.headers["X-Request-ID"]}
    assert len(ids) == 2
    assert all(SAFE_ID.fullmatch(i) for i in ids)
    assert assert_problem(second, 404)  # its body carried the id (checked there)


async def test_probes_need_no_token(app: object) -> None:
    async with AsyncClient(
        transport=ASGITransport(app), base_url="http://taskhub"
    ) as anonymous:
        alive = await anonymous.get("/healthz")
        ready = await anonymous.get("/readyz")

    assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ok"})


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


async def test_readyz_is_503_when_the_schema_is_not_at_head(
    client: AsyncClient, sqlite_url: str
) -> None:
    run_sql(sqlite_url, "UPDATE alembic_version SET version_num = '0001'")

    response = await client.get("/readyz")

    body = assert_problem(response, 503)
    assert "0001" in body["detail"]
    assert "taskhub db upgrade" in body["detail"]
    assert response.headers["Retry-After"] == "1"


async def test_readyz_is_503_when_the_database_does_not_answer(
    tmp_path: object,
) -> None:
    container = build_container(
        test_settings("postgresql://nobody@127.0.0.1:1/nothing")
    )
    app = create_app(container)  # no lifespan: it would refuse to start
    async with AsyncClient(
        transport=ASGITransport(app), base_url="http://taskhub"
    ) as anonymous:
        ready = await anonymous.get("/readyz")
        alive = await anonymous.get("/healthz")
    await container.engine().dispose()

    assert assert_problem(ready, 503)["detail"] == "The database does not answer."
    assert alive.status_code == 200


async def test_probes_are_not_rate_limited(sqlite_url: str) -> None:
    container = build_container(test_settings(sqlite_url, rate_limit="2/minute"))
    app = create_app(container)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app), base_url="http://t") as anonymous,
    ):
        statuses = [(await anonymous.get("/healthz")).status_code for _ in range(5)]
        statuses += [(await anonymous.get("/readyz")).status_code for _ in range(5)]
        limited = [(await anonymous.get("/tasks")).status_code for _ in range(3)]

    assert statuses == [200] * 10
    assert limited[-1] == 429


def _wrapped(error: Exception) -> DBAPIError:
    return DBAPIError("SELECT 1", None, error)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "refused"),
        TimeoutError(),
        OperationalError("BEGIN", None, sqlite3.OperationalError("locked")),
        _wrapped(ConnectionResetError()),
    ],
    ids=["refused", "timeout", "sqlite-locked", "reset-inside-dbapi-error"],
)
def test_outages_count_as_the_database_being_unavailable(error: Exception) -> None:
    assert database_unavailable(error)


def test_a_statement_timeout_counts_as_unavailable() -> None:
    import asyncpg.exceptions as pg  # type: ignore[import-untyped]

    cancelled = pg.QueryCanceledError("canceling statement due to statement timeout")
    adapted = Exception("adapted")
    adapted.__cause__ = cancelled

    assert database_unavailable(_wrapped(adapted))


@pytest.mark.parametrize(
    "error",
    [
        IntegrityError("INSERT", None, Exception("duplicate key")),
        _wrapped(ValueError("bad parameter")),
        RuntimeError("a bug"),
    ],
    ids=["integrity", "bad-parameter", "bug"],
)
def test_bugs_and_constraint_errors_do_not(error: Exception) -> None:
    assert not database_unavailable(error)


async def test_a_crash_is_logged_with_the_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.handler.addFilter(RequestIdFilter())
    async with serve(raise_app_exceptions=False, tasks=BrokenTaskService()) as client:
        response = await client.get("/tasks", headers={"X-Request-ID": "crash-1"})

    assert assert_problem(response, 500)
    crash_lines = [r for r in caplog.records if r.exc_info]
    assert crash_lines
    assert {getattr(r, "request_id", None) for r in crash_lines} == {"crash-1"}
