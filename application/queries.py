"""Plain values that describe a listing: filters, one sort key, a page window,
where to resume (a position), and how hard to try for the total."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
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


# Counting every match costs a scan of all of them: by default a listing counts
# up to this many and beyond says only "more" (a total of None).
COUNT_CAP: Final = 1_000

# What a sort field holds: ids and priority ranks are ints, titles and names
# their casefolded keys, due dates dates (or None), timestamps aware datetimes.
SortValue = int | str | date | datetime | None


@dataclass(frozen=True, slots=True)
class Position:
    """A place in one ordering: just after the item with this sort value and id.

    Resuming from a position rather than skipping an offset costs the same on
    every page, and rows added or removed meanwhile shift nothing.
    """

    value: SortValue
    id: int


@dataclass(frozen=True, slots=True)
class Window:
    """Which slice of the ordered results to return."""

    limit: int = 20
    offset: int = 0


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """Filters are ANDed; None means "any". Ties in `sort` break on id, same way.

    The page starts `window.offset` items after `after` (the ordering's start
    when None). `count_up_to` bounds the count behind the page's total: see
    `settle_total`; None counts every match, whatever it costs.

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
    after: Position | None = None
    count_up_to: int | None = COUNT_CAP

    def __post_init__(self) -> None:
        _check_search(self.q)


@dataclass(frozen=True, slots=True)
class ProjectQuery:
    """`q` is a case-insensitive substring of the name, matched literally.

    `after` and `count_up_to` as for TaskQuery.
    """

    q: str | None = None
    archived: bool | None = None
    sort: ProjectSortField = "created_at"
    descending: bool = True
    window: Window = field(default_factory=Window)
    after: Position | None = None
    count_up_to: int | None = COUNT_CAP

    def __post_init__(self) -> None:
        _check_search(self.q)


def _check_search(q: str | None) -> None:
    """Text no database can hold matches nothing alike everywhere: refuse it."""
    problem = None if q is None else unstorable(q)
    if problem is not None:
        raise InvalidValue("q", f"q {problem}.")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One window of a listing, how many items match in all (None when that is
    not known: see `settle_total`), and the position after the window's last
    item when more items follow (else None)."""

    items: list[T]
    total: int | None
    next: Position | None = None


async def settle_total(
    query: TaskQuery | ProjectQuery,
    on_page: int,
    more: bool,
    count: Callable[[int | None], Awaitable[int]],
) -> int | None:
    """The total a page of `query` reports, having seen `on_page` items (and
    whether `more` follow); every adapter decides it here, so all agree.

    A page at an offset that ends the listing tells the total by itself. Else
    `count(bound)` counts the matches, stopping after `bound` of them when it is
    not None: above `count_up_to` the total is None, and a page resumed from a
    position is not counted at all, unless `count_up_to` is None (exact).
    """
    cap = query.count_up_to
    offset = query.window.offset
    if query.after is None and not more and (on_page or not offset):
        return offset + on_page
    if cap is not None and query.after is not None:
        return None
    # Items on the page prove that at least offset + on_page (+ 1) match.
    if cap is not None and on_page and offset + on_page + more > cap:
        return None
    matches = await count(None if cap is None else cap + 1)
    return None if cap is not None and matches > cap else matches
