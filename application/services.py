"""Use cases. Each runs in one unit of work and returns domain objects."""

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, replace
from datetime import date
from typing import Final, TypeVar

from application.ports import Clock, UnitOfWork, UnitOfWorkFactory
from application.queries import Page, ProjectQuery, TaskQuery
from domain.errors import (
    ConcurrentUpdate,
    InvalidValue,
    ProjectArchived,
    ProjectHasTasks,
    ProjectNotFound,
    TaskNotFound,
    VersionMismatch,
)
from domain.projects import Project, ProjectChanges
from domain.tasks import Task, TaskChanges
from domain.values import Priority

T = TypeVar("T")

# How often a change is re-applied to a row that another writer changed between
# this use case's read and its write. The read locks the row where the database
# can, so it takes an unusual race to use even one retry.
ATTEMPTS: Final = 5

Versions = Collection[int] | None
"""The versions a change is conditional on (HTTP's If-Match); None for any."""


@dataclass(frozen=True, slots=True)
class CreateTask:
    title: str
    description: str | None = None
    priority: Priority = Priority.NORMAL
    due_date: date | None = None
    project_id: int | None = None


async def _task(
    uow: UnitOfWork,
    task_id: int,
    *,
    for_update: bool = False,
    expected: Versions = None,
) -> Task:
    task = await uow.tasks.get(task_id, for_update=for_update)
    if task is None:
        raise TaskNotFound(task_id)
    if expected is not None and task.version not in expected:
        raise VersionMismatch("Task", task_id, task.version)
    return task


async def _project(
    uow: UnitOfWork,
    project_id: int,
    *,
    for_update: bool = False,
    expected: Versions = None,
) -> Project:
    project = await uow.projects.get(project_id, for_update=for_update)
    if project is None:
        raise ProjectNotFound(project_id)
    if expected is not None and project.version not in expected:
        raise VersionMismatch("Project", project_id, project.version)
    return project


async def _retrying(attempt: Callable[[], Awaitable[T]]) -> T:
    """Run `attempt` again, reading afresh, when a concurrent write got between
    its read and its write, instead of writing back a stale copy."""
    for _ in range(ATTEMPTS - 1):
        try:
            return await attempt()
        except ConcurrentUpdate:
            continue
    return await attempt()


async def ensure_accepts_tasks(uow: UnitOfWork, project_id: int) -> None:
    """A task may only point at an existing project of its owner, not archived."""
    project = await uow.projects.get(project_id)
    if project is None:
        raise InvalidValue("project_id", f"Project {project_id} does not exist.")
    if project.archived:
        raise ProjectArchived(project_id)


