"""A request's units of work share one pooled connection, one after another
(`Driver.hold`, adapters.sqlalchemy.driver), and return it to the pool when
the request releases it."""

import asyncio
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.pool import QueuePool

from adapters.sqlalchemy.driver import Driver
from entrypoints.container import Container
from tests.conftest import url_for

ONE = sa.select(sa.literal(1))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    return url_for(request.param, request)


@pytest.fixture
def driver(container: Container) -> Driver:
    return container.driver()


@pytest.fixture
def checkouts(driver: Driver) -> Iterator[list[object]]:
    """Every connection the pool hands out from now on."""
    taken: list[object] = []

    def note(_dbapi: object, _record: object, proxy: object) -> None:
        taken.append(proxy)

    sa.event.listen(driver.pool, "checkout", note)
    yield taken
    sa.event.remove(driver.pool, "checkout", note)


async def read(driver: Driver) -> int:
    session = driver.reads()
    try:
        return int((await session.execute(ONE)).scalar_one())
    finally:
        await session.close()


async def test_units_of_work_one_after_another_take_one_connection(
    driver: Driver, checkouts: list[object]
) -> None:
    held = driver.hold()
    try:
        assert [await read(driver), await read(driver)] == [1, 1]
        writes = driver.writes()
        await writes.execute(ONE)
        await writes.commit()
        await writes.close()
        assert await read(driver) == 1
        # A SQLite writer gives back the kept one to wait for its turn (below).
        assert len(checkouts) == (1 if driver.writer_turn is None else 2)
        assert driver.pool.checkedout() == 1  # kept for the next one
    finally:
        await held.end()
    assert driver.pool.checkedout() == 0


async def test_without_a_hold_each_unit_of_work_takes_its_own(
    driver: Driver, checkouts: list[object]
) -> None:
    assert [await read(driver), await read(driver)] == [1, 1]

    assert len(checkouts) == 2
    assert driver.pool.checkedout() == 0


async def test_units_of_work_side_by_side_each_have_a_connection(
    driver: Driver, checkouts: list[object]
) -> None:
    held = driver.hold()
    try:
        first, second = driver.reads(), driver.reads()
        await first.execute(ONE)
        await second.execute(ONE)  # while the first still has its own
        assert driver.pool.checkedout() == 2
        await first.close()
        await second.close()
        assert driver.pool.checkedout() == 1  # one kept, the other returned
    finally:
        await held.end()

    assert len(checkouts) == 2
    assert driver.pool.checkedout() == 0


async def test_a_connection_in_a_state_unknown_is_not_kept(driver: Driver) -> None:
    held = driver.hold()
    try:
        session = driver.reads()
        missing = sa.table("no_such_table", sa.column("x"))
        with pytest.raises(exc.DBAPIError):
            await session.execute(sa.select(missing.c.x))
        await session.close()
        assert driver.pool.checkedout() == 0
        assert await read(driver) == 1  # on a connection from the pool
    finally:
        await held.end()
    assert driver.pool.checkedout() == 0


async def test_after_release_nothing_is_kept(driver: Driver) -> None:
    held = driver.hold()
    try:
        assert await read(driver) == 1
        await held.release()
        assert driver.pool.checkedout() == 0
        assert await read(driver) == 1
        assert driver.pool.checkedout() == 0
    finally:
        await held.end()


async def test_a_hold_is_the_context_s_own(driver: Driver) -> None:
    """A hold in one task is not another's: a task started before it, or
    beside it, takes its connections from the pool."""
    pool = driver.pool
    assert isinstance(pool, QueuePool)
    held = driver.hold()
    try:
        assert await read(driver) == 1
        other = await asyncio.create_task(_read_in_a_fresh_context(driver))
        assert other == 1
        assert pool.checkedout() == 1  # still the held one only
    finally:
        await held.end()
    assert pool.checkedout() == 0


async def _read_in_a_fresh_context(driver: Driver) -> int:
    # A task copies its creator's context, hold included; a hold of its own
    # shows that the two do not mix.
    held = driver.hold()
    try:
        return await read(driver)
    finally:
        await held.end()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_sqlite_writer_waits_for_its_turn_without_a_connection(
    driver: Driver,
) -> None:
    turn = driver.writer_turn
    assert turn is not None
    held = driver.hold()
    try:
        assert await read(driver) == 1
        assert driver.pool.checkedout() == 1
        await turn.acquire()  # another writer of this process has the turn
        writer = driver.writes()
        waiting = asyncio.create_task(writer.execute(ONE))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        assert driver.pool.checkedout() == 0  # the kept one went back first
        turn.release()
        await waiting
        await writer.commit()
        await writer.close()
        assert driver.pool.checkedout() == 1
    finally:
        await held.end()
    assert driver.pool.checkedout() == 0
