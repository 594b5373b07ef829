import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import ORMExecuteState, Session

# An execution option of the engine that read-only units of work use (SQLite).
_READ_ONLY: Final = "taskhub_read_only"

NO_POOLER: Final = "none"
# Seconds asyncpg waits beyond the statement timeout behind PgBouncer: the
# server's own timeout, with its clearer error, should fire first.
_CLIENT_TIMEOUT_MARGIN: Final = 1.0
PGBOUNCER_TRANSACTION: Final = "pgbouncer-transaction"
# How long a SQLite writer waits for another's write lock before it gives up.
SQLITE_BUSY_TIMEOUT_MS: Final = 5000


def create_engine(
    url: str,
    options: Mapping[str, Any] | None = None,
    *,
    pooler: str = NO_POOLER,
    statement_timeout_ms: int = 0,
    sqlite_synchronous: Literal["full", "normal"] = "full",
) -> AsyncEngine:
    """An engine for `url`; on SQLite, with the settings a concurrent server needs.

    PostgreSQL connections rest in autocommit. A unit of work that only reads then
    costs one round trip per statement, and the pool's pre-ping one round trip
    instead of three (BEGIN, ping, ROLLBACK); units of work that write open a
    READ COMMITTED transaction (see `create_session_factory`).

    With `pooler` "pgbouncer-transaction" every statement runs in a transaction
    instead, because PgBouncer may hand each transaction, and each statement
    outside one, another server connection (see `pooler_connect_args`); the
    statement timeout (which the caller otherwise sends as a startup setting) is
    then set with SET LOCAL at the start of each transaction.
    """
    options = dict(options or {})
    behind_pgbouncer = pooler == PGBOUNCER_TRANSACTION
    if make_url(url).get_backend_name() == "postgresql":
        level = "READ COMMITTED" if behind_pgbouncer else "AUTOCOMMIT"
        options.setdefault("isolation_level", level)
        if behind_pgbouncer:
            connect_args = dict(options.get("connect_args", {}))
            connect_args |= pooler_connect_args()
            if statement_timeout_ms:
                # The server's statement timeout starts only once a statement
                # reaches PostgreSQL. While PostgreSQL is down, PgBouncer holds
                # each statement in its queue instead (query_wait_timeout, two
                # minutes by default) and the request would hang that long:
                # asyncpg gives up on its own a little after the server would.
                connect_args["command_timeout"] = (
                    statement_timeout_ms / 1000 + _CLIENT_TIMEOUT_MARGIN
                )
            options["connect_args"] = connect_args
    elif make_url(url).get_backend_name() == "sqlite":
        # The driver runs cheap reads on the event loop's thread, not only in
        # aiosqlite's (adapters.sqlalchemy.driver); SQLAlchemy already says so
        # for a file's connections, and this says it for every one.
        connect_args = dict(options.get("connect_args", {}))
        connect_args.setdefault("check_same_thread", False)
        options["connect_args"] = connect_args
    engine = create_async_engine(url, **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_setup(sqlite_synchronous))
        event.listen(engine.sync_engine, "begin", _begin)
    if engine.dialect.driver == "asyncpg":
        event.listen(engine.sync_engine.pool, "checkout", _discard_if_closed)
        if behind_pgbouncer and statement_timeout_ms:
            event.listen(engine.sync_engine, "begin", _timeout(statement_timeout_ms))
    return engine


def pooler_connect_args() -> dict[str, Any]:
    """asyncpg's arguments for PgBouncer in transaction pooling mode.

    Prepared statements live in a server connection, and PgBouncer (before 1.21,
    or without max_prepared_statements) lets many clients take turns on each:
    a statement a client cached is missing on the next server connection it gets,
    and the names asyncpg counts up per process (__asyncpg_stmt_1__...) clash
    with those another process left there. So nothing is cached, and every
    statement gets a name no other process uses.
    """
    return {
        "statement_cache_size": 0,
        "prepared_statement_cache_size": 0,
        "prepared_statement_name_func": _unique_statement_name,
    }


def _unique_statement_name() -> str:
    return f"__taskhub_{uuid.uuid4().hex}__"


def _timeout(milliseconds: int) -> Any:
    statement = f"SET LOCAL statement_timeout = {int(milliseconds)}"

    def set_timeout(connection: Connection) -> None:
        # LOCAL: it ends with the transaction, so it never stays behind on a
        # server connection that PgBouncer then hands to another client.
        connection.exec_driver_sql(statement)

    return set_timeout


def _discard_if_closed(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Hand out no connection the server has closed (a restart, a failover, an
    idle timeout): the pool discards it and checks out another.

    asyncpg notices a close as soon as the server's goodbye or the socket's end
    arrives, so asking it costs nothing; SQLAlchemy's pool_pre_ping would ask the
    server instead, a round trip on every checkout: a tenth of a cheap request.
    A connection that died without a word (a cut network) fails its request with
    a 503 instead, and the error invalidates the rest of the pool.
    """
    if record.driver_connection.is_closed():
        raise exc.DisconnectionError("The server closed this pooled connection.")


def create_session_factory(
    engine: AsyncEngine, *, read_only: bool = False, pooler: str = NO_POOLER
) -> async_sessionmaker[AsyncSession]:
    """Sessions whose transactions can write, or, with `read_only`, only read.

    Read-only sessions run each statement on its own on PostgreSQL (autocommit,
    so no BEGIN and ROLLBACK round trips), and in a deferred transaction on
    SQLite, which does not take the database's write lock. Behind PgBouncer in
    transaction mode they run in a READ ONLY transaction: a statement is prepared
    and then executed, and only a transaction keeps both on one server connection.
    """
    if engine.dialect.name == "postgresql" and pooler == PGBOUNCER_TRANSACTION:
        bind = engine.execution_options(
            isolation_level="READ COMMITTED", postgresql_readonly=read_only
        )
    elif engine.dialect.name == "postgresql":
        level = "AUTOCOMMIT" if read_only else "READ COMMITTED"
        bind = engine.execution_options(isolation_level=level)
    else:
        bind = engine.execution_options(**{_READ_ONLY: read_only})
    session_class = _ReadOnlySession if read_only else Session
    return async_sessionmaker(
        bind, expire_on_commit=False, sync_session_class=session_class
    )


class _ReadOnlySession(Session):
    """Refuses to write: in autocommit, a write would commit at once."""


@event.listens_for(_ReadOnlySession, "do_orm_execute")
def _refuse_writes(state: ORMExecuteState) -> None:
    if not state.is_select:
        raise RuntimeError("A read-only unit of work cannot write.")


def _sqlite_setup(synchronous: Literal["full", "normal"]) -> Callable[[Any, Any], None]:
    def configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    return configure_sqlite


def _begin(connection: Connection) -> None:
    if connection.get_execution_options().get(_READ_ONLY):
        # Reads see one snapshot and, in WAL mode, never wait for a writer.
        connection.exec_driver_sql("BEGIN")
    else:
        # Take the write lock up front: a transaction that reads and then writes
        # can then wait for another writer instead of failing "database is locked".
        connection.exec_driver_sql("BEGIN IMMEDIATE")
