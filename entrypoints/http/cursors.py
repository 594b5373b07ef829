"""Opaque list cursors: a position in one listing, signed so that it cannot be
forged, and bound to the listing (owner, route, sort and filters) it came from.

A cursor is `base64url(payload).base64url(tag)`, the tag a truncated
HMAC-SHA256 of the payload. The payload is JSON, `[listing, value, id]`:
`listing` a digest of what the cursor is bound to, `value` and `id` the
position. It is signed, not encrypted: it shows the last item's sort value,
which its reader could see on the page anyway.
"""

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError

from application.queries import Position, SortValue
from domain.values import unstorable

INT64_MAX: Final = 2**63 - 1
_TAG_BYTES: Final = 16
_LISTING_CHARS: Final = 22
_TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if type(value) is not int or not low <= value <= high:
            raise ValueError
        return value

    return parse


_id = _int(0, INT64_MAX)


def _text(value: Any) -> SortValue:
    if not isinstance(value, str) or unstorable(value) is not None:
        raise ValueError
    return value


def _day(value: Any) -> SortValue:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError
    return date.fromisoformat(value)


def _moment(value: Any) -> SortValue:
    if not isinstance(value, str):
        raise ValueError
    moment = datetime.fromisoformat(value)
    if moment.utcoffset() is None:
        raise ValueError
    return moment.astimezone(UTC)  # OverflowError at the ends of time


# What each sort field's values must be, read back from a payload.
_VALUES: Final[Mapping[str, Callable[[Any], SortValue]]] = {
    "id": _id,
    "created_at": _moment,
    "updated_at": _moment,
    "due_date": _day,
    "priority": _int(1, 4),
    "title": _text,
    "name": _text,
}


def invalid_cursor(message: str, cursor: object = None) -> RequestValidationError:
    """A 422 naming the query parameter `cursor`, as a bad parameter gets."""
    error = {
        "type": "cursor_invalid",
        "loc": ("query", "cursor"),
        "msg": message,
        "input": cursor,
    }
    return RequestValidationError([error])


class Cursors:
    """Turns positions into cursors and cursors back into positions."""

    def __init__(self, secret: bytes) -> None:
        # A key of its own, should the secret ever sign anything else.
        self._key = hmac.new(secret, b"taskhub list cursors", hashlib.sha256).digest()

    def issue(self, listing: Mapping[str, object], position: Position) -> str:
        """A cursor for the items after `position` in `listing`."""
        # orjson writes dates and datetimes as ISO 8601, as _VALUES reads them,
        # in 0.2 µs; the standard library's dumps with arguments took 4.
        payload = orjson.dumps([self._digest(listing), position.value, position.id])
        return self.seal(payload)

    def seal(self, payload: bytes) -> str:
        """`payload` as a cursor: encoded and signed."""
        return f"{_encode(payload)}.{_encode(self._tag(payload))}"

    def open(self, listing: Mapping[str, object], sort: str, cursor: str) -> Position:
        """The position in `cursor`; a 422 unless this server issued it for
        the very same `listing`, sorted by `sort`."""
        payload = self._verified(cursor)
        try:
            digest, value, last_id = json.loads(payload)
        except (ValueError, TypeError, RecursionError):  # signed, so never: but no 500
            raise invalid_cursor("The cursor is malformed.", cursor) from None
        if digest != self._digest(listing):
            raise invalid_cursor(
                "The cursor belongs to a listing with another sort or other "
                "filters; repeat those of the request that returned it, or "
                "start again without a cursor.",
                cursor,
            )
        try:
            return Position(_VALUES[sort](value), _id(last_id))
        except (ValueError, TypeError, OverflowError):
            raise invalid_cursor("The cursor is malformed.", cursor) from None

    def _verified(self, cursor: str) -> bytes:
        if not _TOKEN.fullmatch(cursor):
            raise invalid_cursor("The cursor is not one this service issued.", cursor)
        encoded, tag = cursor.split(".")
        try:
            payload, tag_bytes = _decode(encoded), _decode(tag)
        except (binascii.Error, ValueError):
            raise invalid_cursor(
                "The cursor is not one this service issued.", cursor
            ) from None
        if not hmac.compare_digest(tag_bytes, self._tag(payload)):
            raise invalid_cursor(
                "The cursor is not one this service issued, or was altered.", cursor
            )
        return payload

    def _tag(self, payload: bytes) -> bytes:
        return hmac.digest(self._key, payload, "sha256")[:_TAG_BYTES]

    def _digest(self, listing: Mapping[str, object]) -> str:
        canonical = json.dumps(listing, sort_keys=True, default=str).encode()
        return _encode(hashlib.sha256(canonical).digest())[:_LISTING_CHARS]


@dataclass(frozen=True, slots=True)
class Paging:
    """What the list routes need besides a request's parameters; made once at
    start-up (see the app's lifespan)."""

    cursors: Cursors
    count_cap: int


def paging_of(request: Request) -> Paging:
    """The app's paging. Read in the route, not through a dependency: FastAPI's
    solving of one cost 17 µs a listing (106 -> 89 µs for a bare route)."""
    paging: Paging = request.app.state.paging
    return paging
