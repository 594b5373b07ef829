"""Units of work take their connection from the engine's pool, and give it back,
without a greenlet when the pool has one idle and ready, and through one when
it must wait, open or reopen a connection (adapters.sqlalchemy.driver)."""

import asyncio
import logging
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import QueuePool
from sqlalchemy.util import greenlet_spawn

from adapters.sqlalchemy import driver as driver_module
from adapters.sqlalchemy.driver import Driver
from application.queries import TaskQuery
from domain.tasks import Task
from entrypoints.container import Container
from tests.conftest import url_for
from tests.contract.support import NewUnitOfWork, list_tasks, save
from tests.fakes import TickingClock


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    return url_for(request.param, request)


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of what the driver ran in a greenlet, from now on."""
    names: list[str] = []

    async def counting(fn: Any, *args: Any, **kwargs: Any) -> Any:
        names.append(fn.__name__)
        return await greenlet_spawn(fn, *args, **kwargs)

    monkeypatch.setattr(driver_module, "greenlet_spawn", counting)
    return names


async def test_an_idle_connection_is_taken_and_returned_without_a_greenlet(
    container: Container,
    new_uow: NewUnitOfWork,
    clock: TickingClock,
    spawned: list[str],
) -> None:
    # The pool now holds a connection.
    await save(new_uow, Task.create("first", clock.now()))
    pool = container.engine().sync_engine.pool
    assert isinstance(pool, QueuePool)
    spawned.clear()

    await save(new_uow, Task.create("second", clock.now()))
    page = await list_tasks(new_uow, TaskQuery())

    assert sorted(t.title for t in page.items) == ["first", "second"]
    assert spawned == []
    assert pool.checkedout() == 0


async def test_a_connection_invalidated_in_the_pool_is_reopened_in_a_greenlet(
    container: Container,
    new_uow: NewUnitOfWork,
    clock: TickingClock,
    spawned: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = container.engine().sync_engine.pool
    assert isinstance(pool, QueuePool)
    pooled = await greenlet_spawn(pool.connect)
    pooled.invalidate()  # closes it; its place in the pool stays, to reopen
    await greenlet_spawn(pooled.close)
    assert pool.checkedin() == 1
    spawned.clear()

    with caplog.at_level(logging.ERROR):
        await save(new_uow, Task.create("after", clock.now()))
        page = await list_tasks(new_uow, TaskQuery())

    assert [t.title for t in page.items] == ["after"]
    assert spawned == ["connect"]  # the reopening; then idle connections again
    assert pool.checkedout() == 0
    assert pool.checkedin() == 1
    assert not caplog.records


async def test_units_of_work_get_connections_in_the_order_they_asked(
    container: Container,
) -> None:
    driver: Driver = container.driver()
    pool = driver.pool
    assert isinstance(pool, QueuePool)
    one = sa.select(sa.literal(1))
    holders = [driver.reads() for _ in range(pool.size())]
    for holder in holders:  # every connection taken
        await holder.execute(one)
    served: list[str] = []

    async def read(name: str) -> None:
        session = driver.reads()
        try:
            await session.execute(one)
            served.append(name)
        finally:
            await session.close()

    waiting = asyncio.create_task(read("waiting"))
    await asyncio.sleep(0.1)
    assert served == []
    await holders[0].close()
    # Before the waiting one, woken, has run: the connection is its turn.
    await read("newcomer")
    await waiting
    for holder in holders[1:]:
        await holder.close()

    assert served == ["waiting", "newcomer"]
    assert pool.checkedout() == 0
