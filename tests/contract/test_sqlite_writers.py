"""SQLite's writers in one process take turns, in order, before they take a
connection (adapters.sqlalchemy.driver): none sleeps in SQLite's busy handler.
A writer's BEGIN goes to aiosqlite's thread with its first statement."""

import asyncio
import sqlite3
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import exc
from sqlalchemy.pool import QueuePool

from adapters.sqlalchemy.driver import Driver
from application.queries import TaskQuery
from domain.tasks import Task
from entrypoints.container import Container
from entrypoints.outages import database_unavailable
from tests.contract.support import NewUnitOfWork, list_tasks, save
from tests.fakes import TickingClock


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What was sent to aiosqlite's connection threads from now on, by name."""
    names: list[str] = []
    send = aiosqlite.Connection._execute

    async def counting(self: aiosqlite.Connection, fn: Any, *args: Any) -> Any:
        names.append(getattr(fn, "__name__", repr(fn)))
        return await send(self, fn, *args)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
    return names


async def test_a_writer_hops_to_the_thread_only_to_commit(
    new_uow: NewUnitOfWork, clock: TickingClock, hops: list[str]
) -> None:
    await save(new_uow, Task.create("first", clock.now()))  # the pool holds one
    hops.clear()

    await save(new_uow, Task.create("second", clock.now()))

    # BEGIN IMMEDIATE and the INSERT of one row on the loop's thread, then the
    # COMMIT in aiosqlite's: every hop waits for the event loop with SQLite's
    # write lock held.
    assert len(hops) == 1
    page = await list_tasks(new_uow, TaskQuery())
    assert sorted(t.title for t in page.items) == ["first", "second"]


async def test_a_writer_holds_the_write_lock_from_its_first_statement_a_read(
    sqlite_url: str, new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    task = Task.create("first", clock.now())
    await save(new_uow, task)
    assert task.id is not None
    other = sqlite3.connect(
        sqlite_url.partition(":///")[2], timeout=0, isolation_level=None
    )
    try:
        async with new_uow() as uow:
            assert await uow.tasks.get(task.id) is not None

            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")

        other.execute("BEGIN IMMEDIATE")  # released at the end of the unit
        other.execute("ROLLBACK")
    finally:
        other.close()


async def test_a_second_writer_waits_for_the_first_to_finish_holding_nothing(
    container: Container, new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    pool = container.engine().sync_engine.pool
    assert isinstance(pool, QueuePool)
    order: list[str] = []
    first_wrote = asyncio.Event()
    release_first = asyncio.Event()

    async def write(name: str, hold: asyncio.Event | None) -> None:
        async with new_uow() as uow:
            await uow.tasks.add(Task.create(name, clock.now()))
            order.append(f"{name} wrote")
            if hold is not None:
                first_wrote.set()
                await hold.wait()
            await uow.commit()
            order.append(f"{name} committed")

    first = asyncio.create_task(write("first", release_first))
    await first_wrote.wait()
    second = asyncio.create_task(write("second", None))
    await asyncio.sleep(0.2)  # ample time for the second to get in, if it could

    assert order == ["first wrote"]
    assert pool.checkedout() == 1  # the waiting writer holds no connection
    release_first.set()
    await asyncio.gather(first, second)

    # The second wrote in the first's transaction (tests/contract/
    # test_sqlite_group_commit.py), and neither commit returned before its COMMIT.
    assert order[:2] == ["first wrote", "second wrote"]
    assert sorted(order[2:]) == ["first committed", "second committed"]
    page = await list_tasks(new_uow, TaskQuery())
    assert sorted(t.title for t in page.items) == ["first", "second"]


async def test_a_writer_that_waits_past_its_patience_fails_as_unavailable(
    container: Container, new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    driver: Driver = container.driver()
    driver.writer_patience = 0.1
    holding = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with new_uow() as uow:
            await uow.tasks.add(Task.create("holder", clock.now()))
            holding.set()
            await release.wait()
            await uow.commit()

    holder = asyncio.create_task(hold())
    await holding.wait()
    with pytest.raises(exc.TimeoutError) as refused:
        async with new_uow() as uow:
            await uow.tasks.add(Task.create("impatient", clock.now()))
    release.set()
    await holder

    assert database_unavailable(refused.value)
    async with new_uow() as uow:  # the turn came back: writing works again
        await uow.tasks.add(Task.create("later", clock.now()))
        await uow.commit()
    page = await list_tasks(new_uow, TaskQuery())
    assert sorted(t.title for t in page.items) == ["holder", "later"]
