"""TaskRepository.add_many, run against every adapter: what `add` stores, at once."""

from dataclasses import replace
from datetime import date, timedelta

import pytest

from application.queries import TaskQuery, Window
from domain.errors import InvalidValue
from domain.projects import Project
from domain.tasks import Task
from domain.values import Priority
from entrypoints.container import Container
from tests.contract.support import NewUnitOfWork, list_tasks, save
from tests.fakes import TickingClock

EVERYTHING = TaskQuery(sort="id", descending=False, window=Window(limit=1000))


async def add_many(new_uow: NewUnitOfWork, tasks: list[Task]) -> None:
    async with new_uow() as uow:
        await uow.tasks.add_many(tasks)
        await uow.commit()


def without_id(task: Task) -> Task:
    return replace(task, id=None)


@pytest.fixture
async def bob(container: Container) -> NewUnitOfWork:
    """Units of work of a second owner."""
    bob_id = await container.identity_service().ensure_user("bob")
    return lambda: container.unit_of_work(owner_id=bob_id)


async def test_tasks_added_many_at_once_read_back_as_added_one_by_one(
    new_uow: NewUnitOfWork, owner_id: int, clock: TickingClock
) -> None:
    project = Project.create("Household", None, clock.now())
    await save(new_uow, project)

    def tasks() -> list[Task]:
        # The same values twice, with the clock reset: one list per way of adding.
        moment = clock.current
        done = Task.create("Paid", moment, priority=Priority.LOW)
        done.complete(moment + timedelta(microseconds=1))
        return [
            Task.create("Bare", moment),
            Task.create(
                "  Ünïcode Title — 💡 ",
                moment + timedelta(microseconds=7),
                description="Two\nlines",
                priority=Priority.URGENT,
                due_date=date(2026, 3, 31),
                project_id=project.id,
            ),
            done,
        ]

    one_by_one, at_once = tasks(), tasks()
    await save(new_uow, *one_by_one)
    await add_many(new_uow, at_once)

    stored = (await list_tasks(new_uow, EVERYTHING)).items
    assert len(stored) == 6
    added, loaded = stored[:3], stored[3:]
    assert [without_id(t) for t in loaded] == [without_id(t) for t in added]
    assert [without_id(t) for t in loaded] == at_once
    assert all(t.owner_id == owner_id for t in at_once)
    assert loaded[2].version == 2
    assert loaded[2].completed_at is not None


async def test_ids_are_not_read_back_but_the_rows_get_them_in_order(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    tasks = [Task.create(f"Task {n}", clock.now()) for n in range(3)]
    await add_many(new_uow, tasks)
    assert [t.id for t in tasks] == [None, None, None]

    stored = (await list_tasks(new_uow, EVERYTHING)).items
    assert [t.title for t in stored] == ["Task 0", "Task 1", "Task 2"]
    stored_ids = [t.id for t in stored]
    assert len(set(stored_ids)) == 3
    assert all(isinstance(i, int) for i in stored_ids)


async def test_search_and_title_order_see_tasks_added_many_at_once(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    titles = ["beta STRASSE", "Alpha", "Straße gamma"]
    await add_many(new_uow, [Task.create(t, clock.now()) for t in titles])

    by_title = await list_tasks(new_uow, TaskQuery(sort="title", descending=False))
    assert [t.title for t in by_title.items] == [
        "Alpha",
        "beta STRASSE",
        "Straße gamma",
    ]
    found = await list_tasks(new_uow, TaskQuery(q="strasse"))
    assert found.total == 2


async def test_another_owners_tasks_stay_untouched_and_unseen(
    new_uow: NewUnitOfWork, bob: NewUnitOfWork, clock: TickingClock
) -> None:
    bobs = Task.create("Bob's own", clock.now())
    await save(bob, bobs)
    await add_many(new_uow, [Task.create(f"Mine {n}", clock.now()) for n in range(2)])
    await add_many(bob, [Task.create("Bob's second", clock.now())])

    mine = await list_tasks(new_uow, EVERYTHING)
    theirs = await list_tasks(bob, EVERYTHING)
    assert [t.title for t in mine.items] == ["Mine 0", "Mine 1"]
    assert [t.title for t in theirs.items] == ["Bob's own", "Bob's second"]
    assert theirs.items[0] == bobs


async def test_nothing_is_stored_unless_the_unit_of_work_commits(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    # add_many is the first statement of the unit of work: it must still be
    # inside its transaction, so leaving without commit undoes it.
    async with new_uow() as uow:
        await uow.tasks.add_many([Task.create("Fleeting", clock.now())])
        await uow.tasks.add_many([Task.create("Also fleeting", clock.now())])

    assert (await list_tasks(new_uow, EVERYTHING)).total == 0


async def test_nothing_at_all_is_stored_from_an_empty_sequence(
    new_uow: NewUnitOfWork,
) -> None:
    await add_many(new_uow, [])
    assert (await list_tasks(new_uow, EVERYTHING)).total == 0


async def test_a_task_naming_another_owners_project_is_rejected(
    new_uow: NewUnitOfWork, bob: NewUnitOfWork, clock: TickingClock
) -> None:
    bobs_project = Project.create("Bob's", None, clock.now())
    await save(bob, bobs_project)
    tasks = [
        Task.create("Fine", clock.now()),
        Task.create("Sneaky", clock.now(), project_id=bobs_project.id),
    ]
    async with new_uow() as uow:
        with pytest.raises(InvalidValue) as error:
            await uow.tasks.add_many(tasks)
    assert error.value.field == "project_id"

    assert (await list_tasks(new_uow, EVERYTHING)).total == 0
    assert (await list_tasks(bob, EVERYTHING)).total == 0
