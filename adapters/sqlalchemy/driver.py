"""Units of work of tasks, projects and tokens, and the idempotency store, run
their statements on the driver.

SQLAlchemy's session and connection spend several hundred µs of Python on each
statement (a greenlet switch, an execution context, the cursor adapter, result
objects): more than everything else a cheap request does. So these units of work
take a connection from the engine's pool (its size, timeout, checkout check and
disposal stay the engine's) and run each statement on the driver, asyncpg or
aiosqlite, itself. SQLAlchemy still builds and compiles each statement, once per
shape, cached by its cache key as the engine's own cache does, and its column
types still convert values both ways, so a statement returns exactly what the
session would, and fails with the same SQLAlchemy errors.

Transactions (the sessions', see adapters.sqlalchemy.engine, except on SQLite):
- a read-only unit runs each statement on its own (autocommit), so it costs no
  BEGIN and ROLLBACK round trips (on SQLite, thread hops); a page and its count
  are then two statements, as they are on PostgreSQL. In WAL mode a SQLite
  reader never waits for a writer;
- a writing one runs in READ COMMITTED on PostgreSQL, and in BEGIN IMMEDIATE
  on SQLite (the write lock up front). SQLite lets one writer in at a time, and
  one that finds the lock taken sleeps in its thread and tries again (the busy
  timeout), up to 100 ms a sleep, however soon the lock is free: under
  concurrent writes most of the time went to sleeping, and a writer could miss
  its turn for seconds. So a process's writers first queue, in order, for
  their turn (`Driver.writer_turn`), and take a connection only then; the busy
  timeout is left for writers of other processes. Each statement is one hop to
  aiosqlite's thread, the first with the transaction's BEGIN. Writers that
  queue while one writes then share its transaction, each in a savepoint of
  its own, and one COMMIT (`_Group`): each COMMIT waits for an fsync, and
  with one per writer, creates were bound by the disk (1,900 a second against
  5,300 with group commit, 32 clients, bench/README);
- behind PgBouncer in transaction mode every unit runs in a transaction (READ
  ONLY for reads) that sets its statement timeout.

SQLite's reads run on the event loop's own thread when they are cheap. A hop to
aiosqlite's thread and back cost more CPU than most of the reads themselves (a
first page with its count of up to 1,001 rows takes SQLite about 85 µs, the hop
around it over 200: a queue, a wake-up of the loop, and the GIL passed back and
forth for every row), and a server on one core pays for both. So a read-only
unit's statement (autocommit, so it takes no lock, and in WAL mode waits for no
writer) first runs here, with a budget of SQLite's virtual machine instructions
(`_INLINE_BUDGET`, 0.2 to 1 ms here): one that runs past it is interrupted and
runs again in the thread, where a long search or a deep offset blocks no other
request. Such a read spends the budget in vain, a few tenths of its own time;
remembering which statements ran long would send the first pages that share a
deep offset's statement to the thread as well. A writing unit's SELECTs run
here too, within the budget (interrupting a SELECT leaves its transaction as it
was), and so do its INSERTs, UPDATEs and DELETEs of one row by its key
(`ONE_ROW`, as the repositories mark theirs), whole: one row is bounded work,
while an interrupted write would roll back its whole transaction, so any other
write runs in the thread. The BEGIN IMMEDIATE that goes with a unit's first
statement runs here too if SQLite's lock is free: it runs with no busy timeout,
and one that finds the lock taken (by another process) waits for it in the
thread. COMMIT runs in the thread: it waits for the disk. A create or a PATCH
then holds the lock across one hop, not two or three.

`DriverSession` stands in for the AsyncSession in the repositories: `execute`
returns the few result methods they use.
"""

import asyncio
import sqlite3
from collections import namedtuple
from collections.abc import Callable, Coroutine, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, Final, NoReturn, TypeVar

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import event, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection, QueuePool
from sqlalchemy.util import LRUCache, greenlet_spawn
from sqlalchemy.util.concurrency import in_greenlet

from adapters.sqlalchemy.engine import (
    NO_POOLER,
    PGBOUNCER_TRANSACTION,
    SQLITE_BUSY_TIMEOUT_MS,
)

T = TypeVar("T")
Processor = Callable[[Any], Any]
# What `DriverSession._on_sqlite` runs in aiosqlite's thread.
SqliteWork = Callable[[sqlite3.Connection, str, Any], T]
# Told each statement before it runs: its SQL, dialect and execution options.
Observer = Callable[[str, str, Mapping[str, Any]], None]

