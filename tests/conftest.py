import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from entrypoints.container import Container, build_container
from entrypoints.http.app import create_app
from entrypoints.settings import MEMORY_URL, Settings
from tests.databases import (
    fresh_postgres_database,
    migrate,
    postgres_server,
    route_service_urls,
    run_sql,
)
from tests.fakes import TickingClock
from tests.pgbouncer import POOLER, pgbouncer, through_pgbouncer

BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session", autouse=True)
def _through_pgbouncer_when_asked() -> Iterator[None]:
    """With TEST_THROUGH_PGBOUNCER=1, the service reaches every PostgreSQL database
    of the run through one PgBouncer in transaction mode, with the setting for it
    in the environment (so `taskhub` subprocesses inherit it too)."""
    if not through_pgbouncer():
        yield
        return
    with postgres_server() as server, pgbouncer(server) as bouncer:
        os.environ["TASKHUB_DATABASE_POOLER"] = POOLER
        route_service_urls(bouncer.url_for)
        try:
            yield
        finally:
            route_service_urls(None)
            del os.environ["TASKHUB_DATABASE_POOLER"]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy of it."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    migrate(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "taskhub.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A migrated database of this run's own on the PostgreSQL server."""
    with postgres_server() as server, fresh_postgres_database(server) as url:
        yield url


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """The run's PostgreSQL database, emptied before each test."""
    run_sql(
        postgres_database,
        "TRUNCATE idempotency_keys, tasks, projects, api_tokens, users "
        "RESTART IDENTITY CASCADE",
    )
    return postgres_database


def url_for(backend: str, request: pytest.FixtureRequest) -> str:
    if backend == "memory":
        return MEMORY_URL
    return str(request.getfixturevalue(f"{backend}_url"))


@pytest.fixture
def clock() -> TickingClock:
    return TickingClock()


def test_settings(database_url: str, **overrides: object) -> Settings:
    """Settings for a test: no token file written, no rate limit in the way."""
    return Settings.model_validate(
        {
            "database_url": database_url,
            "first_token_file": None,
            "rate_limit": "",
            **overrides,
        }
    )


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@pytest.fixture
async def container(database_url: str, clock: TickingClock) -> AsyncIterator[Container]:
    """The real container for `database_url`, with the clock swapped for a fake."""
    container = build_container(test_settings(database_url))
    container.clock.override(clock)
    yield container
    if container.engine.initialized:
        await container.engine().dispose()


@pytest.fixture
async def owner_id(container: Container) -> int:
    """The user the tests act as, unless they say otherwise."""
    return await container.identity_service().ensure_user("alice")


@pytest.fixture
async def token(container: Container, owner_id: int) -> str:
    """An API token of the `owner_id` user."""
    issued = await container.identity_service().issue_token("alice", "tests")
    return issued.secret


@pytest.fixture
async def app(container: Container) -> AsyncIterator[FastAPI]:
    app = create_app(container)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI, token: str) -> AsyncIterator[AsyncClient]:
    """An HTTP client of the ASGI app, authenticated as `owner_id`."""
    headers = {"Authorization": f"Bearer {token}"}
    async with AsyncClient(
        transport=ASGITransport(app), base_url="http://taskhub", headers=headers
    ) as client:
        yield client
