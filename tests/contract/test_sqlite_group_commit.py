"""SQLite's writers that queue while one writes share its transaction, each in
a savepoint of its own, and one COMMIT (adapters.sqlalchemy.driver, `_Group`):
each still succeeds or fails alone, and none hears "committed" before its rows
are."""

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import exc

from adapters.sqlalchemy.driver import Driver
from adapters.sqlalchemy.repositories import SqlAlchemyTaskRepository
from application.queries import TaskQuery
from domain.errors import InvalidValue
from domain.tasks import Task
from entrypoints.container import Container
from tests.contract.support import NewUnitOfWork, list_tasks, save
from tests.fakes import TickingClock

Write = Callable[[str], Awaitable[None]]


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def commits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every COMMIT and ROLLBACK sent to aiosqlite's connection threads."""
    sent: list[str] = []
    execute_fetchall = aiosqlite.Connection.execute_fetchall

    async def noting(self: aiosqlite.Connection, sql: str, *args: Any) -> Any:
        if sql in ("COMMIT", "ROLLBACK"):
            sent.append(sql)
        return await execute_fetchall(self, sql, *args)

    monkeypatch.setattr(aiosqlite.Connection, "execute_fetchall", noting)
    return sent


@pytest.fixture
def other(sqlite_url: str) -> Iterator[sqlite3.Connection]:
    """A connection of another process's kind: it sees only what is committed."""
    connection = sqlite3.connect(sqlite_url.partition(":///")[2], isolation_level=None)
    yield connection
    connection.close()


def committed_titles(other: sqlite3.Connection) -> list[str]:
    return sorted(title for (title,) in other.execute("SELECT title FROM tasks"))


async def while_one_writes(
    new_uow: NewUnitOfWork, clock: TickingClock, writes: list[Write]
) -> list[BaseException | None]:
    """Run `writes` side by side, all queued behind a first writer ("first")
    that holds its turn until they wait; what each raised, in order."""
    wrote = asyncio.Event()
    go_on = asyncio.Event()

    async def first(_: str) -> None:
        async with new_uow() as uow:
            await uow.tasks.add(Task.create("first", clock.now()))
            wrote.set()
            await go_on.wait()
            await uow.commit()

    holder = asyncio.create_task(first("first"))
    await wrote.wait()
    queued = [asyncio.create_task(write(f"w{i}")) for i, write in enumerate(writes)]
    await asyncio.sleep(0.1)  # each is waiting for its turn
    go_on.set()
    async with asyncio.timeout(30):  # none waits forever for a COMMIT
        results = await asyncio.gather(holder, *queued, return_exceptions=True)
    return [r if isinstance(r, BaseException) else None for r in results]


async def test_writers_that_queue_meanwhile_share_one_commit(
    new_uow: NewUnitOfWork,
    clock: TickingClock,
    commits: list[str],
    other: sqlite3.Connection,
) -> None:
    seen_at_commit: dict[str, list[str]] = {}

    async def write(title: str) -> None:
        async with new_uow() as uow:
            await uow.tasks.add(Task.create(title, clock.now()))
            await uow.commit()
            # Its commit has returned: its row is there for everyone.
            seen_at_commit[title] = committed_titles(other)

    failures = await while_one_writes(new_uow, clock, [write] * 10)

    assert failures == [None] * 11
    assert commits == ["COMMIT"]
    titles = ["first", *(f"w{i}" for i in range(10))]
    assert committed_titles(other) == sorted(titles)
    assert all(title in seen for title, seen in seen_at_commit.items())
    assert len(seen_at_commit) == 10


async def test_a_lone_writer_commits_at_once(
    new_uow: NewUnitOfWork,
    clock: TickingClock,
    commits: list[str],
    other: sqlite3.Connection,
) -> None:
    await save(new_uow, Task.create("alone", clock.now()))

    assert commits == ["COMMIT"]
    assert committed_titles(other) == ["alone"]


