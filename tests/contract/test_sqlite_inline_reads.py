"""SQLite's cheap reads run on the event loop's thread; a read past the budget,
and every write, run in aiosqlite's thread (adapters.sqlalchemy.driver)."""

from typing import Any

import aiosqlite
import pytest
import sqlalchemy as sa
from sqlalchemy import exc

from adapters.sqlalchemy.driver import Driver
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


async def read(driver: Driver, statement: sa.Select[Any]) -> tuple[Any, ...]:
    session = driver.reads()
    try:
        return tuple((await session.execute(statement)).all()[0])
    finally:
        await session.close()


async def test_a_cheap_read_takes_no_hop(driver: Driver, hops: list[str]) -> None:
    await read(driver, count_to(SHORT))  # the pool opens its connection
    hops.clear()

    assert await read(driver, count_to(SHORT)) == (SHORT, SHORT * (SHORT + 1) // 2)
    assert hops == []


async def test_a_read_past_the_budget_runs_whole_in_the_thread(
    driver: Driver, hops: list[str]
) -> None:
    await read(driver, count_to(SHORT))
    hops.clear()

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


async def test_a_write_runs_in_the_thread(driver: Driver, hops: list[str]) -> None:
    await read(driver, count_to(SHORT))
    hops.clear()
    session = driver.writes()
    try:
        (counted, _), *_ = (await session.execute(count_to(SHORT))).all()
        assert counted == SHORT
        await session.commit()
    finally:
        await session.close()

    assert hops == ["_run_after", "_execute_fetchall"]  # BEGIN and it; COMMIT


async def test_a_failing_read_fails_as_in_the_thread(driver: Driver) -> None:
    missing = sa.table("no_such_table", sa.column("x"))
    with pytest.raises(exc.DBAPIError, match="no such table"):
        await read(driver, sa.select(missing.c.x))

    assert await read(driver, count_to(SHORT)) == (SHORT, SHORT * (SHORT + 1) // 2)
    assert driver.pool.checkedout() == 0
