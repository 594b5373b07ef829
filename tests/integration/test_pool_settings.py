"""The pool settings reach the engine and do what they say, on PostgreSQL."""

import asyncio
import logging
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from adapters.sqlalchemy.driver import Driver
from entrypoints.container import Container, build_container
from tests.conftest import test_settings
from tests.databases import direct

pytestmark = pytest.mark.postgres


@pytest.fixture
async def container_with(
    postgres_url: str,
) -> AsyncIterator[Callable[..., Container]]:
    """Builds the service's container, straight to PostgreSQL, with some settings."""
    made: list[Container] = []

    def build(**settings: Any) -> Container:
        container = build_container(
            test_settings(direct(postgres_url), database_pooler="none", **settings)
        )
        made.append(container)
        return container

    yield build
    for container in made:
        if container.engine.initialized:
            await container.engine().dispose()


@pytest.fixture
def engine_with(container_with: Callable[..., Container]) -> Callable[..., Any]:
    """The service's engine with some settings."""
    return lambda **settings: container_with(**settings).engine()


async def _pid(connection: AsyncConnection) -> int:
    return int((await connection.execute(sa.select(sa.func.pg_backend_pid()))).scalar())


async def test_max_overflow_lets_a_burst_open_connections_beyond_the_pool(
    engine_with: Callable[..., Any],
) -> None:
    fixed = engine_with(database_pool_size=1, database_pool_timeout=0.2)
    async with fixed.connect():
        with pytest.raises(exc.TimeoutError):
            async with fixed.connect():
                pass
    bursting = engine_with(
        database_pool_size=1, database_max_overflow=1, database_pool_timeout=0.2
    )
    async with bursting.connect() as first, bursting.connect() as second:
        assert await _pid(first) != await _pid(second)


# The same settings where the service's units of work take their connections:
# through the driver, which hands out an idle connection without a greenlet
# when it can (adapters.sqlalchemy.driver).


@pytest.fixture
def driver_with(container_with: Callable[..., Container]) -> Callable[..., Driver]:
    """The service's driver with some settings."""
    return lambda **settings: container_with(**settings).driver()


async def _driver_pid(driver: Driver) -> int:
    session = driver.reads()
    try:
        result = await session.execute(sa.select(sa.func.pg_backend_pid()))
        return int(result.scalar_one())
    finally:
        await session.close()


@asynccontextmanager
async def _holding(container: Container, via: str) -> AsyncIterator[None]:
    """A connection of the pool taken, by the engine or by the driver."""
    if via == "engine":
        async with container.engine().connect():
            yield
        return
    driver: Driver = container.driver()
    pooled = await driver.checkout()
    try:
        yield
    finally:
        await driver.checkin(pooled)


async def _pid_via(container: Container, via: str) -> int:
    if via == "engine":
        async with container.engine().connect() as connection:
            return await _pid(connection)
    return await _driver_pid(container.driver())


# The service's units of work take connections through the driver, which hands
# out an idle one without a greenlet when it can (adapters.sqlalchemy.driver):
# the settings hold there too.
VIA = pytest.mark.parametrize("via", ["engine", "driver"])


@VIA
async def test_pre_ping_asks_the_server_before_handing_a_connection_out(
    container_with: Callable[..., Container], postgres_url: str, via: str
) -> None:
    """The last statement a pooled connection's backend ran, right after a
    checkout: the ping (`;`) with pre-ping, the previous request's without."""
    admin = create_async_engine(direct(postgres_url), isolation_level="AUTOCOMMIT")
    last_query = sa.text("SELECT query FROM pg_stat_activity WHERE pid = :pid")
    try:
        seen = []
        for pre_ping in (False, True):
            container = container_with(
                database_pool_size=1, database_pool_pre_ping=pre_ping
            )
            pid = await _pid_via(container, via)
            async with _holding(container, via), admin.connect() as observer:
                found = await observer.execute(last_query, {"pid": pid})
                seen.append(found.scalar())
    finally:
        await admin.dispose()
    assert "pg_backend_pid" in seen[0]
    assert seen[1] == ";"


@VIA
async def test_pool_recycle_replaces_a_connection_older_than_it(
    container_with: Callable[..., Container], via: str
) -> None:
    pids = {}
    for recycle in (0.0, 0.3):
        container = container_with(database_pool_size=1, database_pool_recycle=recycle)
        first = await _pid_via(container, via)
        await asyncio.sleep(0.6)
        pids[recycle] = (first, await _pid_via(container, via))
    kept, recycled = pids[0.0], pids[0.3]
    assert kept[0] == kept[1]
    assert recycled[0] != recycled[1]


async def test_the_driver_closes_a_bursts_extra_connection_when_it_is_returned(
    driver_with: Callable[..., Driver],
    caplog: pytest.LogCaptureFixture,
) -> None:
    driver = driver_with(database_pool_size=1, database_max_overflow=1)
    first, second = driver.reads(), driver.reads()
    with caplog.at_level(logging.WARNING):
        for session in (first, second):
            await session.execute(sa.select(sa.func.pg_backend_pid()))
        pool = driver.pool
        assert (pool.checkedout(), pool.overflow()) == (2, 1)
        await second.close()
        await first.close()
        assert (pool.checkedout(), pool.checkedin(), pool.overflow()) == (0, 1, 0)
        await _driver_pid(driver)
    assert not caplog.records


async def test_the_driver_replaces_a_pooled_connection_the_server_closed(
    driver_with: Callable[..., Driver],
    postgres_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    driver = driver_with(database_pool_size=1)
    pid = await _driver_pid(driver)
    admin = create_async_engine(direct(postgres_url), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            stop = sa.text("SELECT pg_terminate_backend(:pid)")
            assert (await connection.execute(stop, {"pid": pid})).scalar()
    finally:
        await admin.dispose()
    await asyncio.sleep(0.2)  # the goodbye reaches the pooled connection

    with caplog.at_level(logging.ERROR), warnings.catch_warnings():
        warnings.simplefilter("error")  # a connect left unawaited warns
        replaced = await _driver_pid(driver)

    assert replaced != pid
    assert driver.pool.checkedout() == 0
    assert not caplog.records


async def test_a_unit_of_work_waits_for_a_connection_as_long_as_the_pool_timeout(
    driver_with: Callable[..., Driver],
) -> None:
    driver = driver_with(database_pool_size=1, database_pool_timeout=0.2)
    holder = driver.reads()
    await holder.execute(sa.select(sa.literal(1)))
    with pytest.raises(exc.TimeoutError):
        await _driver_pid(driver)
    await holder.close()
    assert await _driver_pid(driver) > 0  # the turn it gave up is not lost
    assert driver.pool.checkedout() == 0
