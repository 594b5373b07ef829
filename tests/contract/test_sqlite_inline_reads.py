"""SQLite's cheap reads and its writes of one row run on the event loop's
thread, a writing unit's BEGIN with them when it can take the lock at once; a
read past the budget, a BEGIN that must wait, other writes and COMMIT run in
aiosqlite's thread (adapters.sqlalchemy.driver)."""

import asyncio
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

import aiosqlite
import pytest
import sqlalchemy as sa
from sqlalchemy import exc

from adapters.sqlalchemy.driver import ONE_ROW, Driver
from adapters.sqlalchemy.engine import SQLITE_BUSY_TIMEOUT_MS
from adapters.sqlalchemy.tables import users
from entrypoints.container import Container
from tests.conftest import url_for

# SQLite counts from 1 to `n` in about 10 instructions a row: 100,000 rows is
# 50 times the budget, 10 rows a hundredth of it.
LONG = 100_000
SHORT = 10


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> str:
    return url_for("sqlite", request)


@pytest.fixture
def driver(container: Container) -> Driver:
    return container.driver()


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of each function sent to aiosqlite's thread from now on."""
    sent: list[str] = []
    run = aiosqlite.Connection._execute

    async def counting(
        self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any
    ) -> Any:
        sent.append(getattr(fn, "__name__", repr(fn)))
        return await run(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
    return sent


def count_to(n: int) -> sa.Select[Any]:
    numbers = sa.select(sa.literal(1).label("x")).cte("numbers", recursive=True)
    numbers = numbers.union_all(
        sa.select((numbers.c.x + 1).label("x")).where(numbers.c.x < n)
    )
    return sa.select(sa.func.count(), sa.func.sum(numbers.c.x)).select_from(numbers)


async def warm(driver: Driver, hops: list[str]) -> None:
    """Have the pool open its connection (hops of its own), then count afresh."""
    await read(driver, count_to(SHORT))
    hops.clear()


async def read(driver: Driver, statement: sa.Select[Any]) -> tuple[Any, ...]:
    session = driver.reads()
    try:
        return tuple((await session.execute(statement)).all()[0])
    finally:
        await session.close()


async def test_a_cheap_read_takes_no_hop(driver: Driver, hops: list[str]) -> None:
    await warm(driver, hops)

    assert await read(driver, count_to(SHORT)) == (SHORT, SHORT * (SHORT + 1) // 2)
    assert hops == []


async def test_a_read_past_the_budget_runs_whole_in_the_thread(
    driver: Driver, hops: list[str]
) -> None:
    await warm(driver, hops)

    assert await read(driver, count_to(LONG)) == (LONG, LONG * (LONG + 1) // 2)
    assert hops == ["_run_after"]
    # The budget is gone with the read: a long statement of a writing unit,
    # on the same connection, runs to its end.
    session = driver.writes()
    try:
        rows = (await session.execute(count_to(LONG))).all()
        await session.commit()
    finally:
        await session.close()
    assert tuple(rows[0]) == (LONG, LONG * (LONG + 1) // 2)
    assert driver.pool.checkedout() == 0


async def test_a_writing_unit_begins_with_its_read_and_writes_in_the_thread(
    driver: Driver, hops: list[str]
) -> None:
    await warm(driver, hops)
    session = driver.writes()
    try:
        (counted, _), *_ = (await session.execute(count_to(SHORT))).all()
        assert hops == []  # BEGIN IMMEDIATE and the read, here
        await session.execute(add_user("ada"))
        await session.commit()
    finally:
        await session.close()

    assert counted == SHORT
    assert hops == ["_run_after", "_execute_fetchall"]  # the insert; COMMIT
    assert await read(driver, sa.select(users.c.name)) == ("ada",)


async def test_a_write_of_one_row_runs_here_and_only_commit_hops(
    driver: Driver, hops: list[str]
) -> None:
    await warm(driver, hops)
    session = driver.writes()
    try:
        await session.execute(add_user("ada").execution_options(**{ONE_ROW: True}))
        assert hops == []  # BEGIN IMMEDIATE and the insert, here
        with pytest.raises(exc.IntegrityError):  # the name is taken
            await session.execute(add_user("ada").execution_options(**{ONE_ROW: True}))
        await session.execute(add_user("bob").execution_options(**{ONE_ROW: True}))
        await session.commit()
    finally:
        await session.close()

    assert hops == ["_execute_fetchall"]  # COMMIT
    names = sa.select(users.c.name).order_by(users.c.name)
    assert await _all(driver, names) == [("ada",), ("bob",)]


async def test_a_read_past_the_budget_leaves_its_transaction_whole(
    driver: Driver, hops: list[str]
) -> None:
    session = driver.writes()
    try:
        await session.execute(add_user("before"))
        (counted, _), *_ = (await session.execute(count_to(LONG))).all()
        await session.execute(add_user("after"))
        await session.commit()
    finally:
        await session.close()

    assert counted == LONG
    names = sa.select(users.c.name).order_by(users.c.name)
    rows = await _all(driver, names)
    assert rows == [("after",), ("before",)]


async def test_a_begin_that_must_wait_waits_in_the_thread(
    driver: Driver, container: Container, hops: list[str]
) -> None:
    await warm(driver, hops)
    other = sqlite3.connect(container.engine().url.database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's writer has the lock
    session = driver.writes()
    try:
        waiting = asyncio.create_task(session.execute(count_to(SHORT)))
        started = time.monotonic()
        await asyncio.sleep(0.1)  # the loop runs meanwhile
        # Not the busy timeout's wait on the loop's thread, before the thread's.
        assert time.monotonic() - started < SQLITE_BUSY_TIMEOUT_MS / 1000
        assert not waiting.done()
        other.execute("ROLLBACK")
        (counted, _), *_ = (await waiting).all()
        await session.commit()
    finally:
        await session.close()
        other.close()

    assert counted == SHORT
    assert hops == ["_run_after", "_execute_fetchall"]  # BEGIN and the read; COMMIT


def add_user(name: str) -> sa.Insert:
    return sa.insert(users).values(name=name, created_at=datetime.now(UTC))


async def _all(driver: Driver, statement: sa.Select[Any]) -> list[tuple[Any, ...]]:
    session = driver.reads()
    try:
        return [tuple(row) for row in (await session.execute(statement)).all()]
    finally:
        await session.close()


async def test_a_failing_read_fails_as_in_the_thread(driver: Driver) -> None:
    missing = sa.table("no_such_table", sa.column("x"))
    with pytest.raises(exc.DBAPIError, match="no such table"):
        await read(driver, sa.select(missing.c.x))

    assert await read(driver, count_to(SHORT)) == (SHORT, SHORT * (SHORT + 1) // 2)
    assert driver.pool.checkedout() == 0