class TaskService:
    """Create, read, change and delete one owner's tasks.

    Every use case takes the owner first and works in that owner's unit of
    work, so it cannot reach another owner's rows even when called directly.
    """

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def create(self, owner_id: int, command: CreateTask) -> Task:
        """Create a task; its project, if any, must exist and not be archived."""
        task = Task.create(
            command.title,
            self._clock.now(),
            description=command.description,
            priority=command.priority,
            due_date=command.due_date,
            project_id=command.project_id,
        )
        async with self._uow(owner_id=owner_id) as uow:
            if task.project_id is not None:
                await ensure_accepts_tasks(uow, task.project_id)
            await uow.tasks.add(task)
            await uow.commit()
        return task

    async def get(self, owner_id: int, task_id: int) -> Task:
        """The task, or TaskNotFound."""
        async with self._uow(owner_id=owner_id, read_only=True) as uow:
            return await _task(uow, task_id)

    async def list(self, owner_id: int, query: TaskQuery) -> Page[Task]:
        """One page of the tasks matching `query`."""
        async with self._uow(owner_id=owner_id, read_only=True) as uow:
            return await uow.tasks.list(query)

    async def update(
        self,
        owner_id: int,
        task_id: int,
        changes: TaskChanges,
        *,
        expected: Versions = None,
    ) -> Task:
        """Apply a partial update to the task as it is now.

        Moving into an archived project is a conflict; a task at none of the
        `expected` versions is a VersionMismatch.
        """

        async def attempt() -> Task:
            async with self._uow(owner_id=owner_id) as uow:
                task = await _task(uow, task_id, for_update=True, expected=expected)
                version, project_id = task.version, task.project_id
                if not task.apply(changes, self._clock.now()):
                    return task
                if task.project_id is not None and task.project_id != project_id:
                    await ensure_accepts_tasks(uow, task.project_id)
                await uow.tasks.update(task, expected_version=version)
                await uow.commit()
            return task

        return await _retrying(attempt)

    async def delete(
        self, owner_id: int, task_id: int, *, expected: Versions = None
    ) -> None:
        """Delete the task; TaskNotFound, or VersionMismatch as for update."""

        async def attempt() -> None:
            async with self._uow(owner_id=owner_id) as uow:
                version = None
                if expected is not None:
                    task = await _task(uow, task_id, for_update=True, expected=expected)
                    version = task.version
                if not await uow.tasks.remove(task_id, expected_version=version):
                    raise TaskNotFound(task_id)
                await uow.commit()

        await _retrying(attempt)


class ProjectService:
    """Create, read, change and delete one owner's projects; list their tasks."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def create(
        self, owner_id: int, name: str, description: str | None = None
    ) -> Project:
        """Create a project; a name that clashes case-insensitively is a conflict."""
        project = Project.create(name, description, self._clock.now())
        async with self._uow(owner_id=owner_id) as uow:
            await uow.projects.add(project)
            await uow.commit()
        return project

    async def get(self, owner_id: int, project_id: int) -> Project:
        """The project, or ProjectNotFound."""
        async with self._uow(owner_id=owner_id, read_only=True) as uow:
            return await _project(uow, project_id)

    async def list(self, owner_id: int, query: ProjectQuery) -> Page[Project]:
        """One page of the projects matching `query`."""
        async with self._uow(owner_id=owner_id, read_only=True) as uow:
            return await uow.projects.list(query)

    async def update(
        self,
        owner_id: int,
        project_id: int,
        changes: ProjectChanges,
        *,
        expected: Versions = None,
    ) -> Project:
        """Apply a partial update to the project as it is now.

        Renaming onto a taken name is a conflict; a project at none of the
        `expected` versions is a VersionMismatch.
        """

        async def attempt() -> Project:
            async with self._uow(owner_id=owner_id) as uow:
                project = await _project(
                    uow, project_id, for_update=True, expected=expected
                )
                version = project.version
                if not project.apply(changes, self._clock.now()):
                    return project
                await uow.projects.update(project, expected_version=version)
                await uow.commit()
            return project

        return await _retrying(attempt)

    async def delete(
        self, owner_id: int, project_id: int, *, expected: Versions = None
    ) -> None:
        """Delete an empty project; one that still has tasks is a conflict."""

        async def attempt() -> None:
            async with self._uow(owner_id=owner_id) as uow:
                version = None
                if expected is not None:
                    project = await _project(
                        uow, project_id, for_update=True, expected=expected
                    )
                    version = project.version
                task_count = await uow.tasks.count_in_project(project_id)
                if task_count:
                    raise ProjectHasTasks(project_id, task_count)
                if not await uow.projects.remove(project_id, expected_version=version):
                    raise ProjectNotFound(project_id)
                await uow.commit()

        await _retrying(attempt)

    async def list_tasks(
        self, owner_id: int, project_id: int, query: TaskQuery
    ) -> Page[Task]:
        """One page of the project's tasks; ProjectNotFound if there is no project."""
        async with self._uow(owner_id=owner_id, read_only=True) as uow:
            await _project(uow, project_id)
            return await uow.tasks.list(replace(query, project_id=project_id))
