"""Use cases. Each runs in one unit of work and returns domain objects."""

from dataclasses import dataclass, replace
from datetime import date

from application.ports import Clock, UnitOfWork, UnitOfWorkFactory
from application.queries import Page, ProjectQuery, TaskQuery
from domain.errors import (
    InvalidValue,
    ProjectArchived,
    ProjectHasTasks,
    ProjectNotFound,
    TaskNotFound,
)
from domain.projects import Project, ProjectChanges
from domain.tasks import Task, TaskChanges
from domain.values import Priority


@dataclass(frozen=True, slots=True)
class CreateTask:
    title: str
    description: str | None = None
    priority: Priority = Priority.NORMAL
    due_date: date | None = None
    project_id: int | None = None


async def _task(uow: UnitOfWork, task_id: int) -> Task:
    task = await uow.tasks.get(task_id)
    if task is None:
        raise TaskNotFound(task_id)
    return task


async def _project(uow: UnitOfWork, project_id: int) -> Project:
    project = await uow.projects.get(project_id)
    if project is None:
        raise ProjectNotFound(project_id)
    return project


async def _ensure_accepts_tasks(uow: UnitOfWork, project_id: int) -> None:
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
                await _ensure_accepts_tasks(uow, task.project_id)
            await uow.tasks.add(task)
            await uow.commit()
        return task

    async def get(self, owner_id: int, task_id: int) -> Task:
        """The task, or TaskNotFound."""
        async with self._uow(owner_id=owner_id) as uow:
            return await _task(uow, task_id)

    async def list(self, owner_id: int, query: TaskQuery) -> Page[Task]:
        """One page of the tasks matching `query`."""
        async with self._uow(owner_id=owner_id) as uow:
            return await uow.tasks.list(query)

    async def update(self, owner_id: int, task_id: int, changes: TaskChanges) -> Task:
        """Apply a partial update; moving into an archived project is a conflict."""
        async with self._uow(owner_id=owner_id) as uow:
            task = await _task(uow, task_id)
            version, project_id = task.version, task.project_id
            if not task.apply(changes, self._clock.now()):
                return task
            if task.project_id is not None and task.project_id != project_id:
                await _ensure_accepts_tasks(uow, task.project_id)
            await uow.tasks.update(task, expected_version=version)
            await uow.commit()
        return task

    async def delete(self, owner_id: int, task_id: int) -> None:
        """Delete the task, or raise TaskNotFound."""
        async with self._uow(owner_id=owner_id) as uow:
            if not await uow.tasks.remove(task_id):
                raise TaskNotFound(task_id)
            await uow.commit()


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
        async with self._uow(owner_id=owner_id) as uow:
            return await _project(uow, project_id)

    async def list(self, owner_id: int, query: ProjectQuery) -> Page[Project]:
        """One page of the projects matching `query`."""
        async with self._uow(owner_id=owner_id) as uow:
            return await uow.projects.list(query)

    async def update(
        self, owner_id: int, project_id: int, changes: ProjectChanges
    ) -> Project:
        """Apply a partial update; renaming onto a taken name is a conflict."""
        async with self._uow(owner_id=owner_id) as uow:
            project = await _project(uow, project_id)
            version = project.version
            if not project.apply(changes, self._clock.now()):
                return project
            await uow.projects.update(project, expected_version=version)
            await uow.commit()
        return project

    async def delete(self, owner_id: int, project_id: int) -> None:
        """Delete an empty project; one that still has tasks is a conflict."""
        async with self._uow(owner_id=owner_id) as uow:
            task_count = await uow.tasks.count_in_project(project_id)
            if task_count:
                raise ProjectHasTasks(project_id, task_count)
            if not await uow.projects.remove(project_id):
                raise ProjectNotFound(project_id)
            await uow.commit()

    async def list_tasks(
        self, owner_id: int, project_id: int, query: TaskQuery
    ) -> Page[Task]:
        """One page of the project's tasks; ProjectNotFound if there is no project."""
        async with self._uow(owner_id=owner_id) as uow:
            await _project(uow, project_id)
            return await uow.tasks.list(replace(query, project_id=project_id))
