"""What the use cases need from the outside world, as Protocols.

Adapters implement these structurally; nothing here knows about SQL or HTTP.
Repositories never commit: the unit of work that handed them out does.
"""

from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from application.queries import Page, ProjectQuery, TaskQuery
from domain.projects import Project
from domain.tasks import Task


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class TaskRepository(Protocol):
    async def add(self, task: Task) -> None:
        """Store a new task and set its `id`; InvalidValue if its project is gone."""
        ...

    async def get(self, task_id: int) -> Task | None:
        """The task with this id, or None when there is none."""
        ...

    async def update(self, task: Task, expected_version: int) -> None:
        """Store `task`; ConcurrentUpdate unless the stored version is expected.

        InvalidValue if the task's project does not exist.
        """
        ...

    async def remove(self, task_id: int) -> bool:
        """Delete the task; False when there was none."""
        ...

    async def list(self, query: TaskQuery) -> Page[Task]:
        """The tasks matching `query`, one window of them, and how many match."""
        ...

    async def count_in_project(self, project_id: int) -> int:
        """How many tasks belong to the project (0 for an unknown project)."""
        ...


class ProjectRepository(Protocol):
    async def add(self, project: Project) -> None:
        """Store a new project and set its `id`; raise ProjectNameTaken on a clash."""
        ...

    async def get(self, project_id: int) -> Project | None:
        """The project with this id, or None when there is none."""
        ...

    async def update(self, project: Project, expected_version: int) -> None:
        """Store `project`; raise ProjectNameTaken or ConcurrentUpdate on a clash."""
        ...

    async def remove(self, project_id: int) -> bool:
        """Delete the project; False when there was none.

        Raises ProjectHasTasks if tasks still point at it.
        """
        ...

    async def list(self, query: ProjectQuery) -> Page[Project]:
        """The projects matching `query`, one window of them, and how many match."""
        ...


class UnitOfWork(Protocol):
    """One transaction. `async with uow:` rolls back unless `commit()` was awaited."""

    tasks: TaskRepository
    projects: ProjectRepository

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None:
        """Make everything done in this unit of work durable."""
        ...
