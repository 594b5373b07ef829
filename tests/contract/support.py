"""Helpers for the contract suites: each runs its own unit of work and commits.

Reading back in a new unit of work is the point: what a test then sees is what
the adapter stored, not an object it still holds.
"""

from collections.abc import Callable

from application.ports import UnitOfWork
from application.queries import Page, ProjectQuery, TaskQuery
from domain.projects import Project
from domain.tasks import Task

# One owner's units of work: the contract suites run as that owner throughout.
NewUnitOfWork = Callable[[], UnitOfWork]


async def save(new_uow: NewUnitOfWork, *entities: Task | Project) -> None:
    """Add the entities, in order, in one committed unit of work."""
    async with new_uow() as uow:
        for entity in entities:
            if isinstance(entity, Project):
                await uow.projects.add(entity)
            else:
                await uow.tasks.add(entity)
        await uow.commit()


async def get_task(new_uow: NewUnitOfWork, task_id: int) -> Task | None:
    async with new_uow() as uow:
        return await uow.tasks.get(task_id)


async def get_project(new_uow: NewUnitOfWork, project_id: int) -> Project | None:
    async with new_uow() as uow:
        return await uow.projects.get(project_id)


async def list_tasks(new_uow: NewUnitOfWork, query: TaskQuery) -> Page[Task]:
    async with new_uow() as uow:
        return await uow.tasks.list(query)


async def list_projects(new_uow: NewUnitOfWork, query: ProjectQuery) -> Page[Project]:
    async with new_uow() as uow:
        return await uow.projects.list(query)


def ids(page: Page[Task] | Page[Project]) -> list[int | None]:
    return [entity.id for entity in page.items]
