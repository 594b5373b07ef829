"""The UnitOfWork contract: one transaction, rolled back unless committed."""

import pytest

from application.queries import ProjectQuery, TaskQuery
from domain.errors import ConcurrentUpdate, ProjectHasTasks, ProjectNameTaken
from domain.projects import Project, ProjectChanges
from domain.tasks import Task, TaskChanges
from tests.contract.support import (
    NewUnitOfWork,
    get_project,
    get_task,
    list_projects,
    list_tasks,
    save,
)
from tests.fakes import TickingClock


class Boom(Exception):
    pass


async def test_a_unit_of_work_enters_as_itself(new_uow: NewUnitOfWork) -> None:
    uow = new_uow()
    async with uow as entered:
        assert entered is uow


async def test_adds_left_without_commit_are_invisible_to_the_next_unit_of_work(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    project = Project.create("Uncommitted", None, clock.now())
    task = Task.create("Uncommitted", clock.now())
    async with new_uow() as uow:
        await uow.projects.add(project)
        await uow.tasks.add(task)
        assert project.id is not None
        assert task.id is not None
        # Inside the unit of work its own changes are visible.
        assert await uow.tasks.get(task.id) == task
        assert await uow.projects.get(project.id) == project

    assert await get_task(new_uow, task.id) is None
    assert await get_project(new_uow, project.id) is None
    tasks = await list_tasks(new_uow, TaskQuery())
    projects = await list_projects(new_uow, ProjectQuery())
    assert (tasks.items, tasks.total) == ([], 0)
    assert (projects.items, projects.total) == ([], 0)


async def test_updates_left_without_commit_are_invisible_to_the_next_unit_of_work(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    project = Project.create("Original", None, clock.now())
    task = Task.create("Original", clock.now())
    await save(new_uow, project, task)
    assert project.id is not None
    assert task.id is not None

    async with new_uow() as uow:
        changed_task = task.copy()
        changed_task.apply(TaskChanges(title="Changed", done=True), clock.now())
        await uow.tasks.update(changed_task, expected_version=1)
        changed_project = project.copy()
        changed_project.apply(ProjectChanges(name="Changed"), clock.now())
        await uow.projects.update(changed_project, expected_version=1)

    assert await get_task(new_uow, task.id) == task
    assert await get_project(new_uow, project.id) == project


async def test_removals_left_without_commit_are_invisible_to_the_next_unit_of_work(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    project = Project.create("Kept", None, clock.now())
    task = Task.create("Kept", clock.now())
    await save(new_uow, project, task)
    assert project.id is not None
    assert task.id is not None

    async with new_uow() as uow:
        assert await uow.tasks.remove(task.id)
        assert await uow.projects.remove(project.id)

    assert await get_task(new_uow, task.id) == task
    assert await get_project(new_uow, project.id) == project


async def test_committed_adds_updates_and_removals_are_visible_to_the_next_one(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    updated = Task.create("To update", clock.now())
    removed = Task.create("To remove", clock.now())
    await save(new_uow, updated, removed)
    assert updated.id is not None
    assert removed.id is not None
    added = Task.create("Added", clock.now())
    project = Project.create("Added", None, clock.now())

    async with new_uow() as uow:
        await uow.tasks.add(added)
        await uow.projects.add(project)
        updated.apply(TaskChanges(title="Updated"), clock.now())
        await uow.tasks.update(updated, expected_version=1)
        assert await uow.tasks.remove(removed.id)
        await uow.commit()

    assert added.id is not None
    assert project.id is not None
    assert await get_task(new_uow, added.id) == added
    assert await get_project(new_uow, project.id) == project
    assert await get_task(new_uow, updated.id) == updated
    assert await get_task(new_uow, removed.id) is None
    page = await list_tasks(new_uow, TaskQuery())
    assert {t.title for t in page.items} == {"Added", "Updated"}
    assert page.total == 2


async def test_changes_after_a_commit_roll_back_without_another_commit(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    kept = Task.create("Kept", clock.now())
    dropped = Task.create("Dropped", clock.now())

    async with new_uow() as uow:
        await uow.tasks.add(kept)
        await uow.commit()
        await uow.tasks.add(dropped)
        assert kept.id is not None
        assert await uow.tasks.remove(kept.id)

    assert kept.id is not None
    assert dropped.id is not None
    assert await get_task(new_uow, kept.id) == kept
    assert await get_task(new_uow, dropped.id) is None


async def test_an_exception_inside_the_block_rolls_back_and_propagates(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    existing = Task.create("Existing", clock.now())
    await save(new_uow, existing)
    assert existing.id is not None
    added = Task.create("Added", clock.now())

    async def add_remove_then_fail() -> None:
        async with new_uow() as uow:
            await uow.tasks.add(added)
            assert existing.id is not None
            assert await uow.tasks.remove(existing.id)
            raise Boom

    with pytest.raises(Boom):
        await add_remove_then_fail()

    assert added.id is not None
    assert await get_task(new_uow, added.id) is None
    assert await get_task(new_uow, existing.id) == existing


async def test_work_committed_before_an_exception_stays_committed(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    committed = Task.create("Committed", clock.now())
    after = Task.create("After", clock.now())

    async def commit_add_then_fail() -> None:
        async with new_uow() as uow:
            await uow.tasks.add(committed)
            await uow.commit()
            await uow.tasks.add(after)
            raise Boom

    with pytest.raises(Boom):
        await commit_add_then_fail()

    assert committed.id is not None
    assert after.id is not None
    assert await get_task(new_uow, committed.id) == committed
    assert await get_task(new_uow, after.id) is None


async def test_a_unit_of_work_left_without_any_change_changes_nothing(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    task = Task.create("Untouched", clock.now())
    await save(new_uow, task)

    async with new_uow() as uow:
        await uow.commit()
    async with new_uow():
        pass

    page = await list_tasks(new_uow, TaskQuery())
    assert page.items == [task]


# --- domain errors from repositories ---------------------------------------------


async def test_a_name_clash_propagates_unchanged_and_rolls_the_unit_of_work_back(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    taken = Project.create("Taken", None, clock.now())
    await save(new_uow, taken)
    task = Task.create("Added before the clash", clock.now())

    async def add_then_clash() -> None:
        async with new_uow() as uow:
            await uow.tasks.add(task)
            await uow.projects.add(Project.create("TAKEN", None, clock.now()))

    # The unit of work's exit lets the domain error through, not one of its own.
    with pytest.raises(ProjectNameTaken):
        await add_then_clash()

    assert task.id is not None
    assert await get_task(new_uow, task.id) is None
    projects = await list_projects(new_uow, ProjectQuery())
    assert (projects.items, projects.total) == ([taken], 1)


async def test_a_caught_name_clash_leaves_the_unit_of_work_able_to_roll_back(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    taken = Project.create("Taken", None, clock.now())
    await save(new_uow, taken)
    task = Task.create("Added before the clash", clock.now())
    renamed = taken.copy()

    async with new_uow() as uow:
        await uow.tasks.add(task)
        renamed.apply(ProjectChanges(description="changed"), clock.now())
        await uow.projects.update(renamed, expected_version=1)
        with pytest.raises(ProjectNameTaken):
            await uow.projects.add(Project.create("taken", None, clock.now()))
        # Leaving without commit must roll back quietly, not raise anew.

    assert task.id is not None
    assert taken.id is not None
    assert await get_task(new_uow, task.id) is None
    assert await get_project(new_uow, taken.id) == taken


async def test_the_next_unit_of_work_works_normally_after_a_domain_error(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    taken = Project.create("Taken", None, clock.now())
    await save(new_uow, taken)
    async with new_uow() as uow:
        with pytest.raises(ProjectNameTaken):
            await uow.projects.add(Project.create("TAKEN", None, clock.now()))

    fresh = Project.create("Fresh", None, clock.now())
    await save(new_uow, fresh)

    page = await list_projects(new_uow, ProjectQuery(sort="id", descending=False))
    assert page.items == [taken, fresh]


async def test_a_refused_project_removal_leaves_the_unit_of_work_able_to_roll_back(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    project = Project.create("Busy", None, clock.now())
    await save(new_uow, project)
    task = Task.create("Belongs", clock.now(), project_id=project.id)
    await save(new_uow, task)
    assert project.id is not None
    assert task.id is not None
    added = Task.create("Added before the refusal", clock.now())

    async def add_then_remove_the_project() -> None:
        async with new_uow() as uow:
            await uow.tasks.add(added)
            assert project.id is not None
            await uow.projects.remove(project.id)

    with pytest.raises(ProjectHasTasks):
        await add_then_remove_the_project()

    assert added.id is not None
    assert await get_task(new_uow, added.id) is None
    assert await get_project(new_uow, project.id) == project
    assert await get_task(new_uow, task.id) == task


async def test_a_concurrent_update_leaves_the_unit_of_work_able_to_roll_back(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    task = Task.create("Contested", clock.now())
    await save(new_uow, task)
    assert task.id is not None
    added = Task.create("Added before the conflict", clock.now())
    stale = task.copy()
    stale.apply(TaskChanges(title="Stale"), clock.now())

    async def add_then_update_stale() -> None:
        async with new_uow() as uow:
            await uow.tasks.add(added)
            await uow.tasks.update(stale, expected_version=7)

    with pytest.raises(ConcurrentUpdate):
        await add_then_update_stale()

    assert added.id is not None
    assert await get_task(new_uow, added.id) is None
    assert await get_task(new_uow, task.id) == task
