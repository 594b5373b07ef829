from functools import partial
from typing import Annotated

from dependency_injector.wiring import inject
from fastapi import APIRouter, Depends, Path, Request, Response, status

from application.idempotency import IdempotencyService
from application.services import ProjectService
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
    PROJECT_READS,
    TASK_READS,
    Page,
    ProjectCreate,
    ProjectFilters,
    ProjectRead,
    ProjectTaskFilters,
    ProjectUpdate,
    TaskRead,
    item_response,
)

router = APIRouter(prefix="/projects", tags=["projects"], route_class=PlannedRoute)

ProjectServiceDep = Annotated[
    ProjectService, Depends(Provide[Container.project_service])
]
IdempotencyDep = Annotated[
    IdempotencyService, Depends(Provide[Container.idempotency_service])
]
ProjectId = Annotated[int, Path(ge=1, le=INT64_MAX, description="The project's id.")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProjectRead,
    responses=route_responses(400, 409, 422, created=True),
)
@inject
async def create_project(
    body: ProjectCreate,
    request: Request,
    projects: ProjectServiceDep,
    idempotency: IdempotencyDep,
    owner: OwnerId,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Create a project; its name must be unique, ignoring case."""

    async def create() -> Response:
        project = await projects.create(owner, body.name, body.description)
        location = f"/projects/{project.id}"
        return item_response(PROJECT_READS, project, location=location)

    return await idempotently(
        idempotency, owner, idempotency_key, partial(fingerprint, request, body), create
    )


_project_filters, _PROJECT_FILTERS_DOCS = query_model(ProjectFilters)
_project_task_filters, _PROJECT_TASK_FILTERS_DOCS = query_model(ProjectTaskFilters)


@router.get(
    "",
    response_model=Page[ProjectRead],
    responses=route_responses(422),
    openapi_extra=_PROJECT_FILTERS_DOCS,
)
@inject
async def list_projects(
    projects: ProjectServiceDep, owner: OwnerId, request: Request
) -> Response:
    """List projects, filtered, sorted and paginated."""
    filters = _project_filters(request)
    paging = paging_of(request)
    binding = filters.binding(route="projects", owner=owner)
    page = await projects.list(owner, filters.query(paging, binding))
    return filters.page(page, PROJECT_READS, paging, binding)


@router.get(
    "/{project_id}",
    response_model=ProjectRead,
    responses=route_responses(304, 404, 422, etag=True),
)
@inject
async def get_project(
    project_id: ProjectId,
    projects: ProjectServiceDep,
    owner: OwnerId,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Get one project."""
    project = await projects.get(owner, project_id)
    if not_modified(if_none_match, project.version):
        return not_modified_response(project.version)
    return item_response(PROJECT_READS, project)


@router.patch(
    "/{project_id}",
    response_model=ProjectRead,
    responses=route_responses(400, 404, 409, 412, 422, etag=True),
)
@inject
async def update_project(
    project_id: ProjectId,
    body: ProjectUpdate,
    projects: ProjectServiceDep,
    owner: OwnerId,
    if_match: IfMatch = None,
) -> Response:
    """Rename, describe, archive or unarchive a project."""
    expected = expected_versions(if_match)
    project = await projects.update(
        owner, project_id, body.to_changes(), expected=expected
    )
    return item_response(PROJECT_READS, project)


@router.delete(
    "/{project_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=route_responses(404, 409, 412, 422),
)
@inject
async def delete_project(
    project_id: ProjectId,
    projects: ProjectServiceDep,
    owner: OwnerId,
    if_match: IfMatch = None,
) -> Response:
    """Delete a project that has no tasks."""
    expected = expected_versions(if_match)
    await projects.delete(owner, project_id, expected=expected)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{project_id}/tasks",
    response_model=Page[TaskRead],
    responses=route_responses(404, 422),
    openapi_extra=_PROJECT_TASK_FILTERS_DOCS,
)
@inject
async def list_project_tasks(
    project_id: ProjectId,
    projects: ProjectServiceDep,
    owner: OwnerId,
    request: Request,
) -> Response:
    """List a project's tasks, with the same filters as /tasks."""
    filters = _project_task_filters(request)
    paging = paging_of(request)
    binding = filters.binding(route="project tasks", project=project_id, owner=owner)
    query = filters.query(paging, binding)
    page = await projects.list_tasks(owner, project_id, query)
    return filters.page(page, TASK_READS, paging, binding)
