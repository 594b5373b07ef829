"""Read-only units of work, and the one write on the authentication path."""

import asyncio

import pytest

from application.queries import TaskQuery
from domain.tasks import Task
from entrypoints.container import Container
from tests.contract.support import NewUnitOfWork, get_task, list_tasks, save
from tests.fakes import TickingClock

SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


async def test_a_read_only_unit_of_work_reads_what_was_committed(
    container: Container, new_uow: NewUnitOfWork, owner_id: int, clock: TickingClock
) -> None:
    task = Task.create("Committed", clock.now())
    await save(new_uow, task)
    assert task.id is not None
    async with container.unit_of_work(owner_id=owner_id, read_only=True) as uow:
        assert await uow.tasks.get(task.id) == task


async def test_a_read_only_unit_of_work_refuses_to_write_and_changes_nothing(
    container: Container, new_uow: NewUnitOfWork, owner_id: int, clock: TickingClock
) -> None:
    async def add_and_commit() -> None:
        async with container.unit_of_work(owner_id=owner_id, read_only=True) as uow:
            await uow.tasks.add(Task.create("Never stored", clock.now()))
            await uow.commit()

    # The SQL adapters refuse the write itself, the memory one the commit.
    with pytest.raises(RuntimeError, match="read-only"):
        await add_and_commit()
    tasks = await list_tasks(new_uow, TaskQuery())
    assert (tasks.items, tasks.total) == ([], 0)


async def test_a_read_only_unit_of_work_refuses_a_bulk_add_and_changes_nothing(
    container: Container, new_uow: NewUnitOfWork, owner_id: int, clock: TickingClock
) -> None:
    async def add_many_and_commit() -> None:
        async with container.unit_of_work(owner_id=owner_id, read_only=True) as uow:
            await uow.tasks.add_many([Task.create("Never stored", clock.now())])
            await uow.commit()

    # On PostgreSQL a COPY outside a transaction would store at once.
    with pytest.raises(RuntimeError, match="read-only"):
        await add_many_and_commit()
    tasks = await list_tasks(new_uow, TaskQuery())
    assert (tasks.items, tasks.total) == ([], 0)


@pytest.mark.parametrize("database_url", SQL_BACKENDS, indirect=True)
async def test_an_open_read_only_unit_of_work_does_not_hold_up_a_writer(
    container: Container, new_uow: NewUnitOfWork, owner_id: int, clock: TickingClock
) -> None:
    """On SQLite a transaction that takes the write lock up front would make
    the writer wait for the reader (and fail after the busy timeout)."""
    first = Task.create("First", clock.now())
    await save(new_uow, first)
    assert first.id is not None
    second = Task.create("Second", clock.now())
    async with container.unit_of_work(owner_id=owner_id, read_only=True) as reader:
        assert await reader.tasks.get(first.id) == first
        await asyncio.wait_for(save(new_uow, second), timeout=3)
    assert second.id is not None
    assert await get_task(new_uow, second.id) == second


async def test_recording_a_tokens_use_keeps_a_revocation_made_meanwhile(
    container: Container, owner_id: int, clock: TickingClock
) -> None:
    identity = container.identity_service()
    issued = await identity.issue_token("alice", "laptop")
    looked_up = issued.record  # what authentication read, before the revocation
    await identity.revoke_token(looked_up.prefix)
    used_at = clock.now()
    assert looked_up.id is not None
    async with container.identity_unit_of_work() as uow:
        await uow.tokens.record_use(looked_up.id, used_at)
        await uow.commit()
    async with container.identity_unit_of_work(read_only=True) as uow:
        stored = await uow.tokens.find(looked_up.secret_hash)
    assert stored is not None
    assert stored.revoked_at is not None
    assert stored.last_used_at == used_at
