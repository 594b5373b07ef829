"""Value objects and the text rules shared by tasks and projects."""

import enum
from datetime import datetime
from typing import Final

from domain.errors import InvalidValue

DESCRIPTION_MAX = 5000


class Unset(enum.Enum):
    """Marks a field a partial update leaves alone (distinct from an explicit None)."""

    UNSET = enum.auto()

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.UNSET


class Priority(enum.Enum):
    """How urgent a task is; `rank` orders them low < normal < high < urgent."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    @classmethod
    def from_rank(cls, rank: int) -> "Priority":
        return _BY_RANK[rank]


_RANKS: Final = {priority: rank for rank, priority in enumerate(Priority, start=1)}
_BY_RANK: Final = {rank: priority for priority, rank in _RANKS.items()}


def unstorable(value: str) -> str | None:
    """Why no database could store `value` (NUL, lone surrogates), or None."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text"
    return None


def clean_text(field: str, value: str, *, min_length: int, max_length: int) -> str:
    """Trim `value` and check its length in characters, after trimming."""
    problem = unstorable(value)
    if problem is not None:
        raise InvalidValue(field, f"{field} {problem}.")
    text = value.strip()
    if not min_length <= len(text) <= max_length:
        raise InvalidValue(
            field, f"{field} must be {min_length}–{max_length} characters long."
        )
    return text


def clean_description(value: str | None) -> str | None:
    """A description is optional free text of at most DESCRIPTION_MAX characters."""
    if value is None:
        return None
    return clean_text("description", value, min_length=0, max_length=DESCRIPTION_MAX)


def check_history(
    created_at: datetime,
    updated_at: datetime,
    version: int,
) -> None:
    """What any stored entity's bookkeeping obeys, wherever it comes from."""
    for field, moment in (("created_at", created_at), ("updated_at", updated_at)):
        check_moment(field, moment)
    if updated_at < created_at:
        raise InvalidValue("updated_at", "updated_at must not be before created_at.")
    if version < 1:
        raise InvalidValue("version", "version must be 1 or more.")


def check_moment(field: str, moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidValue(field, f"{field} must say its time zone (UTC).")


def search_key(text: str) -> str:
    """The form names and titles are compared, searched and sorted in."""
    return text.casefold()