async def test_a_writer_that_rolls_back_takes_only_its_own_rows_with_it(
    new_uow: NewUnitOfWork, clock: TickingClock, commits: list[str]
) -> None:
    async def write(title: str) -> None:
        async with new_uow() as uow:
            await uow.tasks.add(Task.create(title, clock.now()))
            await uow.tasks.add(Task.create(f"{title} again", clock.now()))
            if title == "w1":
                raise RuntimeError("the use case changed its mind")
            await uow.commit()

    failures = await while_one_writes(new_uow, clock, [write] * 3)

    assert isinstance(failures[2], RuntimeError)
    assert [f for i, f in enumerate(failures) if i != 2] == [None] * 3
    assert commits == ["COMMIT"]
    page = await list_tasks(new_uow, TaskQuery())
    assert sorted(t.title for t in page.items) == [
        "first",
        "w0",
        "w0 again",
        "w2",
        "w2 again",
    ]


async def test_a_broken_constraint_fails_its_writer_alone(
    new_uow: NewUnitOfWork, clock: TickingClock, commits: list[str]
) -> None:
    async def write(title: str) -> None:
        async with new_uow() as uow:
            await uow.tasks.add(Task.create(title, clock.now()))
            project = 999 if title == "w1" else None
            await uow.tasks.add(Task.create("x", clock.now(), project_id=project))
            await uow.commit()

    failures = await while_one_writes(new_uow, clock, [write] * 3)

    assert isinstance(failures[2], InvalidValue)
    assert [f for i, f in enumerate(failures) if i != 2] == [None] * 3
    assert commits == ["COMMIT"]
    page = await list_tasks(new_uow, TaskQuery())
    assert sorted(t.title for t in page.items) == ["first", "w0", "w2", "x", "x"]


async def test_when_the_shared_commit_fails_every_writer_in_it_fails(
    container: Container,
    new_uow: NewUnitOfWork,
    clock: TickingClock,
    owner_id: int,
    other: sqlite3.Connection,
) -> None:
    driver: Driver = container.driver()

    async def write(title: str) -> None:
        session = driver.writes()
        try:
            tasks = SqlAlchemyTaskRepository(session, owner_id)
            await tasks.add(Task.create(title, clock.now()))
            if title == "w1":
                # Foreign keys checked only at COMMIT: this task's fails them.
                raw = await session.driver_connection()
                await raw.execute_fetchall("PRAGMA defer_foreign_keys = ON")
                await tasks.add(Task.create("orphan", clock.now(), project_id=999))
            await session.commit()
        finally:
            await session.close()

    failures = await while_one_writes(new_uow, clock, [write] * 3)

    assert all(isinstance(f, exc.DBAPIError) for f in failures), failures
    assert committed_titles(other) == []
    await save(new_uow, Task.create("later", clock.now()))  # writing works again
    assert committed_titles(other) == ["later"]


async def test_a_writer_handed_the_turn_that_gives_up_leaves_no_one_waiting(
    container: Container,
    new_uow: NewUnitOfWork,
    clock: TickingClock,
    other: sqlite3.Connection,
) -> None:
    wrote = asyncio.Event()
    go_on = asyncio.Event()
    queued: list[asyncio.Task[None]] = []

    async def first() -> None:
        async with new_uow() as uow:
            await uow.tasks.add(Task.create("first", clock.now()))
            wrote.set()
            await go_on.wait()
            # The turn goes to the queued writer in this commit; it is
            # cancelled before it can take it, so it cannot end the group.
            asyncio.get_running_loop().call_soon(queued[0].cancel)
            await uow.commit()

    async def second() -> None:
        await save(new_uow, Task.create("second", clock.now()))

    holder = asyncio.create_task(first())
    await wrote.wait()
    queued.append(asyncio.create_task(second()))
    await asyncio.sleep(0.1)
    go_on.set()
    async with asyncio.timeout(30):
        await holder
    with pytest.raises(asyncio.CancelledError):
        await queued[0]

    assert committed_titles(other) == ["first"]
    await save(new_uow, Task.create("later", clock.now()))
    assert committed_titles(other) == ["first", "later"]
