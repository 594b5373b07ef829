"""Cursors open only in the listing they were issued for, whatever its values."""

import json
from datetime import UTC, date, datetime

import pytest
from fastapi.exceptions import RequestValidationError

from application.queries import Position
from entrypoints.http.cursors import Cursors

CURSORS = Cursors(b"a test secret")
LISTING = {
    "done": None,
    "q": "venue",
    "sort": "-created_at",
    "route": "tasks",
    "owner": 1,
}


@pytest.mark.parametrize(
    ("sort", "value"),
    [
        ("created_at", datetime(2026, 11, 23, 21, 17, 0, 123456, tzinfo=UTC)),
        ("updated_at", datetime(2026, 11, 23, 21, 17, tzinfo=UTC)),
        ("due_date", date(2026, 11, 23)),
        ("due_date", None),
        ("priority", 3),
        ("title", 'a "quoted" title, é and \u2028'),
    ],
)
def test_a_cursor_opens_at_the_position_it_was_issued_for(
    sort: str, value: object
) -> None:
    cursor = CURSORS.issue(LISTING, Position(value, 42))
    assert CURSORS.open(LISTING, sort, cursor) == Position(value, 42)


@pytest.mark.parametrize(
    "other",
    [
        LISTING | {"owner": 2},
        LISTING | {"q": "Venue"},
        LISTING | {"done": False},
    ],
)
def test_a_cursor_is_refused_by_another_listing(other: dict[str, object]) -> None:
    cursor = CURSORS.issue(LISTING, Position(3, 42))
    with pytest.raises(RequestValidationError):
        CURSORS.open(other, "priority", cursor)


def test_a_cursor_issued_before_orjson_wrote_them_still_opens() -> None:
    """Cursors outlive a deploy: those of the standard library's json open too."""
    moment = datetime(2026, 11, 23, 21, 17, 0, 123456, tzinfo=UTC)
    payload = json.dumps(
        [CURSORS._digest(LISTING), moment.isoformat(), 42],
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    cursor = CURSORS.seal(payload)
    assert CURSORS.open(LISTING, "created_at", cursor) == Position(moment, 42)
