"""The transfer unit of work and kept ids, run against every adapter."""

import pytest

from application.queries import TaskQuery, Window
from domain.errors import IdTaken
from domain.projects import Project
from domain.tasks import Task
from entrypoints.container import Container
from tests.contract.support import NewUnitOfWork, get_project, list_tasks, save
from tests.fakes import TickingClock

EVERYTHING = TaskQuery(sort="id", descending=False, window=Window(limit=1000))


def task(title: str, clock: TickingClock, task_id: int | None = None) -> Task:
    new = Task.create(title, clock.now())
    new.id = task_id
    return new


async def test_a_project_added_with_an_id_keeps_it_and_a_taken_one_is_refused(
    container: Container, new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    kept = Project.create("Kept", None, clock.now())
    kept.id = 40
    await save(new_uow, kept)
    again = Project.create("Another", None, clock.now())
    again.id = 40

    with pytest.raises(IdTaken):
        await save(new_uow, again)

    stored = await get_project(new_uow, 40)
    assert stored is not None
    assert stored.name == "Kept"


async def test_tasks_added_at_once_with_ids_keep_them_and_a_taken_one_stores_none(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    async with new_uow() as uow:
        await uow.tasks.add_many([task("A", clock, 7), task("B", clock, 3)])
        await uow.commit()

    async with new_uow() as uow:
        with pytest.raises(IdTaken):
            await uow.tasks.add_many([task("C", clock, 9), task("D", clock, 7)])

    stored = (await list_tasks(new_uow, EVERYTHING)).items
    assert [(t.id, t.title) for t in stored] == [(3, "B"), (7, "A")]


async def test_after_kept_ids_and_advance_ids_new_rows_get_larger_ids(
    container: Container, owner_id: int, clock: TickingClock
) -> None:
    project = Project.create("Kept", None, clock.now())
    project.id = 500
    async with container.transfer_unit_of_work() as uow:
        mine = uow.owned_by(owner_id)
        await mine.projects.add(project)
        await mine.tasks.add_many([task("Kept", clock, 1000)])
        await uow.advance_ids()
        await uow.commit()

    new_task, new_project = task("New", clock), Project.create("New", None, clock.now())
    await save(lambda: container.unit_of_work(owner_id=owner_id), new_project, new_task)

    assert new_task.id is not None
    assert new_task.id > 1000
    assert new_project.id is not None
    assert new_project.id > 500


async def test_advancing_ids_never_hands_out_a_deleted_rows_id_again(
    container: Container, new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    first, second = task("First", clock), task("Second", clock)
    await save(new_uow, first, second)
    async with new_uow() as uow:
        assert second.id is not None
        await uow.tasks.remove(second.id)
        await uow.commit()
    async with container.transfer_unit_of_work() as transfer:
        await transfer.advance_ids()
        await transfer.commit()

    third = task("Third", clock)
    await save(new_uow, third)

    assert third.id is not None
    assert second.id is not None
    assert third.id > second.id


async def test_owned_by_sees_one_owners_rows_and_nothing_stays_without_commit(
    container: Container, owner_id: int, clock: TickingClock
) -> None:
    bob = await container.identity_service().ensure_user("bob")
    async with container.transfer_unit_of_work() as uow:
        await uow.owned_by(bob).tasks.add(task("Bob's", clock))
        assert (await uow.owned_by(owner_id).tasks.list(EVERYTHING)).items == []
        assert len((await uow.owned_by(bob).tasks.list(EVERYTHING)).items) == 1

    async with container.transfer_unit_of_work() as uow:
        assert (await uow.owned_by(bob).tasks.list(EVERYTHING)).items == []


async def test_users_are_listed_by_id_a_page_after_another(
    container: Container, owner_id: int
) -> None:
    identity = container.identity_service()
    ids = [owner_id] + [await identity.ensure_user(n) for n in ("bob", "carol")]

    async with container.transfer_unit_of_work(read_only=True) as uow:
        first = await uow.users.list_after(None, 2)
        assert first[-1].id is not None
        rest = await uow.users.list_after(first[-1].id, 2)
        past = await uow.users.list_after(ids[-1], 2)

    assert [u.id for u in first + rest] == ids
    assert [u.name for u in first + rest] == ["alice", "bob", "carol"]
    assert past == []


@pytest.mark.parametrize(
    "database_url",
    ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)
async def test_a_read_only_transfer_reads_one_snapshot_throughout(
    container: Container, new_uow: NewUnitOfWork, owner_id: int, clock: TickingClock
) -> None:
    # Not on memory: there a unit of work holds the store's lock, so nothing
    # can change while it reads.
    await save(new_uow, task("Before", clock))
    async with container.transfer_unit_of_work(read_only=True) as export:
        first = await export.owned_by(owner_id).tasks.list(EVERYTHING)
        await save(new_uow, task("During", clock))
        second = await export.owned_by(owner_id).tasks.list(EVERYTHING)

    assert [t.title for t in second.items] == [t.title for t in first.items]
    assert len((await list_tasks(new_uow, EVERYTHING)).items) == 2
