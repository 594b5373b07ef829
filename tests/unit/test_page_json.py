"""A listing's body is the JSON that pydantic writes for Page[TaskRead] and
Page[ProjectRead], and one entity's body the JSON it writes for TaskRead and
ProjectRead, byte for byte, though they are written without them."""

from datetime import UTC, date, timedelta, timezone
from typing import TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from application.queries import Page
from domain.projects import Project
from domain.tasks import Task
from domain.values import Priority
from entrypoints.http.cursors import Cursors, Paging
from entrypoints.http.schemas import (
    PROJECT_READS,
    TASK_READS,
    ProjectFilters,
    ProjectRead,
    TaskFilters,
    TaskRead,
    item_response,
)
from entrypoints.http.schemas import Page as PageSchema

PAGING = Paging(Cursors(b"a test secret of 32 bytes or so!"), count_cap=1000)
ids = st.integers(1, 2**63 - 1)
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
# Entities read back from a database are in UTC; any other offset is written
# the same way by both too.
offsets = st.integers(-23 * 60, 23 * 60).map(lambda m: timezone(timedelta(minutes=m)))
moments = st.one_of(
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(timezones=offsets),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=0)),
)
tasks = st.builds(
    Task,
    title=texts,
    created_at=moments,
    updated_at=moments,
    description=st.none() | texts,
    priority=st.sampled_from(Priority),
    due_date=st.none() | st.dates(min_value=date(1, 1, 1)),
    project_id=st.none() | ids,
    done=st.booleans(),
    completed_at=st.none() | moments,
    version=st.integers(1, 2**31 - 1),
    owner_id=ids,
    id=ids,
)
projects = st.builds(
    Project,
    name=texts,
    description=st.none() | texts,
    created_at=moments,
    updated_at=moments,
    archived=st.booleans(),
    version=st.integers(1, 2**31 - 1),
    owner_id=ids,
    id=ids,
)
totals = st.none() | st.integers(0, 10**6)

M = TypeVar("M", bound=BaseModel)


def read(model: type[M], entity: object) -> M:
    return model.model_validate(entity, from_attributes=True)


def as_pydantic_writes(model: type[BaseModel], entity: object) -> bytes:
    return read(model, entity).model_dump_json().encode()


@settings(max_examples=300)
@given(items=st.lists(tasks, max_size=5), total=totals, limit=st.integers(1, 100))
def test_a_page_of_tasks_is_written_as_pydantic_writes_page_of_task_read(
    items: list[Task], total: int | None, limit: int
) -> None:
    body = TaskFilters(limit=limit).page(Page(items, total), TASK_READS, PAGING, {})
    expected = PageSchema[TaskRead](
        items=[read(TaskRead, task) for task in items],
        total=total,
        limit=limit,
        offset=0,
        next_cursor=None,
    )
    assert body.body == expected.model_dump_json().encode()


@settings(max_examples=200)
@given(items=st.lists(projects, max_size=5), total=totals)
def test_a_page_of_projects_is_written_as_pydantic_writes_page_of_project_read(
    items: list[Project], total: int | None
) -> None:
    body = ProjectFilters().page(Page(items, total), PROJECT_READS, PAGING, {})
    expected = PageSchema[ProjectRead](
        items=[read(ProjectRead, project) for project in items],
        total=total,
        limit=ProjectFilters().limit,
        offset=0,
        next_cursor=None,
    )
    assert body.body == expected.model_dump_json().encode()


@settings(max_examples=300)
@given(task=tasks, location=st.sampled_from([None, "/tasks/7"]))
def test_a_task_is_written_as_pydantic_writes_task_read(
    task: Task, location: str | None
) -> None:
    response = item_response(TASK_READS, task, location=location)
    assert response.body == as_pydantic_writes(TaskRead, task)
    assert response.status_code == (200 if location is None else 201)
    assert response.headers["etag"] == f'"{task.version}"'
    assert response.headers.get("location") == location
    assert response.headers["content-type"] == "application/json"


@settings(max_examples=200)
@given(project=projects)
def test_a_project_is_written_as_pydantic_writes_project_read(project: Project) -> None:
    response = item_response(PROJECT_READS, project)
    assert response.body == as_pydantic_writes(ProjectRead, project)
