"""Which errors mean the database is down or overloaded, rather than a bug."""

import sqlite3
from functools import cache

from sqlalchemy import exc


@cache
def _unavailable_errors() -> tuple[type[BaseException], ...]:
    import asyncpg.exceptions as pg  # type: ignore[import-untyped]

    return (
        OSError,  # refused, reset, unreachable, connect timeout
        sqlite3.OperationalError,  # database is locked or busy
        exc.OperationalError,
        exc.TimeoutError,  # no pooled connection came free in time
        pg.PostgresConnectionError,
        pg.OperatorInterventionError,  # statement timeout, shutdown, starting up
        pg.InsufficientResourcesError,  # too many connections, disk full
    )


def database_unavailable(error: BaseException) -> bool:
    """Is `error` the database being unreachable, down, overloaded or too slow,
    rather than a bug? Then the request may succeed if retried a little later."""
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    unavailable = _unavailable_errors()
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, unavailable):
            return True
        seen.add(id(current))
        if isinstance(current, exc.DBAPIError) and current.orig is not None:
            current = current.orig
        else:
            current = current.__cause__ or current.__context__
    return False
