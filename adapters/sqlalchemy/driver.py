"""Read-only units of work run their statements on the driver's connection.

SQLAlchemy's session and connection spend several hundred µs of Python on each
statement (a greenlet switch, an execution context, the cursor adapter, result
objects): more than everything else a cheap request does. So a read-only unit of
work takes a connection from the engine's pool (its size, timeout, checkout check
and disposal stay the engine's) and runs each statement on the driver, asyncpg or
aiosqlite, itself. SQLAlchemy still builds and compiles each statement, once per
shape, cached by its cache key as the engine's own cache does, and its column
types still convert values both ways, so a read returns exactly what the session
would.

`DriverSession` stands in for the AsyncSession in the repositories' reads: its
`execute` returns the few result methods they use, and refuses anything but a
SELECT, as the read-only session does.
"""

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NoReturn

from sqlalchemy import exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from adapters.sqlalchemy.engine import NO_POOLER, PGBOUNCER_TRANSACTION

Processor = Callable[[Any], Any]

_READ_ONLY_ERROR: Final = "A read-only unit of work cannot write."


class _Compiled:
    """One statement shape compiled for one dialect, with its type conversions."""

    __slots__ = ("binds", "compiled", "results", "row", "sql")

    def __init__(self, statement: Any, key: Any, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect, cache_key=key)
        if compiled.literal_execute_params or compiled.post_compile_params:
            # IN (...) lists are expanded per execution; no read here uses one.
            raise NotImplementedError("A driver read cannot expand parameters.")
        self.compiled = compiled
        self.sql: str = compiled.string
        self.binds = [
            (name, _processor(compiled.binds[name].type, dialect, bind=True))
            for name in compiled.positiontup or ()
        ]
        columns = list(statement.selected_columns)
        self.row: Any = namedtuple("Row", [c.key for c in columns], rename=True)  # type: ignore[misc]
        results = [_processor(c.type, dialect, bind=False) for c in columns]
        self.results: list[Processor | None] | None = results if any(results) else None

    def values(self, key: Any, parameters: Mapping[str, Any] | None) -> list[Any]:
        given = self.compiled.construct_params(
            parameters, extracted_parameters=key.bindparams
        )
        return [
            given[name] if convert is None else convert(given[name])
            for name, convert in self.binds
        ]

    def rows(self, records: Sequence[Sequence[Any]]) -> list[Any]:
        make, results = self.row._make, self.results
        if results is None:
            return [make(record) for record in records]
        return [
            make(
                value if convert is None else convert(value)
                for convert, value in zip(results, record, strict=True)
            )
            for record in records
        ]


def _processor(type_: Any, dialect: Dialect, *, bind: bool) -> Processor | None:
    implementation = type_.dialect_impl(dialect)
    if bind:
        return implementation.bind_processor(dialect)  # type: ignore[no-any-return]
    return implementation.result_processor(dialect, None)  # type: ignore[no-any-return]