_READ_ONLY_ERROR: Final = "A read-only unit of work cannot write."
_COMPILED_SHAPES: Final = 500  # create_engine's query_cache_size default
# SQLite's reads on the loop's thread: how often SQLite asks whether to go on
# (in virtual machine instructions), and how many times it may.
_INLINE_STEP: Final = 1_000
_INLINE_BUDGET: Final = 20  # 20,000 instructions: a first page takes about 10,000
# How a statement may run on the loop's thread (`DriverSession._on_sqlite`).
_WITHIN_BUDGET: Final = "within the budget"
_WHOLE: Final = "whole"
# SQLite's writers that may share one transaction (`_Group`), at most.
_GROUP_LIMIT: Final = 64
_MEMBER: Final = "taskhub_member"  # the savepoint of a group's member
ONE_ROW: Final = "taskhub_one_row"
"""An execution option: the statement writes one row, found by its key, so on
SQLite it may run whole on the event loop's thread (see the module's docstring)."""


class Held:
    """One request's connection, kept between its units of work (`Driver.hold`).

    A unit of work that ends leaves its connection here instead of in the pool,
    and the request's next one takes it from here: a request whose token is read
    before its task takes one connection from the pool, not two. Only one
    connection is kept, and only an idle one (its transaction ended, still
    valid), so units of work running side by side each have their own, as
    before. `release` returns it to the pool; after that, nothing is kept.
    """

    __slots__ = ("_driver", "_reset", "idle", "open")

    def __init__(self, driver: "Driver") -> None:
        self._driver = driver
        self.idle: PoolProxiedConnection | None = None
        self.open = True
        self._reset = _HELD.set(self)

    def take(self, driver: "Driver") -> PoolProxiedConnection | None:
        idle = self.idle
        if idle is None or driver is not self._driver:
            return None
        self.idle = None
        return idle

    def keep(self, driver: "Driver", pooled: PoolProxiedConnection) -> bool:
        if not self.open or self.idle is not None or driver is not self._driver:
            return False
        self.idle = pooled
        return True

    async def release(self) -> None:
        """Return the kept connection to the pool, and keep none from now on."""
        self.open = False
        idle, self.idle = self.idle, None
        if idle is not None:
            await self._driver.checkin(idle)

    async def end(self) -> None:
        """Release, and stop being the context's (in the context that held)."""
        try:
            await self.release()
        finally:
            _HELD.reset(self._reset)


_HELD: ContextVar[Held | None] = ContextVar("taskhub_held_connection", default=None)


class _Compiled:
    """One statement shape compiled for one dialect, with its type conversions."""

    __slots__ = ("binds", "compiled", "conversions", "expanding", "row", "sql")

    def __init__(
        self,
        statement: Any,
        key: Any,
        dialect: Dialect,
        column_keys: tuple[str, ...] | None = None,
    ) -> None:
        keys = list(column_keys) if column_keys is not None else None
        compiled = statement.compile(dialect=dialect, cache_key=key, column_keys=keys)
        self.expanding = bool(
            compiled.literal_execute_params or compiled.post_compile_params
        )
        if self.expanding:
            # An IN (...) list, rendered as one parameter per value: compiled
            # for this execution alone, not cached.
            compiled = statement.compile(
                dialect=dialect,
                column_keys=keys,
                compile_kwargs={"render_postcompile": True},
            )
        self.compiled = compiled
        self.sql: str = compiled.string
        self.binds = [
            (name, _bind_processor(compiled, name, dialect))
            for name in compiled.positiontup or ()
        ]
        # A SELECT's columns, or an INSERT/UPDATE/DELETE's RETURNING ones.
        columns = list(statement.exported_columns)
        self.row: Any = None
        # The columns whose values the type converts, by position (asyncpg
        # gives most values as they are, timestamps aside).
        self.conversions: list[tuple[int, Processor]] = []
        if columns:
            self.row = namedtuple("Row", [c.key for c in columns], rename=True)  # type: ignore[misc]
            for position, column in enumerate(columns):
                convert = _processor(column.type, dialect, bind=False)
                if convert is not None:
                    self.conversions.append((position, convert))

    def values(self, key: Any, parameters: Mapping[str, Any] | None) -> list[Any]:
        extracted = None if self.expanding else key.bindparams
        given = self.compiled.construct_params(
            parameters, extracted_parameters=extracted
        )
        return [
            given[name] if convert is None else convert(given[name])
            for name, convert in self.binds
        ]

    def rows(self, records: Sequence[Sequence[Any]]) -> list[Any]:
        make, conversions = self.row._make, self.conversions
        if not conversions:
            return [make(record) for record in records]
        rows = []
        for record in records:
            # Converting only what needs it, in place: a third of the time of
            # a generator through every column (21 rows: 55 -> 19 µs).
            values = list(record)
            for position, convert in conversions:
                values[position] = convert(values[position])
            rows.append(make(values))
        return rows


