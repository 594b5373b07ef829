"""Scoping lives in the use cases and repositories: routes cannot forget it."""

import pytest

from adapters.memory import InMemoryStore
from application.queries import ProjectQuery, TaskQuery
from application.services import CreateTask, ProjectService, TaskService
from domain.errors import InvalidValue, ProjectNotFound, TaskNotFound
from domain.projects import ProjectChanges
from domain.tasks import TaskChanges

ALICE, BOB = 1, 2


async def test_a_use_case_cannot_reach_another_owners_rows_even_when_called_directly(
    tasks: TaskService, projects: ProjectService, store: InMemoryStore
) -> None:
    project = await projects.create(ALICE, "Roadmap")
    task = await tasks.create(ALICE, CreateTask("Secret", project_id=project.id))
    assert project.id is not None
    assert task.id is not None
    before = dict(store.tasks), dict(store.projects)

    with pytest.raises(TaskNotFound):
        await tasks.get(BOB, task.id)
    with pytest.raises(TaskNotFound):
        await tasks.update(BOB, task.id, TaskChanges(title="Mine now"))
    with pytest.raises(TaskNotFound):
        await tasks.delete(BOB, task.id)
    with pytest.raises(ProjectNotFound):
        await projects.get(BOB, project.id)
    with pytest.raises(ProjectNotFound):
        await projects.update(BOB, project.id, ProjectChanges(archived=True))
    with pytest.raises(ProjectNotFound):
        await projects.delete(BOB, project.id)
    with pytest.raises(ProjectNotFound):
        await projects.list_tasks(BOB, project.id, TaskQuery())
    with pytest.raises(InvalidValue):
        await tasks.create(BOB, CreateTask("Sneak in", project_id=project.id))

    assert (await tasks.list(BOB, TaskQuery(project_id=project.id))).total == 0
    assert (await tasks.list(BOB, TaskQuery(q="Secret"))).total == 0
    assert (await projects.list(BOB, ProjectQuery(q="Roadmap"))).total == 0
    assert (store.tasks, store.projects) == before


async def test_a_task_cannot_be_moved_into_another_owners_project(
    tasks: TaskService, projects: ProjectService
) -> None:
    alices = await projects.create(ALICE, "Roadmap")
    bobs_task = await tasks.create(BOB, CreateTask("Mine"))
    assert bobs_task.id is not None
    with pytest.raises(InvalidValue) as error:
        await tasks.update(BOB, bobs_task.id, TaskChanges(project_id=alices.id))
    assert error.value.field == "project_id"


async def test_two_owners_may_both_have_a_project_of_one_name(
    projects: ProjectService,
) -> None:
    alices = await projects.create(ALICE, "Roadmap")
    bobs = await projects.create(BOB, "roadmap")
    assert (alices.owner_id, bobs.owner_id) == (ALICE, BOB)
    assert (await projects.list(ALICE, ProjectQuery())).total == 1
