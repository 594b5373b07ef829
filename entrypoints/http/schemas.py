"""Request and response bodies. Strict JSON types; unknown fields are rejected."""

import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
from operator import attrgetter
from typing import Annotated, Any, Generic, Literal, Protocol, TypeVar

import orjson
from fastapi import Response
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
)

from application import queries
from domain.projects import NAME_MAX, NAME_MIN, ProjectChanges
from domain.tasks import TITLE_MAX, TaskChanges
from domain.values import DESCRIPTION_MAX, Priority, unstorable
from entrypoints.http.conditional import etag
from entrypoints.http.cursors import Paging, invalid_cursor

INT64_MAX = 2**63 - 1
T = TypeVar("T")
E = TypeVar("E")


def _storable(value: str) -> str:
    problem = unstorable(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _iso_date(value: Any) -> Any:
    # Lax mode would take 0 or "0" as a Unix timestamp; only "YYYY-MM-DD" is a date.
    if isinstance(value, date) or (
        isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)
    ):
        return value
    raise ValueError("Input should be a date in YYYY-MM-DD format")


# Text is trimmed before its length is checked (so the constraints come before
# the validator), and must be storable on every database.
Title = Annotated[
    str,
    Strict(),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX),
    AfterValidator(_storable),
]
Name = Annotated[
    str,
    Strict(),
    StringConstraints(strip_whitespace=True, min_length=NAME_MIN, max_length=NAME_MAX),
    AfterValidator(_storable),
]
Description = Annotated[
    str,
    Strict(),
    StringConstraints(strip_whitespace=True, max_length=DESCRIPTION_MAX),
    AfterValidator(_storable),
]
Search = Annotated[
    str,
    Strict(),
    StringConstraints(strip_whitespace=True, max_length=200),
    AfterValidator(_storable),
]
Id = Annotated[int, Strict(), Field(ge=1, le=INT64_MAX)]
QueryId = Annotated[int, Field(ge=1, le=INT64_MAX)]
IsoDate = Annotated[date, BeforeValidator(_iso_date)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskCreate(_Body):
    title: Title
    description: Description | None = None
    priority: Priority = Priority.NORMAL
    due_date: IsoDate | None = None
    project_id: Id | None = None


# In the update bodies below, a field left out means "unchanged" and only some
# fields may be null. The others get a None default that is never validated
# (and is dropped by exclude_unset), while an explicit null fails their type.


class TaskUpdate(_Body):
    """Only the fields sent change; null clears description, due_date, project_id."""

    title: Title = None  # type: ignore[assignment]
    description: Description | None = None
    done: Annotated[bool, Strict()] = None  # type: ignore[assignment]
    priority: Priority = None  # type: ignore[assignment]
    due_date: IsoDate | None = None
    project_id: Id | None = None

    def to_changes(self) -> TaskChanges:
        return TaskChanges(**self.model_dump(exclude_unset=True))


class TaskRead(BaseModel):
    id: int
    title: str
    description: str | None
    done: bool
    completed_at: datetime | None
    priority: Priority
    due_date: date | None
    project_id: int | None
    created_at: datetime
    updated_at: datetime
    version: int


class ProjectCreate(_Body):
    name: Name
    description: Description | None = None


class ProjectUpdate(_Body):
    """Only the fields sent change; null clears description."""

    name: Name = None  # type: ignore[assignment]
    description: Description | None = None
    archived: Annotated[bool, Strict()] = None  # type: ignore[assignment]

    def to_changes(self) -> ProjectChanges:
        return ProjectChanges(**self.model_dump(exclude_unset=True))


class ProjectRead(BaseModel):
    id: int
    name: str
    description: str | None
    archived: bool
    created_at: datetime
    updated_at: datetime
    version: int


def reads(model: type[BaseModel]) -> Callable[[Sequence[Any]], list[dict[str, Any]]]:
    """The fields of `model` (its names, its order) of each entity of a page,
    taken from their attributes as they are: entities hold valid values
    already, and _Listing.page writes them as `model` would (a test checks).

    Validating a page into `model` and pydantic-core writing that took 156 µs
    for 20 tasks; these dicts and orjson take 54 (best of five). In process on
    PostgreSQL, a listing's page() went from 208-220 to 127-160 µs."""
    names = tuple(model.model_fields)
    values = attrgetter(*names)

    def read(entities: Sequence[Any]) -> list[dict[str, Any]]:
        return [dict(zip(names, values(entity), strict=True)) for entity in entities]

    return read


TASK_READS = reads(TaskRead)
PROJECT_READS = reads(ProjectRead)


class _Versioned(Protocol):
    @property
    def version(self) -> int: ...


V = TypeVar("V", bound=_Versioned)


def item_response(
    read: Callable[[Sequence[V]], list[Any]], entity: V, *, location: str | None = None
) -> Response:
    """One entity's response, with its version as ETag; 201 Created with
    `location`, else 200. Written by `read` as a page's items are (see reads),
    not validated again by FastAPI: a Response skips response_model, which
    stays on the route for the OpenAPI document.

    Building a TaskRead for a get-one, which FastAPI then validated and wrote
    again, took about 4 % of its CPU in process (py-spy)."""
    headers = {"ETag": etag(entity.version)}
    if location is not None:
        headers["Location"] = location
    return Response(
        _json(read((entity,))[0]),
        status_code=200 if location is None else 201,
        media_type="application/json",
        headers=headers,
    )


def _json(body: object) -> bytes:
    # Timestamps in UTC end in Z, as pydantic writes them.
    return orjson.dumps(body, option=orjson.OPT_UTC_Z)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int | None = Field(
        description="How many items match, across all pages: exact up to the "
        "server's cap (TASKHUB_LIST_COUNT_CAP, 1,000 by default), null beyond "
        "(`count=exact` counts them all, at a cost). Pages "
        "fetched with a `cursor` are not counted (null) unless `count=exact`."
    )
    limit: int
    offset: int
    next_cursor: str | None = Field(
        description="More items follow: send this as `cursor` (with the same "
        "filters and sort) for the next page. Null on the last page."
    )


def _query_bool(value: Any) -> Any:
    if value not in ("true", "false", True, False):
        raise ValueError("Input should be true or false")
    return value in ("true", True)


QueryBool = Annotated[bool, BeforeValidator(_query_bool)]

TaskSort = Literal[
    "id", "-id", "created_at", "-created_at", "updated_at", "-updated_at",
    "due_date", "-due_date", "priority", "-priority", "title", "-title",
]  # fmt: skip
ProjectSort = Literal[
    "id", "-id", "name", "-name",
    "created_at", "-created_at", "updated_at", "-updated_at",
]  # fmt: skip


class _Listing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(20, ge=1, le=100, description="Page size, 1–100.")
    offset: int = Field(0, ge=0, le=INT64_MAX, description="Items to skip.")
    cursor: str | None = Field(
        None,
        max_length=4096,  # the longest title, casefolded, in UTF-8 and base64
        description="A previous page's `next_cursor`: the page that follows it, "
        "however the items changed meanwhile. Only with the same filters and "
        "sort, and without `offset`.",
    )
    count: Literal["exact"] | None = Field(
        None,
        description="`exact` makes `total` exact however many items match, and "
        "on cursor pages too; it costs a count of every match.",
    )
    sort: str

    def binding(self, **context: object) -> dict[str, object]:
        """What a cursor of this listing is bound to: its filters and sort, and
        `context` (the route, the owner...)."""
        parameters = {"limit", "offset", "cursor", "count"}
        return self.model_dump(mode="json", exclude=parameters) | context

    def _paged(self, paging: Paging, binding: dict[str, object]) -> dict[str, Any]:
        """The parts of a TaskQuery or ProjectQuery this model's fields give."""
        field = self.sort.removeprefix("-")
        after = None
        if self.cursor is not None:
            if self.offset:
                raise invalid_cursor(
                    "A cursor says where its page starts: send it without offset.",
                    self.cursor,
                )
            after = paging.cursors.open(binding, field, self.cursor)
        return {
            "sort": field,
            "descending": self.sort.startswith("-"),
            "window": queries.Window(limit=self.limit, offset=self.offset),
            "after": after,
            "count_up_to": None if self.count == "exact" else paging.count_cap,
        }

    def page(
        self,
        page: queries.Page[E],
        read: Callable[[Sequence[E]], list[Any]],
        paging: Paging,
        binding: dict[str, object],
    ) -> Response:
        """The response, serialised once (not validated again by FastAPI)."""
        next_cursor = None
        if page.next is not None:
            next_cursor = paging.cursors.issue(binding, page.next)
        body = {
            "items": read(page.items),
            "total": page.total,
            "limit": self.limit,
            "offset": self.offset,
            "next_cursor": next_cursor,
        }
        return Response(_json(body), media_type="application/json")


class ProjectTaskFilters(_Listing):
    done: QueryBool | None = None
    priority: Priority | None = None
    q: Search | None = Field(None, description="Case-insensitive substring of title.")
    due_before: IsoDate | None = Field(None, description="Due strictly before.")
    due_after: IsoDate | None = Field(None, description="Due strictly after.")
    sort: TaskSort = Field(
        "-created_at", description="Field to sort by, `-` for descending; ties on id."
    )

    def query(
        self,
        paging: Paging,
        binding: dict[str, object],
        project_id: int | None = None,
    ) -> queries.TaskQuery:
        return queries.TaskQuery(
            done=self.done,
            project_id=project_id,
            priority=self.priority,
            q=self.q,
            due_before=self.due_before,
            due_after=self.due_after,
            **self._paged(paging, binding),
        )


class TaskFilters(ProjectTaskFilters):
    project_id: QueryId | None = None

    def query(
        self,
        paging: Paging,
        binding: dict[str, object],
        project_id: int | None = None,
    ) -> queries.TaskQuery:
        return super().query(paging, binding, project_id=self.project_id)


class ProjectFilters(_Listing):
    q: Search | None = Field(None, description="Case-insensitive substring of name.")
    archived: QueryBool | None = None
    sort: ProjectSort = Field(
        "-created_at", description="Field to sort by, `-` for descending; ties on id."
    )

    def query(self, paging: Paging, binding: dict[str, object]) -> queries.ProjectQuery:
        return queries.ProjectQuery(
            q=self.q, archived=self.archived, **self._paged(paging, binding)
        )


class ProblemError(BaseModel):
    field: str = Field(description="The input at fault, e.g. `title` or `limit`.")
    location: str | None = Field(None, description="body, query, path or header.")
    message: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str


class ValidationProblem(Problem):
    errors: list[ProblemError]