class DriverReads:
    """Per engine: the compiled statements, and a DriverSession per unit of work.

    Behind PgBouncer in transaction mode a unit's statements run in one READ ONLY
    transaction, with the statement timeout set in it (see adapters.sqlalchemy.
    engine); on SQLite in one deferred transaction, so that a page and its count
    see one snapshot and never wait for a writer. On PostgreSQL otherwise each
    statement runs on its own, as the read-only session's did.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        pooler: str = NO_POOLER,
        statement_timeout_ms: int = 0,
    ) -> None:
        self._pool = engine.sync_engine.pool
        self._dialect = engine.dialect
        self._compiled: dict[Any, _Compiled] = {}
        self.on_postgresql = engine.dialect.name == "postgresql"
        self.begin: str | None = None
        if not self.on_postgresql:
            self.begin = "BEGIN"
        elif pooler == PGBOUNCER_TRANSACTION:
            self.begin = "BEGIN READ ONLY"
            if statement_timeout_ms:
                self.begin += (
                    f"; SET LOCAL statement_timeout = {int(statement_timeout_ms)}"
                )

    def __call__(self) -> "DriverSession":
        return DriverSession(self)

    def compiled(self, statement: Any) -> tuple[_Compiled, Any]:
        key = statement._generate_cache_key()
        entry = self._compiled.get(key.key)
        if entry is None:
            entry = self._compiled[key.key] = _Compiled(statement, key, self._dialect)
        return entry, key

    async def checkout(self) -> PoolProxiedConnection:
        return await greenlet_spawn(self._pool.connect)


class DriverSession:
    """A read-only unit of work's connection: taken at its first statement,
    returned to the pool when the unit of work closes."""

    def __init__(self, reads: DriverReads) -> None:
        self._reads = reads
        self._pooled: PoolProxiedConnection | None = None
        self._discarded = False

    async def execute(
        self, statement: Any, parameters: Mapping[str, Any] | None = None
    ) -> "DriverResult":
        if not getattr(statement, "is_select", False):
            raise RuntimeError(_READ_ONLY_ERROR)
        compiled, key = self._reads.compiled(statement)
        values = compiled.values(key, parameters)
        records = await self._fetch(compiled.sql, values)
        return DriverResult(compiled.rows(records))

    async def connection(self) -> NoReturn:
        raise RuntimeError(_READ_ONLY_ERROR)

    async def commit(self) -> NoReturn:
        raise RuntimeError(_READ_ONLY_ERROR)

    async def close(self) -> None:
        pooled, self._pooled = self._pooled, None
        if pooled is None:
            return
        try:
            if self._reads.begin is not None and not self._discarded:
                await self._run(pooled, "ROLLBACK")
        finally:
            await greenlet_spawn(pooled.close)

    async def _fetch(self, sql: str, values: list[Any]) -> Sequence[Sequence[Any]]:
        pooled = self._pooled
        if pooled is None:
            try:
                pooled = await self._reads.checkout()
            except exc.SQLAlchemyError:  # the pool's timeout, say
                raise
            except Exception as error:
                raise _wrapped(None, error) from error
            self._pooled = pooled
            if self._reads.begin is not None:
                await self._run(pooled, self._reads.begin)
        driver = pooled.driver_connection
        try:
            if self._reads.on_postgresql:
                return await driver.fetch(sql, *values)  # type: ignore[no-any-return, union-attr]
            return await driver.execute_fetchall(sql, values)  # type: ignore[no-any-return, union-attr]
        except BaseException as error:
            self._discard(pooled)
            if isinstance(error, Exception):
                raise _wrapped(sql, error) from error
            raise

    async def _run(self, pooled: PoolProxiedConnection, sql: str) -> None:
        driver = pooled.driver_connection
        try:
            if self._reads.on_postgresql:
                await driver.execute(sql)  # type: ignore[union-attr]
            else:
                await driver.execute_fetchall(sql)  # type: ignore[union-attr]
        except BaseException as error:
            self._discard(pooled)
            if isinstance(error, Exception):
                raise _wrapped(sql, error) from error
            raise

    def _discard(self, pooled: PoolProxiedConnection) -> None:
        """After a failed statement (a lost server, a timeout, a cancelled
        request) the connection's state is unknown: it is closed, not reused."""
        self._discarded = True
        pooled.invalidate()


def _wrapped(sql: str | None, error: Exception) -> exc.DBAPIError:
    """The driver's error as SQLAlchemy's session would have raised it, so that
    callers tell an unavailable database from a bug by the same errors."""
    return exc.DBAPIError(sql, None, error, hide_parameters=True)


class DriverResult:
    """The part of SQLAlchemy's Result that the repositories' reads use."""

    __slots__ = ("_rows",)

    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def all(self) -> list[Any]:
        return self._rows

    def one_or_none(self) -> Any:
        if len(self._rows) > 1:
            raise exc.MultipleResultsFound(
                "Multiple rows were found when one or none was required"
            )
        return self._rows[0] if self._rows else None

    def scalar_one(self) -> Any:
        if len(self._rows) != 1:
            raise (exc.NoResultFound if not self._rows else exc.MultipleResultsFound)(
                "Exactly one row was required"
            )
        return self._rows[0][0]

    def scalar_one_or_none(self) -> Any:
        row = self.one_or_none()
        return None if row is None else row[0]
