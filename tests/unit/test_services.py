"""The use cases' rules, run against the in-memory unit of work (no I/O)."""

from datetime import date

import pytest

from adapters.memory import InMemoryStore
from application.queries import ProjectQuery, TaskQuery
from application.services import CreateTask, ProjectService, TaskService
from domain.errors import (
    InvalidValue,
    ProjectArchived,
    ProjectHasTasks,
    ProjectNameTaken,
    ProjectNotFound,
    TaskNotFound,
)
from domain.projects import ProjectChanges
from domain.tasks import TaskChanges
from domain.values import Priority
from tests.fakes import FrozenClock

OWNER = 1


async def test_a_created_task_is_stored_with_the_clocks_time(
    tasks: TaskService, clock: FrozenClock
) -> None:
    created = await tasks.create(
        OWNER, CreateTask("Write tests", priority=Priority.HIGH)
    )
    stored = await tasks.get(OWNER, created.id or 0)
    assert stored == created
    assert stored.created_at == clock.now()
    assert stored.priority is Priority.HIGH


async def test_an_archived_project_accepts_no_new_task(
    tasks: TaskService, projects: ProjectService, store: InMemoryStore
) -> None:
    project = await projects.create(OWNER, "Archive")
    await projects.update(OWNER, project.id or 0, ProjectChanges(archived=True))
    with pytest.raises(ProjectArchived):
        await tasks.create(OWNER, CreateTask("Too late", project_id=project.id))
    assert store.tasks == {}


async def test_a_task_cannot_move_into_an_archived_project(
    tasks: TaskService, projects: ProjectService
) -> None:
    archived = await projects.create(OWNER, "Archive")
    await projects.update(OWNER, archived.id or 0, ProjectChanges(archived=True))
    task = await tasks.create(OWNER, CreateTask("Loose end"))
    with pytest.raises(ProjectArchived):
        await tasks.update(OWNER, task.id or 0, TaskChanges(project_id=archived.id))
    assert (await tasks.get(OWNER, task.id or 0)) == task


async def test_a_task_already_in_a_project_that_gets_archived_can_still_be_edited(
    tasks: TaskService, projects: ProjectService
) -> None:
    project = await projects.create(OWNER, "Finished")
    task = await tasks.create(OWNER, CreateTask("Last one", project_id=project.id))
    await projects.update(OWNER, project.id or 0, ProjectChanges(archived=True))
    updated = await tasks.update(OWNER, task.id or 0, TaskChanges(done=True))
    assert (updated.done, updated.project_id) == (True, project.id)


async def test_a_task_must_name_an_existing_project(tasks: TaskService) -> None:
    with pytest.raises(InvalidValue) as error:
        await tasks.create(OWNER, CreateTask("Orphan", project_id=404))
    assert error.value.field == "project_id"
    task = await tasks.create(OWNER, CreateTask("Loose"))
    with pytest.raises(InvalidValue):
        await tasks.update(OWNER, task.id or 0, TaskChanges(project_id=404))


async def test_a_project_that_still_has_tasks_cannot_be_deleted(
    tasks: TaskService, projects: ProjectService
) -> None:
    project = await projects.create(OWNER, "Busy")
    for title in ["one", "two"]:
        await tasks.create(OWNER, CreateTask(title, project_id=project.id))
    with pytest.raises(ProjectHasTasks) as error:
        await projects.delete(OWNER, project.id or 0)
    assert error.value.task_count == 2
    assert "2 tasks" in error.value.message
    assert await projects.get(OWNER, project.id or 0) == project


async def test_an_empty_project_can_be_deleted(projects: ProjectService) -> None:
    project = await projects.create(OWNER, "Empty")
    await projects.delete(OWNER, project.id or 0)
    with pytest.raises(ProjectNotFound):
        await projects.get(OWNER, project.id or 0)


async def test_project_names_are_unique_ignoring_case(projects: ProjectService) -> None:
    await projects.create(OWNER, "Roadmap")
    with pytest.raises(ProjectNameTaken):
        await projects.create(OWNER, "  ROADMAP ")
    other = await projects.create(OWNER, "Backlog")
    with pytest.raises(ProjectNameTaken):
        await projects.update(OWNER, other.id or 0, ProjectChanges(name="roadmap"))
    assert (await projects.get(OWNER, other.id or 0)).name == "Backlog"


