from functools import partial
from typing import Annotated

from dependency_injector.wiring import inject
from fastapi import APIRouter, Depends, Path, Request, Response, status

from application.idempotency import IdempotencyService
from application.services import CreateTask, TaskService
from entrypoints.container import Container
from entrypoints.http.auth import OwnerId
from entrypoints.http.conditional import (
    IfMatch,
    IfNoneMatch,
    expected_versions,
    not_modified,
    not_modified_response,
)
from entrypoints.http.cursors import paging_of
from entrypoints.http.idempotency import (
    IdempotencyKey,
    fingerprint,
    idempotently,
)
from entrypoints.http.openapi import route_responses
from entrypoints.http.planned import PlannedRoute
from entrypoints.http.provide import Provide
from entrypoints.http.query import query_model
from entrypoints.http.schemas import (
    INT64_MAX,
    TASK_READS,
    Page,
    TaskCreate,
    TaskFilters,
    TaskRead,
    TaskUpdate,
    item_response,
)

router = APIRouter(prefix="/tasks", tags=["tasks"], route_class=PlannedRoute)

TaskServiceDep = Annotated[TaskService, Depends(Provide[Container.task_service])]
IdempotencyDep = Annotated[
    IdempotencyService, Depends(Provide[Container.idempotency_service])
]
TaskId = Annotated[int, Path(ge=1, le=INT64_MAX, description="The task's id.")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TaskRead,
    responses=route_responses(400, 409, 422, created=True),
)
@inject
async def create_task(
    body: TaskCreate,
    request: Request,
    tasks: TaskServiceDep,
    idempotency: IdempotencyDep,
    owner: OwnerId,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Create a task."""

    async def create() -> Response:
        task = await tasks.create(owner, CreateTask(**body.model_dump()))
        return item_response(TASK_READS, task, location=f"/tasks/{task.id}")

    return await idempotently(
        idempotency, owner, idempotency_key, partial(fingerprint, request, body), create
    )


_task_filters, _TASK_FILTERS_DOCS = query_model(TaskFilters)


@router.get(
    "",
    response_model=Page[TaskRead],
    responses=route_responses(422),
    openapi_extra=_TASK_FILTERS_DOCS,
)
@inject
async def list_tasks(
    tasks: TaskServiceDep, owner: OwnerId, request: Request
) -> Response:
    """List tasks, filtered, sorted and paginated."""
    filters = _task_filters(request)
    paging = paging_of(request)
    binding = filters.binding(route="tasks", owner=owner)
    page = await tasks.list(owner, filters.query(paging, binding))
    return filters.page(page, TASK_READS, paging, binding)


@router.get(
    "/{task_id}",
    response_model=TaskRead,
    responses=route_responses(304, 404, 422, etag=True),
)
@inject
async def get_task(
    task_id: TaskId,
    tasks: TaskServiceDep,
    owner: OwnerId,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Get one task."""
    task = await tasks.get(owner, task_id)
    if not_modified(if_none_match, task.version):
        return not_modified_response(task.version)
    return item_response(TASK_READS, task)


@router.patch(
    "/{task_id}",
    response_model=TaskRead,
    responses=route_responses(400, 404, 409, 412, 422, etag=True),
)
@inject
async def update_task(
    task_id: TaskId,
    body: TaskUpdate,
    tasks: TaskServiceDep,
    owner: OwnerId,
    if_match: IfMatch = None,
) -> Response:
    """Change some of a task's fields."""
    expected = expected_versions(if_match)
    task = await tasks.update(owner, task_id, body.to_changes(), expected=expected)
    return item_response(TASK_READS, task)


@router.delete(
    "/{task_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=route_responses(404, 412, 422),
)
@inject
async def delete_task(
    task_id: TaskId, tasks: TaskServiceDep, owner: OwnerId, if_match: IfMatch = None
) -> Response:
    """Delete a task."""
    await tasks.delete(owner, task_id, expected=expected_versions(if_match))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
