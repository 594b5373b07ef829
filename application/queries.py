"""Plain values that describe a listing: filters, one sort key, a page window."""

from dataclasses import dataclass, field
from datetime import date
from typing import Final, Generic, Literal, TypeVar

from domain.errors import InvalidValue
from domain.values import Priority, unstorable

T = TypeVar("T")

TaskSortField = Literal[
    "id", "created_at", "updated_at", "due_date", "priority", "title"
]
ProjectSortField = Literal["id", "name", "created_at", "updated_at"]

TASK_SORT_FIELDS: Final[tuple[TaskSortField, ...]] = (
    "id",
    "created_at",
    "updated_at",
    "due_date",
    "priority",
    "title",
)
PROJECT_SORT_FIELDS: Final[tuple[ProjectSortField, ...]] = (
    "id",
    "name",
    "created_at",
    "updated_at",
)


@dataclass(frozen=True, slots=True)
class Window:
    """Which slice of the ordered results to return."""

    limit: int = 20
    offset: int = 0


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """Filters are ANDed; None means "any". Ties in `sort` break on id, same way.

    `q` is a case-insensitive substring of the title, matched literally.
    `due_before`/`due_after` are strict bounds and exclude tasks with no due date.
    Tasks with no due date sort after all dated ones ascending, first descending.
    """

    done: bool | None = None
    project_id: int | None = None
    priority: Priority | None = None
    q: str | None = None
    due_before: date | None = None
    due_after: date | None = None
    sort: TaskSortField = "created_at"
    descending: bool = True
    window: Window = field(default_factory=Window)

    def __post_init__(self) -> None:
        _check_search(self.q)


@dataclass(frozen=True, slots=True)
class ProjectQuery:
    """`q` is a case-insensitive substring of the name, matched literally."""

    q: str | None = None
    archived: bool | None = None
    sort: ProjectSortField = "created_at"
    descending: bool = True
    window: Window = field(default_factory=Window)

    def __post_init__(self) -> None:
        _check_search(self.q)


def _check_search(q: str | None) -> None:
    """Text no database can hold matches nothing alike everywhere: refuse it."""
    problem = None if q is None else unstorable(q)
    if problem is not None:
        raise InvalidValue("q", f"q {problem}.")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One window of a listing and the number of items across all windows."""

    items: list[T]
    total: int