async def test_renaming_a_project_to_its_own_name_in_other_case_is_allowed(
    projects: ProjectService,
) -> None:
    project = await projects.create(OWNER, "roadmap")
    renamed = await projects.update(
        OWNER, project.id or 0, ProjectChanges(name="Roadmap")
    )
    assert (renamed.name, renamed.version) == ("Roadmap", 2)


async def test_an_update_that_changes_nothing_keeps_version_and_updated_at(
    tasks: TaskService, clock: FrozenClock
) -> None:
    task = await tasks.create(OWNER, CreateTask("Stable", due_date=date(2026, 3, 1)))
    clock.advance(hours=1)
    same = await tasks.update(
        OWNER, task.id or 0, TaskChanges(title="Stable", due_date=date(2026, 3, 1))
    )
    assert (same.version, same.updated_at) == (1, task.updated_at)


async def test_marking_done_twice_keeps_the_first_completed_at(
    tasks: TaskService, clock: FrozenClock
) -> None:
    task = await tasks.create(OWNER, CreateTask("Once"))
    first = clock.advance(minutes=1)
    await tasks.update(OWNER, task.id or 0, TaskChanges(done=True))
    clock.advance(minutes=1)
    again = await tasks.update(OWNER, task.id or 0, TaskChanges(done=True))
    assert (again.completed_at, again.version) == (first, 2)


async def test_missing_tasks_and_projects_are_not_found(
    tasks: TaskService, projects: ProjectService
) -> None:
    with pytest.raises(TaskNotFound):
        await tasks.get(OWNER, 1)
    with pytest.raises(TaskNotFound):
        await tasks.update(OWNER, 1, TaskChanges(done=True))
    with pytest.raises(TaskNotFound):
        await tasks.delete(OWNER, 1)
    with pytest.raises(ProjectNotFound):
        await projects.update(OWNER, 1, ProjectChanges(archived=True))
    with pytest.raises(ProjectNotFound):
        await projects.delete(OWNER, 1)
    with pytest.raises(ProjectNotFound):
        await projects.list_tasks(OWNER, 1, TaskQuery())


async def test_listing_a_projects_tasks_shows_only_that_projects_tasks(
    tasks: TaskService, projects: ProjectService
) -> None:
    mine = await projects.create(OWNER, "Mine")
    theirs = await projects.create(OWNER, "Theirs")
    await tasks.create(OWNER, CreateTask("a", project_id=mine.id))
    await tasks.create(OWNER, CreateTask("b", project_id=theirs.id))
    await tasks.create(OWNER, CreateTask("c"))
    page = await projects.list_tasks(
        OWNER, mine.id or 0, TaskQuery(project_id=theirs.id)
    )
    assert [t.title for t in page.items] == ["a"]
    assert page.total == 1


async def test_a_failed_use_case_leaves_the_store_as_it_was(
    tasks: TaskService, projects: ProjectService, store: InMemoryStore
) -> None:
    project = await projects.create(OWNER, "Roadmap")
    task = await tasks.create(OWNER, CreateTask("Draft", project_id=project.id))
    await projects.update(OWNER, project.id or 0, ProjectChanges(archived=True))
    other = await projects.create(OWNER, "Other")
    await projects.update(OWNER, other.id or 0, ProjectChanges(archived=True))
    before = dict(store.tasks), dict(store.projects)
    with pytest.raises(ProjectArchived):
        await tasks.update(
            OWNER, task.id or 0, TaskChanges(title="Moved", project_id=other.id)
        )
    assert (store.tasks, store.projects) == before


@pytest.mark.parametrize("q", ["a\x00b", "\ud800"])
def test_a_search_no_database_could_hold_is_invalid_before_any_adapter_sees_it(
    q: str,
) -> None:
    with pytest.raises(InvalidValue) as task_error:
        TaskQuery(q=q)
    with pytest.raises(InvalidValue) as project_error:
        ProjectQuery(q=q)

    assert task_error.value.field == project_error.value.field == "q"
