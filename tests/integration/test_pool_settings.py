"""The pool settings reach the engine and do what they say, on PostgreSQL."""

import asyncio
import logging
import warnings
from collections.abc import AsyncIterator, Callable
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
async def engine_with(
    postgres_url: str,
) -> AsyncIterator[Callable[..., Any]]:
    """Builds the service's engine, straight to PostgreSQL, with some settings."""
    made: list[Container] = []

    def build(**settings: Any) -> Any:
        container = build_container(
            test_settings(direct(postgres_url), database_pooler="none", **settings)
        )
        made.append(container)
        return container.engine()

    yield build
    for container in made:
        if container.engine.initialized:
            await container.engine().dispose()


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


async def test_pre_ping_asks_the_server_before_handing_a_connection_out(
    engine_with: Callable[..., Any], postgres_url: str
) -> None:
    """The last statement a pooled connection's backend ran, right after a
    checkout: the ping (`;`) with pre-ping, the previous request's without."""
    admin = create_async_engine(direct(postgres_url), isolation_level="AUTOCOMMIT")
    last_query = sa.text("SELECT query FROM pg_stat_activity WHERE pid = :pid")
    try:
        seen = []
        for pre_ping in (False, True):
            engine = engine_with(database_pool_size=1, database_pool_pre_ping=pre_ping)
            async with engine.connect() as connection:
                pid = await _pid(connection)
            async with engine.connect(), admin.connect() as observer:
                found = await observer.execute(last_query, {"pid": pid})
                seen.append(found.scalar())
    finally:
        await admin.dispose()
    assert "pg_backend_pid" in seen[0]
    assert seen[1] == ";"


async def test_pool_recycle_replaces_a_connection_older_than_it(
    engine_with: Callable[..., Any],
) -> None:
    pids = {}
    for recycle in (0.0, 0.3):
        engine = engine_with(database_pool_size=1, database_pool_recycle=recycle)
        async with engine.connect() as connection:
            first = await _pid(connection)
        await asyncio.sleep(0.6)
        async with engine.connect() as connection:
            pids[recycle] = (first, await _pid(connection))
    kept, recycled = pids[0.0], pids[0.3]
    assert kept[0] == kept[1]
    assert recycled[0] != recycled[1]


# The same settings where the service's units of work take their connections:
# through the driver, which hands out an idle connection without a greenlet
# when it can (adapters.sqlalchemy.driver).


@pytest.fixture
async def driver_with(
    postgres_url: str,
) -> AsyncIterator[Callable[..., Driver]]:
    """The service's driver, straight to PostgreSQL, with some settings."""
    made: list[Container] = []

    def build(**settings: Any) -> Driver:
        container = build_container(
            test_settings(direct(postgres_url), database_pooler="none", **settings)
        )
        made.append(container)
        driver: Driver = container.driver()
        return driver

    yield build
    for container in made:
        if container.engine.initialized:
            await container.engine().dispose()


async def _driver_pid(driver: Driver) -> int:
    session = driver.reads()
    try:
        result = await session.execute(sa.select(sa.func.pg_backend_pid()))
        return int(result.scalar_one())
    finally:
        await session.close()


async def test_the_driver_pre_pings_when_asked(
    driver_with: Callable[..., Driver], postgres_url: str
) -> None:
    admin = create_async_engine(direct(postgres_url), isolation_level="AUTOCOMMIT")
    last_query = sa.text("SELECT query FROM pg_stat_activity WHERE pid = :pid")
    try:
        seen = []
        for pre_ping in (False, True):
            driver = driver_with(database_pool_size=1, database_pool_pre_ping=pre_ping)
            pid = await _driver_pid(driver)
            pooled = await driver.checkout()
            async with admin.connect() as observer:
                found = await observer.execute(last_query, {"pid": pid})
                seen.append(found.scalar())
            await driver.checkin(pooled)
    finally:
        await admin.dispose()
    assert "pg_backend_pid" in seen[0]
    assert seen[1] == ";"


async def test_the_driver_recycles_a_connection_older_than_the_setting(
    driver_with: Callable[..., Driver],
) -> None:
    pids = {}
    for recycle in (0.0, 0.3):
        driver = driver_with(database_pool_size=1, database_pool_recycle=recycle)
        first = await _driver_pid(driver)
        await asyncio.sleep(0.6)
        pids[recycle] = (first, await _driver_pid(driver))
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