def _bind_processor(compiled: Any, name: str, dialect: Dialect) -> Processor | None:
    bind = compiled.binds.get(name)
    if bind is None:  # one value of an expanded IN list: plain values only
        return None
    return _processor(bind.type, dialect, bind=True)


def _processor(type_: Any, dialect: Dialect, *, bind: bool) -> Processor | None:
    implementation = type_.dialect_impl(dialect)
    if bind:
        return implementation.bind_processor(dialect)  # type: ignore[no-any-return]
    return implementation.result_processor(dialect, None)  # type: ignore[no-any-return]


class Driver:
    """Per engine: the compiled statements, and a DriverSession per unit of work
    (`reads()` for a read-only one, `writes()` for one that may write)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        pooler: str = NO_POOLER,
        statement_timeout_ms: int = 0,
    ) -> None:
        self.pool = engine.sync_engine.pool
        # The pool, if `checkout` and `checkin` may use it without a greenlet:
        # not if it pings the server at every checkout (pre-ping) or recycles
        # old connections, which it closes gracefully, awaiting the server.
        self._direct: QueuePool | None = None
        if (
            isinstance(self.pool, QueuePool)
            and not getattr(self.pool, "_pre_ping", True)
            and getattr(self.pool, "_recycle", 0) < 0
        ):
            self._direct = self.pool
            event.listen(engine.sync_engine, "do_connect", _connect_in_a_greenlet)
        # Units of work wait for a connection here, in the order they came
        # (see `checkout`), as long as the pool would have them wait.
        self._turns: asyncio.Semaphore | None = None
        self._patience = 0.0
        if isinstance(self.pool, QueuePool):
            overflow = max(getattr(self.pool, "_max_overflow", 0), 0)
            self._turns = asyncio.Semaphore(self.pool.size() + overflow)
            self._patience = self.pool.timeout()
        self._dialect = engine.dialect
        # Shapes are few (filters, sorts, cursor stretches), but bounded anyway,
        # as the engine's own compiled cache is.
        self._compiled: LRUCache[Any, _Compiled] = LRUCache(_COMPILED_SHAPES)
        self._observers: list[Observer] = []
        self.on_postgresql = engine.dialect.name == "postgresql"
        self._read_begin: str | None = None  # autocommit
        self._write_begin = "BEGIN IMMEDIATE"
        # SQLite's writers of this process, in turn (see the module's docstring),
        # each waiting as long as the busy timeout would for the lock.
        self.writer_turn: asyncio.Lock | None = None
        self.writer_patience = SQLITE_BUSY_TIMEOUT_MS / 1000
        self.writers_waiting = 0  # for their turn
        self.group: _Group | None = None  # the transaction writers join
        self._background: set[asyncio.Future[None]] = set()
        if engine.dialect.name == "sqlite":
            self.writer_turn = asyncio.Lock()
        if self.on_postgresql:
            self._write_begin = "BEGIN ISOLATION LEVEL READ COMMITTED"
            if pooler == PGBOUNCER_TRANSACTION:
                timeout = int(statement_timeout_ms)
                local = f"; SET LOCAL statement_timeout = {timeout}" if timeout else ""
                self._read_begin = "BEGIN READ ONLY" + local
                self._write_begin += local

    def watch(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` on its own, keeping it until it ends."""
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def give_back(self, pooled: PoolProxiedConnection) -> None:
        """Keep `pooled` for this context's next unit of work (`hold`) if it
        may be kept, else return it to the pool."""
        held = _HELD.get()
        if held is None or not (pooled.is_valid and held.keep(self, pooled)):
            await self.checkin(pooled)

    def hold(self) -> Held:
        """Keep a connection for this context's units of work, one after
        another, until `Held.end` (see `Held`)."""
        return Held(self)

    def reads(self) -> "DriverSession":
        return DriverSession(self, self._read_begin, writes=False)

    def writes(self) -> "DriverSession":
        return DriverSession(self, self._write_begin, writes=True)

    def observe(self, observer: Observer) -> Callable[[], None]:
        """Tell `observer` of every statement from now on (as SQLAlchemy's
        before_cursor_execute event does for a session's); returns the call
        that stops it."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer)

    def compiled(
        self, statement: Any, column_keys: tuple[str, ...] | None = None
    ) -> tuple[_Compiled, Any]:
        key = statement._generate_cache_key()
        entry = self._compiled.get((key.key, column_keys))
        if entry is None:
            entry = _Compiled(statement, key, self._dialect, column_keys)
            if not entry.expanding:
                self._compiled[key.key, column_keys] = entry
        for observer in self._observers:
            options = statement.get_execution_options()
            observer(entry.sql, self._dialect.name, options)
        return entry, key

    async def checkout(self) -> PoolProxiedConnection:
        """A connection from the pool, without a greenlet when one is idle.

        The pool is synchronous code that awaits the driver, where it must,
        inside a greenlet (`greenlet_spawn`), and two greenlets a unit of work
        cost more than the pool's own work. Handing out an idle connection
        awaits nothing, so it runs here directly (see `_direct`). An idle one
        that must be reopened first (after an invalidation) is closed outright
        and put back, no connection opened (`_connect_in_a_greenlet`); then, as
        when it must wait for a connection or open one, the pool runs in a
        greenlet.
        """
        await self._wait_for_a_turn()
        try:
            direct = self._direct
            if direct is not None and direct.checkedin():
                try:
                    return direct.connect()
                except exc.MissingGreenlet:
                    pass
            return await greenlet_spawn(self.pool.connect)
        except BaseException:
            self._turn_over()
            raise

    async def checkin(self, pooled: PoolProxiedConnection) -> None:
        """Return a connection whose transaction has ended (see `checkout`).

        No transaction is left open (reads run in autocommit, and a connection
        whose ROLLBACK failed was invalidated), so the pool need not roll back
        again: as SQLAlchemy's Connection does, say so. On SQLite that saves a
        hop to aiosqlite's thread per unit of work. Taking a connection back
        awaits nothing either, unless the pool has overflowed: then it closes
        the connection, in a greenlet.
        """
        try:
            direct = self._direct
            if direct is not None and direct.overflow() <= 0:
                pooled._close_special(transaction_reset=True)
            else:
                await greenlet_spawn(pooled._close_special, transaction_reset=True)
        finally:
            self._turn_over()

    async def _wait_for_a_turn(self) -> None:
        """Wait, in order, until the pool has a connection for this one.

        The pool's own queue lets a newcomer take a connection that was just
        returned while the unit of work woken for it has yet to run, which
        then waits again, behind later ones: under steady load a few waited
        out the pool's timeout (503) while others went through. Semaphores
        hand a released turn to the first in line.
        """
        turns = self._turns
        if turns is None:
            return
        if not turns.locked():
            await turns.acquire()  # at once, without a timer
            return
        await _wait_in_line(
            turns,
            self._patience,
            f"No pooled connection came free within {self._patience:g} s.",
        )

    def _turn_over(self) -> None:
        if self._turns is not None:
            self._turns.release()


async def _wait_in_line(
    line: asyncio.Lock | asyncio.Semaphore, patience: float, refusal: str
) -> None:
    """Acquire `line` within `patience` seconds, else fail as the pool's
    timeout does (the outage mapping answers 503)."""
    try:
        async with asyncio.timeout(patience):
            await line.acquire()
    except TimeoutError as error:
        raise exc.TimeoutError(refusal) from error


def _connect_in_a_greenlet(*_: Any) -> None:
    """Refuse, before it starts, a connect that could not await the driver.

    Without it the driver's connect coroutine would be made and then dropped
    unawaited (a RuntimeWarning) when `Driver.checkout` finds that the idle
    connection it takes must be reopened.
    """
    if not in_greenlet():
        raise exc.MissingGreenlet("Connecting awaits the driver: in a greenlet.")


class _Group:
    """SQLite writers of this process that share one transaction (group commit).

    The first writer to take its turn checks out a connection and begins the
    transaction; each writer's statements run in a savepoint of it, which its
    commit releases and its rollback undoes. A writer that ends while others
    wait for their turn hands the turn, and the transaction, to the next one;
    one that commits then waits for the transaction's COMMIT. The writer that
    ends with nobody waiting (or the `_GROUP_LIMIT`th) commits it, for all of
    them: one COMMIT, one fsync, for every writer that queued meanwhile.
    """

    __slots__ = ("committed", "members", "pooled", "watched", "wrote")

    def __init__(self, pooled: PoolProxiedConnection) -> None:
        self.pooled = pooled
        self.members = 0
        self.wrote = False  # a member committed its savepoint
        self.watched = False  # `_end_abandoned` will see that it ends
        self.committed: asyncio.Future[None] = (
            asyncio.get_running_loop().create_future()
        )

    def failed(self, error: BaseException) -> None:
        if not self.committed.done():
            self.committed.set_exception(error)
            self.committed.exception()  # retrieved, whether or not one waits


class DriverSession:
    """A unit of work's connection and transaction: the connection is taken and
    the transaction begun at its first statement; `close` rolls back what was
    not committed and returns the connection to the pool."""

    def __init__(self, driver: Driver, begin: str | None, *, writes: bool) -> None:
        self._driver = driver
        self._begin = begin
        self._writes = writes
        self._pooled: PoolProxiedConnection | None = None
        self._in_transaction = False
        # On SQLite, the BEGIN (or a group's savepoint) that goes to aiosqlite's
        # thread with the next statement (see `_on_sqlite`).
        self._unbegun: tuple[str, ...] | None = None
        self._has_turn = False  # of the process's SQLite writers
        self._group: _Group | None = None  # a SQLite writer's shared transaction

    @property
    def on_postgresql(self) -> bool:
        return self._driver.on_postgresql

    async def execute(
        self,
        statement: Any,
        parameters: Mapping[str, Any] | list[dict[str, Any]] | None = None,
    ) -> "DriverResult":
        """Run `statement`; with a list of parameters, once for each (no rows)."""
        if not (self._writes or getattr(statement, "is_select", False)):
            raise RuntimeError(_READ_ONLY_ERROR)
        if isinstance(parameters, list):  # not Sequence: an ABC check costs
            await self._execute_many(statement, parameters)
            return DriverResult([], rowcount=len(parameters))
        compiled, key = self._driver.compiled(statement)
        values = compiled.values(key, parameters)
        driver = await self._connection()
        if not self._driver.on_postgresql:
            here = _WITHIN_BUDGET if getattr(statement, "is_select", False) else None
            if here is None and statement.get_execution_options().get(ONE_ROW):
                here = _WHOLE
            if compiled.row is None:
                rowcount = await self._on_sqlite(
                    driver, _rowcount, compiled.sql, values, here=here
                )
                return DriverResult([], rowcount=rowcount)
            records = await self._on_sqlite(
                driver, _fetchall, compiled.sql, values, here=here
            )
            return DriverResult(compiled.rows(records))
        try:
            if compiled.row is not None:
                records = await driver.fetch(compiled.sql, *values)
                return DriverResult(compiled.rows(records))
            status: str = await driver.execute(compiled.sql, *values)
            return DriverResult([], rowcount=int(status.rpartition(" ")[2]))
        except BaseException as error:
            self._fail(compiled.sql, error)

    async def _execute_many(
        self, statement: Any, parameters: list[dict[str, Any]]
    ) -> None:
        if not parameters:
            return
        compiled, key = self._driver.compiled(statement, tuple(parameters[0]))
        values = [compiled.values(key, each) for each in parameters]
        driver = await self._connection()
        if not self._driver.on_postgresql:
            await self._on_sqlite(driver, _executemany, compiled.sql, values)
            return
        try:
            await driver.executemany(compiled.sql, values)
        except BaseException as error:
            self._fail(compiled.sql, error)

    async def driver_connection(self) -> Any:
        """The driver's connection, in this unit of work's transaction (COPY)."""
        if not self._writes:
            raise RuntimeError(_READ_ONLY_ERROR)
        driver = await self._connection()
        if self._unbegun is not None:  # the caller's statements go to the driver
            begin, self._unbegun = self._unbegun, None
            for sql in begin:
                await self._run(sql)
            self._in_transaction = True
        return driver

    async def commit(self) -> None:
        if not self._writes:
            raise RuntimeError(_READ_ONLY_ERROR)
        if self._group is not None:
            await self._leave_group(self._group, commit=True)
            return
        try:
            if self._in_transaction:
                await self._run("COMMIT")
        finally:
            self._ended()  # also a BEGIN no statement went with: nothing to commit

    async def close(self) -> None:
        if self._group is not None:
            await self._leave_group(self._group, commit=False)
            return
        pooled = self._pooled
        try:
            if pooled is not None and self._in_transaction:
                await self._run("ROLLBACK")
        finally:
            self._ended()
            if pooled is not None:
                self._pooled = None
                await self._driver.give_back(pooled)

    async def _connection(self) -> Any:
        # The first statement, or the first after a commit, begins a transaction;
        # on SQLite, with the statement (`_on_sqlite`).
        begin = None if self._in_transaction else self._begin
        if begin is not None:
            await self._take_turn()
        try:
            if begin is not None and self._has_turn:  # a SQLite writer
                self._unbegun = await self._join_group()
            elif self._pooled is None:
                self._pooled = await self._checkout()
            if begin is not None and not self._driver.on_postgresql:
                self._unbegun = self._unbegun or (begin,)
            elif begin is not None:
                await self._run(begin)
                self._in_transaction = True
        except BaseException:
            self._ended()
            raise
        assert self._pooled is not None
        return self._pooled.driver_connection

    async def _on_sqlite(
        self,
        driver: Any,
        work: SqliteWork[T],
        sql: str,
        values: Any,
        *,
        here: str | None = None,
    ) -> T:
        """`work(connection, sql, values)` in aiosqlite's thread, after the
        transaction's BEGIN if it is still to be sent: one hop to the thread.
        A SELECT (`here` _WITHIN_BUDGET) first tries on this thread, within
        the budget, and a write of one row (_WHOLE) runs here whole (see the
        module's docstring); so does a BEGIN before either, if it can take
        SQLite's lock without waiting.

        aiosqlite's own calls take a hop each (and a cursor's close another):
        a create's BEGIN, INSERT and COMMIT were three, and a writer holds the
        process's turn, and SQLite's lock, across each hop's wait for the event
        loop. `_execute` (run a function in the connection's thread) and
        `_conn` (its sqlite3 connection) are aiosqlite's private parts, pinned
        by the lock file.
        """
        begin, self._unbegun = self._unbegun, None
        if here is not None:
            try:
                if begin is not None and _begin_at_once(driver._conn, begin):
                    begin, self._in_transaction = None, True
                if begin is None and here is _WHOLE:
                    return work(driver._conn, sql, values)
                if begin is None:
                    return _within_budget(driver._conn, work, sql, values)
            except _OverBudget:
                pass  # to the thread, below
            except BaseException as error:
                self._fail(sql, error)
        try:
            result: T = await driver._execute(
                _run_after, driver._conn, begin, work, sql, values
            )
        except BaseException as error:
            if begin is not None:  # a statement that failed after its BEGIN
                self._in_transaction = driver.in_transaction
            self._fail(sql, error)
        if begin is not None:
            self._in_transaction = True
        return result

    async def _checkout(self) -> PoolProxiedConnection:
        held = _HELD.get()
        if held is not None:
            kept = held.take(self._driver)
            if kept is not None:
                return kept
        try:
            return await self._driver.checkout()
        except exc.SQLAlchemyError:  # the pool's timeout, say
            raise
        except Exception as error:
            raise _wrapped(None, error) from error

    async def _take_turn(self) -> None:
        """Wait for this process's other SQLite writers to finish."""
        turn = self._driver.writer_turn
        if turn is None or not self._writes or self._has_turn:
            return
        held = _HELD.get()
        kept = None if held is None else held.take(self._driver)
        if kept is not None:  # a writer waits for its turn without a connection
            await self._driver.checkin(kept)
        patience = self._driver.writer_patience
        self._driver.writers_waiting += 1
        try:
            await _wait_in_line(
                turn,
                patience,
                f"Other writers held the SQLite database for over {patience:g} s.",
            )
        except BaseException:
            group = self._driver.group
            if group is not None and not group.watched:
                # Perhaps handed to this writer, which gave up: see it ends.
                group.watched = True
                self._driver.watch(_end_abandoned(self._driver, group))
            raise
        finally:
            self._driver.writers_waiting -= 1
        self._has_turn = True

    async def _join_group(self) -> tuple[str, ...]:
        """Take this turn's connection: the open group's, else a new group's.
        Returns what begins this writer's part (`_Group`)."""
        driver = self._driver
        savepoint = f"SAVEPOINT {_MEMBER}"
        group = driver.group
        if group is None:
            group = _Group(await self._checkout())
            driver.group = group
        group.members += 1
        self._group, self._pooled = group, group.pooled
        if group.members == 1:
            return (self._begin or "BEGIN IMMEDIATE", savepoint)
        return (savepoint,)

    async def _leave_group(self, group: _Group, *, commit: bool) -> None:
        """End this writer's part of `group`: release its savepoint (`commit`),
        or roll back to it; then hand the turn on, or end the group."""
        self._group = self._pooled = None
        self._unbegun = None
        wrote = self._in_transaction  # its savepoint is open
        self._in_transaction = False
        if wrote:
            connection = group.pooled.driver_connection._conn  # type: ignore[union-attr]
            try:
                if commit:
                    connection.execute(f"RELEASE {_MEMBER}")
                    group.wrote = True
                else:
                    connection.execute(f"ROLLBACK TO {_MEMBER}")
                    connection.execute(f"RELEASE {_MEMBER}")
            except BaseException as error:
                await self._lose(group, "RELEASE" if commit else "ROLLBACK TO", error)
        driver = self._driver
        if driver.writers_waiting and group.members < _GROUP_LIMIT:
            self._ended()  # the next writer joins the group
            if commit and wrote:
                await asyncio.shield(group.committed)
            return
        self._has_turn = False  # `_end`, below, hands it on
        if group.members == 1:  # nobody else to answer to
            await _end(driver, group)
        else:
            await asyncio.shield(_end(driver, group))

    async def _lose(self, group: _Group, sql: str, error: BaseException) -> NoReturn:
        """`group`'s transaction broke under this writer: fail it, and return
        its connection, closed."""
        self._driver.group = None
        raised = _raised(sql, error)
        group.failed(raised)
        group.pooled.invalidate()
        self._ended()
        await self._driver.checkin(group.pooled)
        _raise(raised, error)

    def _ended(self) -> None:
        """The transaction is over: the next writer may go."""
        self._in_transaction = False
        self._unbegun = None
        if self._has_turn:
            self._has_turn = False
            assert self._driver.writer_turn is not None
            self._driver.writer_turn.release()

    async def _run(self, sql: str) -> None:
        assert self._pooled is not None
        driver = self._pooled.driver_connection
        try:
            if self._driver.on_postgresql:
                await driver.execute(sql)  # type: ignore[union-attr]
            else:
                await driver.execute_fetchall(sql)  # type: ignore[union-attr]
        except BaseException as error:
            self._fail(sql, error)

    def _fail(self, sql: str, error: BaseException) -> NoReturn:
        """Raise what `error`, which `sql` met, means to the repositories.

        A broken constraint leaves the transaction usable, for a rollback.
        Anything else (a lost server, a timeout, a cancelled request) leaves the
        connection in a state unknown: it is closed rather than reused.
        """
        if _integrity_error(error):
            assert isinstance(error, Exception)
            raise exc.IntegrityError(sql, None, error, hide_parameters=True) from error
        raised = _raised(sql, error)
        if self._group is not None:  # the shared transaction is lost
            group, self._group = self._group, None
            self._driver.group = None
            group.failed(raised)
        if self._pooled is not None:
            self._ended()
            self._pooled.invalidate()
        _raise(raised, error)


async def _end(driver: Driver, group: _Group) -> None:
    """COMMIT `group` (ROLLBACK it if no member wrote), tell its members how
    that went, and give the turn to the next writer; the caller has the turn."""
    driver.group = None
    pooled = group.pooled
    connection = pooled.driver_connection
    sql = "COMMIT" if group.wrote else "ROLLBACK"
    try:
        if connection.in_transaction:  # type: ignore[union-attr]
            await connection.execute_fetchall(sql)  # type: ignore[union-attr]
        group.committed.set_result(None)
    except BaseException as error:
        raised = _raised(sql, error)
        group.failed(raised)
        pooled.invalidate()
        _raise(raised, error)
    finally:
        assert driver.writer_turn is not None
        driver.writer_turn.release()
        await driver.give_back(pooled)


async def _end_abandoned(driver: Driver, group: _Group) -> None:
    """End `group` if it is still open once this has the turn: a writer handed
    the turn on and waits for its COMMIT, and the writer it was handed to gave
    up waiting (its patience, or a cancelled request)."""
    assert driver.writer_turn is not None
    await driver.writer_turn.acquire()
    if driver.group is not group:  # another writer joined it, and ended it
        driver.writer_turn.release()
        return
    await _end(driver, group)


def _run_after(
    connection: sqlite3.Connection,
    begin: tuple[str, ...] | None,
    work: SqliteWork[T],
    sql: str,
    values: Any,
) -> T:
    for statement in begin or ():
        connection.execute(statement)
    return work(connection, sql, values)


class _Budget:
    """SQLite's progress handler: interrupt the statement past `_INLINE_BUDGET`."""

    __slots__ = ("steps",)

    def __init__(self) -> None:
        self.steps = 0

    def __call__(self) -> bool:
        self.steps += 1
        return self.steps > _INLINE_BUDGET


def _begin_at_once(connection: sqlite3.Connection, begin: tuple[str, ...]) -> bool:
    """Whether `begin` began the transaction here, not waiting for the lock: if
    another process holds it, the caller waits for it in the thread instead.
    A group's savepoint alone (its transaction holds the lock) waits for nothing.
    """
    first, *rest = begin
    if first.startswith("BEGIN"):
        connection.execute("PRAGMA busy_timeout = 0")
        try:
            connection.execute(first)
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                raise
            return False
        finally:
            connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    else:
        connection.execute(first)
    for statement in rest:
        connection.execute(statement)
    return True


class _OverBudget(Exception):
    """A read ran past `_INLINE_BUDGET` and was interrupted, having done nothing."""


def _within_budget(
    connection: sqlite3.Connection, work: SqliteWork[T], sql: str, values: Any
) -> T:
    """`work(connection, sql, values)` here and now; _OverBudget if SQLite runs
    past the budget."""
    budget = _Budget()
    connection.set_progress_handler(budget, _INLINE_STEP)
    try:
        return work(connection, sql, values)
    except sqlite3.OperationalError as error:
        if budget.steps > _INLINE_BUDGET:  # SQLite's "interrupted"
            raise _OverBudget() from error
        raise
    finally:
        connection.set_progress_handler(None, 0)


def _fetchall(connection: sqlite3.Connection, sql: str, values: Any) -> list[Any]:
    return connection.execute(sql, values).fetchall()


def _rowcount(connection: sqlite3.Connection, sql: str, values: Any) -> int:
    cursor = connection.execute(sql, values)
    try:
        return cursor.rowcount
    finally:
        cursor.close()


def _executemany(connection: sqlite3.Connection, sql: str, values: Any) -> None:
    connection.executemany(sql, values).close()


def _integrity_error(error: BaseException) -> bool:
    return isinstance(
        error, asyncpg.IntegrityConstraintViolationError | sqlite3.IntegrityError
    )


def _connection_lost(error: Exception) -> bool:
    """Did the connection break under the statement (the server went away, or
    asyncpg's protocol gave up mid-operation, as in a shutdown), rather than the
    statement fail? SQLAlchemy's dialects tell it the same way (is_disconnect)."""
    return isinstance(
        error,
        OSError
        | asyncpg.PostgresConnectionError
        | asyncpg.InterfaceError
        | asyncpg.InternalClientError,
    )


def _raised(sql: str, error: BaseException) -> BaseException:
    """What a statement's failure raises: the driver's error as SQLAlchemy's
    (`_wrapped`); a cancellation or an exit as it is."""
    return _wrapped(sql, error) if isinstance(error, Exception) else error


def _raise(raised: BaseException, error: BaseException) -> NoReturn:
    """Raise `raised` (`_raised(sql, error)`) from `error`, unless it is `error`."""
    if raised is error:
        raise error
    raise raised from error


def _wrapped(sql: str | None, error: Exception) -> exc.DBAPIError:
    """The driver's error as SQLAlchemy's session would have raised it, so that
    callers tell an unavailable database from a bug by the same errors: a lost
    connection is `connection_invalidated`, as SQLAlchemy marks it."""
    lost = _connection_lost(error)
    return exc.DBAPIError(
        sql, None, error, hide_parameters=True, connection_invalidated=lost
    )


class DriverResult:
    """The part of SQLAlchemy's Result that the repositories use."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int = -1) -> None:
        self._rows = rows
        self.rowcount = rowcount if rowcount >= 0 else len(rows)

    def all(self) -> list[Any]:
        return self._rows

    def one_or_none(self) -> Any:
        if len(self._rows) > 1:
            raise exc.MultipleResultsFound("More than one row where one was wanted.")
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
