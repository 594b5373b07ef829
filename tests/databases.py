"""Throwaway databases for the tests: a migrated SQLite file, a PostgreSQL database.

PostgreSQL comes from TEST_DATABASE_URL (a server the tests may create databases
on), else from Docker through testcontainers when a daemon answers, else the
PostgreSQL tests skip with the reason, unless TASKHUB_REQUIRE_POSTGRES=1 makes a
missing server an error.
"""

import asyncio
import gc
import os
import uuid
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alembic import command
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from entrypoints.cli import alembic_config
from entrypoints.settings import Settings

T = TypeVar("T")

# With TEST_THROUGH_PGBOUNCER=1 (see tests/pgbouncer.py), how a database URL on
# the server becomes the URL the service is given, and back, for admin work.
_service_route: Callable[[str], str] | None = None
_direct_urls: dict[str, str] = {}


def route_service_urls(route: Callable[[str], str] | None) -> None:
    """From now on, give the service `route(url)` instead of the server's `url`."""
    global _service_route
    _service_route = route


@contextmanager
def service_urls_routed(route: Callable[[str], str]) -> Iterator[None]:
    """Within the block, route the service's URLs with `route` instead."""
    global _service_route
    previous, _service_route = _service_route, route
    try:
        yield
    finally:
        _service_route = previous


def direct(url: str) -> str:
    """The server's own URL for a URL the service was given: admin work, and the
    tests' own look at the rows, go there (not through PgBouncer)."""
    return _direct_urls.get(url, url)


def _service_url(url: str) -> str:
    if _service_route is None:
        return url
    routed = _service_route(url)
    _direct_urls[routed] = url
    return routed


def in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run blocking code that starts its own event loop away from pytest's loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args).result()


def migrate(url: str, revision: str = "head", *, down: bool = False) -> None:
    """Run Alembic as `taskhub db` does (its env.py runs its own event loop)."""
    config = alembic_config(Settings(database_url=url))
    in_thread(command.downgrade if down else command.upgrade, config, revision)


def run_sql(url: str, statement: str) -> None:
    """Run one statement outside any transaction (CREATE DATABASE, TRUNCATE...)."""
    in_thread(asyncio.run, _autocommit(direct(url), statement))


def planned_rows(url: str) -> float:
    """How many rows PostgreSQL's planner believes the tasks table holds (-1:
    it was never analyzed)."""

    async def read() -> float:
        engine = create_async_engine(
            make_url(direct(url)).set(drivername="postgresql+asyncpg")
        )
        try:
            async with engine.connect() as connection:
                statement = "SELECT reltuples FROM pg_class WHERE relname = 'tasks'"
                return float((await connection.exec_driver_sql(statement)).scalar_one())
        finally:
            await engine.dispose()

    return in_thread(asyncio.run, read())


def postgres_required() -> bool:
    return os.environ.get("TASKHUB_REQUIRE_POSTGRES") == "1"


def _start_postgres_container() -> tuple[Any, str]:
    """A started testcontainers PostgreSQL, or None and why there is none."""
    docker_host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    socket_path = docker_host.removeprefix("unix://")
    if docker_host.startswith("unix://") and not Path(socket_path).exists():
        return None, f"no Docker daemon listens at {docker_host}"
    # A failed Docker client leaves sockets for the garbage collector to close.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            from testcontainers.community.postgres import PostgresContainer

            container = PostgresContainer("postgres:15-alpine", driver="asyncpg")
            container.start()
            return container, ""
        except Exception as error:  # no daemon answering, no image, ...
            return None, f"Docker failed: {error}"
        finally:
            gc.collect()


@contextmanager
def postgres_server() -> Iterator[str]:
    """An admin URL of a PostgreSQL server, or a skip saying why there is none."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield Settings(database_url=url).database_url
        return
    container, problem = _start_postgres_container()
    if container is None:
        reason = f"no PostgreSQL: TEST_DATABASE_URL is unset and {problem}"
        if postgres_required():
            pytest.fail(f"TASKHUB_REQUIRE_POSTGRES=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    try:
        yield container.get_connection_url()
    finally:
        container.stop()


async def _autocommit(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql(statement)
    finally:
        await engine.dispose()


def _create_database(server_url: str, name: str) -> None:
    # A language-aware collation, where the server has ICU: the adapters must not
    # depend on the database's default collation for sorting or comparing text.
    try:
        run_sql(
            server_url,
            f'CREATE DATABASE "{name}" TEMPLATE template0 '
            "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'",
        )
    except DBAPIError:
        run_sql(server_url, f'CREATE DATABASE "{name}"')


@contextmanager
def fresh_postgres_database(server_url: str, *, migrated: bool = True) -> Iterator[str]:
    """A new database on the server (migrated to head), dropped again afterwards;
    its URL as the service is to use it (through PgBouncer if the run says so)."""
    name = f"taskhub_test_{uuid.uuid4().hex[:12]}"
    admin = make_url(server_url)
    try:
        _create_database(server_url, name)
    except OSError as error:
        if postgres_required():
            pytest.fail(f"PostgreSQL at {admin.host}:{admin.port}: {error}")
        pytest.skip(f"PostgreSQL at {admin.host}:{admin.port} unreachable: {error}")
    url = _service_url(admin.set(database=name).render_as_string(hide_password=False))
    try:
        if migrated:
            migrate(url)
        yield url
    finally:
        run_sql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
