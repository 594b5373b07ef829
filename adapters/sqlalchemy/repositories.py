"""SQL repositories. They run statements in the unit of work's session, never commit."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sqlalchemy.mapping import (
    project_to_entity,
    project_to_row,
    raise_for_constraint,
    task_to_entity,
    task_to_row,
)
from adapters.sqlalchemy.tables import projects, tasks
from application.queries import Page, ProjectQuery, TaskQuery, Window
from domain.errors import (
    ConcurrentUpdate,
    InvalidValue,
    ProjectHasTasks,
    ProjectNameTaken,
)
from domain.projects import Project
from domain.tasks import Task
from domain.values import search_key

_TASK_SORT_COLUMNS = {
    "id": tasks.c.id,
    "created_at": tasks.c.created_at,
    "updated_at": tasks.c.updated_at,
    "due_date": tasks.c.due_date,
    "priority": tasks.c.priority,
    "title": tasks.c.title_key,
}
_PROJECT_SORT_COLUMNS = {
    "id": projects.c.id,
    "name": projects.c.name_key,
    "created_at": projects.c.created_at,
    "updated_at": projects.c.updated_at,
}


def _contains(column: sa.ColumnElement[str], text: str) -> sa.ColumnElement[bool]:
    """Case-insensitive substring match in which % and _ are literal characters."""
    escaped = (
        search_key(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    )
    return column.like(f"%{escaped}%", escape="\\")


def _order_by(
    column: sa.ColumnElement[Any], id_column: sa.ColumnElement[int], descending: bool
) -> list[sa.ColumnElement[Any]]:
    # NULLs last ascending, first descending: descending is the exact reverse.
    if descending:
        return [column.desc().nulls_first(), id_column.desc()]
    return [column.asc().nulls_last(), id_column.asc()]


async def _page(
    session: AsyncSession,
    table: sa.Table,
    where: list[sa.ColumnElement[bool]],
    order_by: list[sa.ColumnElement[Any]],
    window: Window,
) -> tuple[list[sa.Row[Any]], int]:
    rows = (
        await session.execute(
            sa.select(table)
            .where(*where)
            .order_by(*order_by)
            .limit(window.limit)
            .offset(window.offset)
        )
    ).all()
    # A partly filled page that is not empty tells the total without a count.
    if rows and len(rows) < window.limit:
        return list(rows), window.offset + len(rows)
    count = sa.select(sa.func.count()).select_from(table).where(*where)
    return list(rows), (await session.execute(count)).scalar_one()


class SqlAlchemyTaskRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, task: Task) -> None:
        statement = sa.insert(tasks).values(task_to_row(task)).returning(tasks.c.id)
        try:
            task.id = (await self._session.execute(statement)).scalar_one()
        except IntegrityError as error:
            self._raise_for(error, task)

    async def get(self, task_id: int) -> Task | None:
        row = (
            await self._session.execute(sa.select(tasks).where(tasks.c.id == task_id))
        ).one_or_none()
        return None if row is None else task_to_entity(row)

    async def update(self, task: Task, expected_version: int) -> None:
        assert task.id is not None
        statement = (
            sa.update(tasks)
            .where(tasks.c.id == task.id, tasks.c.version == expected_version)
            .values(task_to_row(task))
        )
        try:
            result = await self._session.execute(statement)
        except IntegrityError as error:
            self._raise_for(error, task)
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise ConcurrentUpdate("Task", task.id)

    async def remove(self, task_id: int) -> bool:
        result = await self._session.execute(
            sa.delete(tasks).where(tasks.c.id == task_id)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def list(self, query: TaskQuery) -> Page[Task]:
        where: list[sa.ColumnElement[bool]] = []
        if query.done is not None:
            where.append(tasks.c.done.is_(query.done))
        if query.project_id is not None:
            where.append(tasks.c.project_id == query.project_id)
        if query.priority is not None:
            where.append(tasks.c.priority == query.priority.rank)
        if query.q is not None:
            where.append(_contains(tasks.c.title_key, query.q))
        if query.due_before is not None:
            where.append(tasks.c.due_date < query.due_before)
        if query.due_after is not None:
            where.append(tasks.c.due_date > query.due_after)
        order_by = _order_by(
            _TASK_SORT_COLUMNS[query.sort], tasks.c.id, query.descending
        )
        rows, total = await _page(self._session, tasks, where, order_by, query.window)
        return Page(items=[task_to_entity(row) for row in rows], total=total)

    async def count_in_project(self, project_id: int) -> int:
        count = sa.select(sa.func.count()).where(tasks.c.project_id == project_id)
        return (await self._session.execute(count)).scalar_one()

    @staticmethod
    def _raise_for(error: IntegrityError, task: Task) -> None:
        # The project was deleted between the use case's check and this statement.
        message = f"Project {task.project_id} does not exist."
        raise_for_constraint(
            error,
            {
                "fk_tasks_project_id_projects": lambda: InvalidValue(
                    "project_id", message
                )
            },
        )


class SqlAlchemyProjectRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, project: Project) -> None:
        statement = (
            sa.insert(projects).values(project_to_row(project)).returning(projects.c.id)
        )
        try:
            project.id = (await self._session.execute(statement)).scalar_one()
        except IntegrityError as error:
            self._raise_for(error, project)

    async def get(self, project_id: int) -> Project | None:
        row = (
            await self._session.execute(
                sa.select(projects).where(projects.c.id == project_id)
            )
        ).one_or_none()
        return None if row is None else project_to_entity(row)

    async def update(self, project: Project, expected_version: int) -> None:
        assert project.id is not None
        statement = (
            sa.update(projects)
            .where(projects.c.id == project.id, projects.c.version == expected_version)
            .values(project_to_row(project))
        )
        try:
            result = await self._session.execute(statement)
        except IntegrityError as error:
            self._raise_for(error, project)
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise ConcurrentUpdate("Project", project.id)

    async def remove(self, project_id: int) -> bool:
        statement = sa.delete(projects).where(projects.c.id == project_id)
        try:
            result = await self._session.execute(statement)
        except IntegrityError as error:
            # A task was added between the use case's count and this statement.
            raise_for_constraint(
                error,
                {"fk_tasks_project_id_projects": lambda: ProjectHasTasks(project_id)},
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def list(self, query: ProjectQuery) -> Page[Project]:
        where: list[sa.ColumnElement[bool]] = []
        if query.q is not None:
            where.append(_contains(projects.c.name_key, query.q))
        if query.archived is not None:
            where.append(projects.c.archived.is_(query.archived))
        order_by = _order_by(
            _PROJECT_SORT_COLUMNS[query.sort], projects.c.id, query.descending
        )
        rows, total = await _page(
            self._session, projects, where, order_by, query.window
        )
        return Page(items=[project_to_entity(row) for row in rows], total=total)

    @staticmethod
    def _raise_for(error: IntegrityError, project: Project) -> None:
        raise_for_constraint(
            error, {"uq_projects_name_key": lambda: ProjectNameTaken(project.name)}
        )
