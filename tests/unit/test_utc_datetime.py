"""UTCDateTime reads back, on SQLite, what it wrote: the same instant, in UTC."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import aiosqlite

from adapters.sqlalchemy.tables import UTCDateTime

SQLITE = aiosqlite.dialect()
TYPE = UTCDateTime().dialect_impl(SQLITE)
WRITE = TYPE.bind_processor(SQLITE)
READ = TYPE.result_processor(SQLITE, None)
# SQLAlchemy's own way, which the fast path must agree with.
GENERAL = sa.TypeDecorator.result_processor(TYPE, SQLITE, None)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 23, 21, 17, 0, 123456, tzinfo=UTC),
        datetime(2026, 11, 23, 21, 17, tzinfo=UTC),  # no microseconds
        datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(1, 1, 1, 5, 0, tzinfo=timezone(timedelta(hours=-4))),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_a_written_moment_reads_back_as_the_same_instant_in_utc(
    moment: datetime,
) -> None:
    stored = WRITE(moment)
    read = READ(stored)
    assert read == moment
    assert read.tzinfo is UTC
    assert read == GENERAL(stored)


@pytest.mark.parametrize(
    "text",
    ["2026-11-23", "2026-11-23 21:17:00", "2026-11-23 21:17:00.5"],
)
def test_text_the_bind_did_not_write_reads_as_sqlalchemy_reads_it(text: str) -> None:
    read = READ(text)
    assert read == GENERAL(text)
    assert read.tzinfo is UTC


def test_null_reads_as_none() -> None:
    assert READ(None) is None
