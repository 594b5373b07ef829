"""SQL repositories. They run statements in the unit of work's session, never commit."""

from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import Any, ClassVar, Final, Generic, NoReturn, TypeVar

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sqlalchemy.driver import ONE_ROW, DriverSession
from adapters.sqlalchemy.mapping import (
    TASK_COLUMNS,
    ConstraintErrors,
    project_to_entity,
    project_to_row,
    raise_for_constraint,
    task_to_entity,
    task_to_row,
    task_to_values,
    token_to_entity,
    token_to_row,
    user_to_entity,
)
from adapters.sqlalchemy.tables import (
    CROSS_OWNER,
    api_tokens,
    projects,
    tasks,
    users,
)
from application.queries import (
    Page,
    Position,
    ProjectQuery,
    TaskQuery,
    settle_total,
)
from domain.errors import (
    ConcurrentUpdate,
    IdTaken,
    InvalidValue,
    ProjectHasTasks,
    ProjectNameTaken,
    TasksBusy,
    UserNameTaken,
)
from domain.projects import Project
from domain.tasks import Task
from domain.users import ApiToken, User
from domain.values import search_key

E = TypeVar("E", Task, Project)
# A unit of work's session, or a read-only one's reads on the driver.
Statements = AsyncSession | DriverSession
INT64_MAX = 2**63 - 1

# A project deleted between the use case's checks and a bulk insert, or a
# kept id that another task has.
_MISSING_PROJECT: ConstraintErrors = {
    "fk_tasks_project_owner": lambda: InvalidValue(
        "project_id", "A project of these tasks no longer exists."
    ),
    "pk_tasks": lambda: IdTaken("Task"),
}

_TASK_SORT_COLUMNS = {
    "id": tasks.c.id,
    "created_at": tasks.c.created_at,
    "updated_at": tasks.c.updated_at,
    "due_date": tasks.c.due_date,
    "priority": tasks.c.priority,
    "title": tasks.c.title_key,
}
_PROJECT_SORT_COLUMNS = {
    "id": projects.c.id,
    "name": projects.c.name_key,
    "created_at": projects.c.created_at,
    "updated_at": projects.c.updated_at,
}


def _pattern(text: str) -> str:
    """A LIKE pattern matching `text` case-insensitively anywhere, in which %
    and _ are literal characters (the column holds casefolded keys)."""
    escaped = (
        search_key(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    )
    return f"%{escaped}%"


# A listing's filters: each puts a condition on the table with its value as a
# bound parameter of the filter's name, so one statement serves every value.
Condition = Callable[[sa.BindParameter[Any]], sa.ColumnElement[bool]]
_TASK_FILTERS: dict[str, Condition] = {
    "done": lambda value: tasks.c.done == value,
    "project_id": lambda value: tasks.c.project_id == value,
    "priority": lambda value: tasks.c.priority == value,
    "q": lambda value: tasks.c.title_key.like(value, escape="\\"),
    "due_before": lambda value: tasks.c.due_date < value,
    "due_after": lambda value: tasks.c.due_date > value,
}
_PROJECT_FILTERS: dict[str, Condition] = {
    "q": lambda value: projects.c.name_key.like(value, escape="\\"),
    "archived": lambda value: projects.c.archived == value,
}
_FILTERS = {tasks.name: _TASK_FILTERS, projects.name: _PROJECT_FILTERS}
_SORT_COLUMNS = {tasks.name: _TASK_SORT_COLUMNS, projects.name: _PROJECT_SORT_COLUMNS}


def _where(table: sa.Table, filters: tuple[str, ...]) -> list[sa.ColumnElement[bool]]:
    """The owner's rows that pass `filters`, all values bound by name."""
    conditions = _FILTERS[table.name]
    return [
        table.c.owner_id == sa.bindparam("owner_id", type_=table.c.owner_id.type),
        *(conditions[name](sa.bindparam(name)) for name in filters),
    ]


def _after_kind(column: sa.ColumnElement[Any], position: Position | None) -> str | None:
    """Which of `_after`'s statements a page resumed from `position` needs."""
    if position is None:
        return None
    if column.name == "id":
        return "id"
    return "null" if position.value is None else "value"


def _after(
    column: sa.ColumnElement[Any],
    id_column: sa.ColumnElement[int],
    descending: bool,
    kind: str | None,
) -> list[sa.ColumnElement[bool]]:
    """The rows after the position bound as :after_value, :after_id in the order
    `_order_by` gives, as one or two stretches of that order, each one range of
    a (column, id) index (`kind` from `_after_kind`).

    Row values compare the non-NULL stretch. NULLs, which compare as nothing,
    come last ascending and first descending: they are a stretch of their own.
    An OR of the two would make the database read everything up to the page.
    """
    if kind is None:
        return [sa.true()]
    last_id = sa.bindparam("after_id", type_=id_column.type)
    if kind == "id":
        return [id_column < last_id if descending else id_column > last_id]
    if kind == "null":  # among the NULLs
        nulls_after = column.is_(None) & (
            id_column < last_id if descending else id_column > last_id
        )
        return [nulls_after, column.is_not(None)] if descending else [nulls_after]
    value = sa.bindparam("after_value", type_=column.type)
    pair, bound = sa.tuple_(column, id_column), sa.tuple_(value, last_id)
    if descending:
        return [pair < bound]
    if getattr(column, "nullable", False):
        return [pair > bound, column.is_(None)]
    return [pair > bound]


@cache
def _page(
    table: sa.Table,
    filters: tuple[str, ...],
    sort: str,
    descending: bool,
    after: str | None,
    counted: bool = False,
) -> sa.Select[Any]:
    """One page of a listing, of this shape: built once per shape (filters,
    sort, kind of position, counted or not), since building a statement and its
    cache key costs more than running it. Values are bound: :owner_id, each
    filter's name, :after_value and :after_id, :wanted, :limit and :offset.

    A `counted` page (of an offset listing) also counts its matches, up to
    :bound, in a column `matches` on each row: the count that most first pages
    need, without a second statement and round trip (on SQLite, a second hop
    to its thread). The database runs that uncorrelated subquery once."""
    column = _SORT_COLUMNS[table.name][sort]
    where = _where(table, filters)
    order_by = _order_by(column, table.c.id, descending)
    # One row beyond the window says whether more follow, without a count.
    wanted = sa.bindparam("wanted", type_=sa.BigInteger())
    parts = [
        sa.select(table).where(*where, stretch).order_by(*order_by).limit(wanted)
        for stretch in _after(column, table.c.id, descending, after)
    ]
    page: sa.Select[Any] = parts[0]
    if len(parts) > 1:  # the stretches one after the other, in order again
        both = sa.union_all(*(sa.select(p.subquery()) for p in parts)).subquery()
        page = sa.select(both).order_by(
            *_order_by(both.c[column.name], both.c.id, descending)
        )
    if counted:
        matches = _count(table, filters, True).scalar_subquery()
        page = page.add_columns(matches.label("matches"))
    return page.limit(sa.bindparam("limit", type_=sa.BigInteger())).offset(
        sa.bindparam("offset", type_=sa.BigInteger())
    )


@cache
def _count(table: sa.Table, filters: tuple[str, ...], bounded: bool) -> sa.Select[Any]:
    """How many rows pass `filters`, counting at most :bound when `bounded`."""
    matches = sa.select(sa.literal(1)).select_from(table).where(*_where(table, filters))
    if bounded:  # stop counting once past the bound
        matches = matches.limit(sa.bindparam("bound", type_=sa.BigInteger()))
    return sa.select(sa.func.count()).select_from(matches.subquery())


def _without_owner(row: dict[str, Any]) -> dict[str, Any]:
    """A row's values to update: the owner is the distribution column when
    sharded by owner, which an UPDATE may not set, even to the same value."""
    return {column: value for column, value in row.items() if column != "owner_id"}


@cache
def _get(table: sa.Table) -> sa.Select[Any]:
    """One row by owner and id. Built once: the hottest statement, and building
    a statement and its cache key costs more than running a cached one."""
    return sa.select(table).where(
        table.c.owner_id == sa.bindparam("owner_id"), table.c.id == sa.bindparam("id")
    )


@cache
def _insert(table: sa.Table, columns: tuple[str, ...]) -> sa.Insert:
    """A new row with the values of `columns`, bound by their names, giving
    back its id. Built once per table and set of columns (see _get)."""
    return (
        sa.insert(table)
        .values({name: _bound(table, name) for name in columns})
        .returning(table.c.id)
        .execution_options(**{ONE_ROW: True})
    )


@cache
def _update(table: sa.Table, columns: tuple[str, ...]) -> sa.Update:
    """The row :row_id of :row_owner_id, if still at :expected_version, with
    the values of `columns`, bound by their names. Built once (see _get)."""
    return (
        sa.update(table)
        .where(*_one_row(table), _at_version(table))
        .values({name: _bound(table, name) for name in columns})
        .execution_options(**{ONE_ROW: True})
    )


@cache
def _delete(table: sa.Table, versioned: bool) -> sa.Delete:
    """The row :row_id of :row_owner_id, if `versioned` only at
    :expected_version. Built once (see _get)."""
    statement = sa.delete(table).where(*_one_row(table))
    statement = statement.execution_options(**{ONE_ROW: True})
    return statement.where(_at_version(table)) if versioned else statement


def _one_row(table: sa.Table) -> list[sa.ColumnElement[bool]]:
    """The row :row_id of :row_owner_id: names no column has, so a SET clause
    binding its values by column name never collides with them."""
    return [
        table.c.owner_id == sa.bindparam("row_owner_id"),
        table.c.id == sa.bindparam("row_id"),
    ]


def _at_version(table: sa.Table) -> sa.ColumnElement[bool]:
    return table.c.version == sa.bindparam("expected_version")


def _bound(table: sa.Table, name: str) -> sa.BindParameter[Any]:
    return sa.bindparam(name, type_=table.c[name].type)


@cache
def _get_for_update(table: sa.Table) -> sa.Select[Any]:
    # SQLite renders nothing for FOR UPDATE: BEGIN IMMEDIATE already serializes.
    return _get(table).with_for_update()


def _order_by(
    column: sa.ColumnElement[Any], id_column: sa.ColumnElement[int], descending: bool
) -> list[sa.ColumnElement[Any]]:
    # NULLs last ascending, first descending: descending is the exact reverse.
    if descending:
        return [column.desc().nulls_first(), id_column.desc()]
    return [column.asc().nulls_last(), id_column.asc()]


def _on_postgresql(session: Statements) -> bool:
    if isinstance(session, DriverSession):
        return session.on_postgresql
    return session.get_bind().dialect.name == "postgresql"


async def _driver_connection(session: Statements) -> Any:
    """The driver's connection, in the unit of work's transaction."""
    if isinstance(session, DriverSession):
        return await session.driver_connection()
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None  # the connection is checked out, hence open
    if not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter sends BEGIN only before its first
        # statement; a COPY that came first would commit on its own.
        await connection.exec_driver_sql("SELECT 1")
    return driver


# A unit of work that stored at least this many tasks by COPY analyzes the
# table before it commits (see `analyze_after_copy`).
ANALYZE_AFTER_ROWS: Final = 1_000


async def analyze_after_copy(
    session: Statements, repositories: Iterable["SqlAlchemyTaskRepository"]
) -> None:
    """Before a commit: ANALYZE tasks if `repositories` stored many by COPY.

    A bulk load leaves PostgreSQL's planner with the table's old statistics, or
    none, until autovacuum analyzes it: a minute or more later, and never with
    autovacuum off. Meanwhile it plans for a few rows. Right after 300,000
    tasks loaded, a first page took 22.6 ms instead of 4.0 and a `done=true`
    page 86.8 ms instead of 3.1 (medians of 15); the ANALYZE took 0.18 s, in
    a load of 28 s. Run in the load's transaction, it samples the rows the
    load stored, and it commits or rolls back with them.
    """
    repositories = list(repositories)
    if sum(repository.copied for repository in repositories) < ANALYZE_AFTER_ROWS:
        return
    driver = await _driver_connection(session)
    await driver.execute(f"ANALYZE {tasks.name}")
    for repository in repositories:
        repository.copied = 0


# How long `defer_indexes` waits for other units of work to let go of the tasks.
TABLE_LOCK_PATIENCE_S: Final = 10.0

# The tasks' secondary indexes, and their foreign keys: what PostgreSQL has
# (`defer_indexes` rebuilds exactly what it dropped), less the indexes behind
# a constraint (the primary key).
_SECONDARY_INDEXES: Final = """
    SELECT quote_ident(c.relname), pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE i.indrelid = $1::regclass
      AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid)
    ORDER BY c.relname
"""
_FOREIGN_KEYS: Final = """
    SELECT quote_ident(conname), pg_get_constraintdef(oid)
    FROM pg_constraint
    WHERE conrelid = $1::regclass AND contype = 'f'
    ORDER BY conname
"""


def _raise_for_copied(error: asyncpg.PostgresError) -> NoReturn:
    """The domain error for the constraint that tasks stored by COPY broke,
    found by the COPY or when their foreign keys are checked again; else
    `error` itself."""
    if error.constraint_name in _MISSING_PROJECT:
        raise _MISSING_PROJECT[error.constraint_name]() from error
    raise error


async def rebuild_deferred(
    session: Statements, repositories: Iterable["SqlAlchemyTaskRepository"]
) -> None:
    """Before a commit: rebuild what `defer_indexes` dropped, and check the
    foreign keys again over every row (InvalidValue for a task whose project
    was deleted meanwhile)."""
    for repository in repositories:
        deferred, repository.deferred = repository.deferred, None
        if deferred is None:
            continue
        driver = await _driver_connection(session)
        indexes, foreign_keys = deferred
        for _name, definition in indexes:
            await driver.execute(definition)
        try:
            for name, definition in foreign_keys:
                await driver.execute(
                    f"ALTER TABLE {tasks.name} ADD CONSTRAINT {name} {definition}"
                )
        except asyncpg.ForeignKeyViolationError as e:
            _raise_for_copied(e)


class _SqlAlchemyRepository(Generic[E]):
    """What both repositories do alike: one row per entity, versioned updates,
    and every statement confined to one owner's rows."""

    _table: ClassVar[sa.Table]
    _kind: ClassVar[str]

    def __init__(self, session: Statements, owner_id: int) -> None:
        self._session = session
        self._owner_id = owner_id

    @property
    def _mine(self) -> sa.ColumnElement[bool]:
        # Built when asked for: a get, the hottest statement, does without.
        return self._table.c.owner_id == self._owner_id

    async def add(self, entity: E) -> None:
        table = self._table
        entity.owner_id = self._owner_id
        row = self._to_row(entity)
        if entity.id is not None:  # kept, as an import with its ids asks
            await self._refuse_taken([entity.id])
            row["id"] = entity.id
        statement = _insert(table, tuple(row))
        try:
            entity.id = (await self._session.execute(statement, row)).scalar_one()
        except IntegrityError as error:
            kept_id = entity.id
            kept: ConstraintErrors = {
                f"pk_{table.name}": lambda: IdTaken(self._kind, kept_id)
            }
            raise_for_constraint(error, {**self._constraint_errors(entity), **kept})

    async def _refuse_taken(self, ids: Sequence[int]) -> None:
        """IdTaken if any owner has a row with one of `ids`. On PostgreSQL the
        primary key is (owner_id, id), so it alone would let a kept id repeat
        under another owner; ids are unique across owners on every backend."""
        table = self._table
        statement = (
            sa.select(table.c.id)
            .where(table.c.id.in_(ids))
            .limit(1)
            .execution_options(**{CROSS_OWNER: "kept-ids-unique-across-owners"})
        )
        taken = (await self._session.execute(statement)).scalar_one_or_none()
        if taken is not None:
            raise IdTaken(self._kind, taken)

    async def get(self, entity_id: int, *, for_update: bool = False) -> E | None:
        statement = _get_for_update(self._table) if for_update else _get(self._table)
        parameters = {"owner_id": self._owner_id, "id": entity_id}
        row = (await self._session.execute(statement, parameters)).one_or_none()
        return None if row is None else self._to_entity(row)

    async def update(self, entity: E, expected_version: int) -> None:
        assert entity.id is not None
        row = _without_owner(self._to_row(entity))
        statement = _update(self._table, tuple(row))
        row |= {
            "row_owner_id": self._owner_id,
            "row_id": entity.id,
            "expected_version": expected_version,
        }
        try:
            result = await self._session.execute(statement, row)
        except IntegrityError as error:
            raise_for_constraint(error, self._constraint_errors(entity))
        if result.rowcount != 1:  # type: ignore[union-attr]
            raise ConcurrentUpdate(self._kind, entity.id)

    async def remove(self, entity_id: int, expected_version: int | None = None) -> bool:
        statement = _delete(self._table, expected_version is not None)
        parameters = {"row_owner_id": self._owner_id, "row_id": entity_id}
        if expected_version is not None:
            parameters["expected_version"] = expected_version
        try:
            result = await self._session.execute(statement, parameters)
        except IntegrityError as error:
            raise_for_constraint(error, self._removal_errors(entity_id))
        if result.rowcount or expected_version is None:  # type: ignore[union-attr]
            return bool(result.rowcount)  # type: ignore[union-attr]
        if await self.get(entity_id) is None:
            return False
        raise ConcurrentUpdate(self._kind, entity_id)

    async def _list(
        self, values: dict[str, Any], query: TaskQuery | ProjectQuery
    ) -> Page[E]:
        """One page of the rows passing the filters `values` names, with their
        values, in `query`'s order and window."""
        table, window, after = self._table, query.window, query.after
        filters = tuple(values)
        sort = _SORT_COLUMNS[table.name][query.sort]
        cap = query.count_up_to
        # The page brings the bounded count along where settle_total may ask
        # for it: an offset page that starts before the cap (past the cap, a
        # page with items has a total of None, uncounted).
        carried_bound = None
        if after is None and cap is not None and window.offset < cap:
            carried_bound = cap + 1
        page = _page(
            table,
            filters,
            query.sort,
            query.descending,
            _after_kind(sort, after),
            counted=carried_bound is not None,
        )
        parameters = {
            "owner_id": self._owner_id,
            **values,
            "wanted": min(window.offset + window.limit + 1, INT64_MAX),
            "limit": window.limit + 1,
            "offset": window.offset,
        }
        if after is not None:
            parameters |= {"after_value": after.value, "after_id": after.id}
        if carried_bound is not None:
            parameters["bound"] = carried_bound
        rows = (await self._session.execute(page, parameters)).all()
        more = len(rows) > window.limit
        rows = rows[: window.limit]

        async def count(bound: int | None) -> int:
            # An empty page carries no count: it is counted on its own.
            if rows and bound is not None and bound == carried_bound:
                carried: int = rows[0].matches
                return carried
            bound_values = {"owner_id": self._owner_id, **values, "bound": bound}
            total = _count(table, filters, bound is not None)
            matches: int = (
                await self._session.execute(total, bound_values)
            ).scalar_one()
            return matches

        last = rows[-1] if more else None
        return Page(
            items=[self._to_entity(row) for row in rows],
            total=await settle_total(query, len(rows), more, count),
            next=None if last is None else Position(getattr(last, sort.name), last.id),
        )

    def _to_row(self, entity: E) -> dict[str, Any]:
        raise NotImplementedError

    def _to_entity(self, row: sa.Row[Any]) -> E:
        raise NotImplementedError

    def _constraint_errors(self, entity: E) -> ConstraintErrors:
        """Domain errors by the name of the constraint a write of `entity` broke."""
        return {}

    def _removal_errors(self, entity_id: int) -> ConstraintErrors:
        """Domain errors by the name of the constraint a removal broke."""
        return {}


class SqlAlchemyTaskRepository(_SqlAlchemyRepository[Task]):
    _table = tasks
    _kind = "Task"
    copied = 0  # tasks stored by COPY in this unit of work (analyze_after_copy)
    # What `defer_indexes` dropped, to rebuild at commit (`rebuild_deferred`):
    # (name, definition) of each index, and of each foreign key.
    deferred: tuple[list[tuple[str, str]], list[tuple[str, str]]] | None = None

    async def defer_indexes(self, patience: float = TABLE_LOCK_PATIENCE_S) -> None:
        """On PostgreSQL, drop the tasks' secondary indexes and foreign keys
        until the unit of work commits, which builds them again (see the port).

        The table is locked first, as DROP INDEX would lock it anyway, but
        waiting `patience` seconds at most: a lock request in the queue holds
        up every later reader of the table. On SQLite, nothing: it keeps its
        indexes.
        """
        if self.deferred is not None or not _on_postgresql(self._session):
            return
        driver = await _driver_connection(self._session)
        table = tasks.name
        waited = await driver.fetchval("SHOW lock_timeout")
        await driver.execute(f"SET LOCAL lock_timeout = {int(patience * 1000)}")
        try:
            await driver.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        except asyncpg.LockNotAvailableError as error:
            raise TasksBusy(patience) from error
        await driver.execute("SELECT set_config('lock_timeout', $1, true)", waited)
        indexes = [tuple(row) for row in await driver.fetch(_SECONDARY_INDEXES, table)]
        foreign_keys = [tuple(row) for row in await driver.fetch(_FOREIGN_KEYS, table)]
        for name, _definition in foreign_keys:
            await driver.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        for name, _definition in indexes:
            await driver.execute(f"DROP INDEX {name}")
        self.deferred = (indexes, foreign_keys)

    async def add_many(self, tasks: Sequence[Task]) -> None:
        if not tasks:
            return
        for task in tasks:
            task.owner_id = self._owner_id
        keep_ids = tasks[0].id is not None
        if any((task.id is not None) != keep_ids for task in tasks):
            raise ValueError("Either every task has an id to keep or none has.")
        if keep_ids:
            await self._refuse_taken([task.id for task in tasks if task.id])
        if _on_postgresql(self._session):
            await self._copy(tasks, keep_ids)
            return
        try:
            rows = [task_to_row(task) for task in tasks]
            if keep_ids:
                for row, task in zip(rows, tasks, strict=True):
                    row["id"] = task.id
            await self._session.execute(sa.insert(self._table), rows)
        except IntegrityError as error:
            raise_for_constraint(error, _MISSING_PROJECT)

    async def _copy(self, tasks: Sequence[Task], keep_ids: bool) -> None:
        """Binary COPY on the unit of work's own connection, in its transaction."""
        driver = await _driver_connection(self._session)
        records: Iterable[tuple[Any, ...]] = map(task_to_values, tasks)
        columns: tuple[str, ...] = TASK_COLUMNS
        if keep_ids:
            records = ((task.id, *task_to_values(task)) for task in tasks)
            columns = ("id", *TASK_COLUMNS)
        try:
            await driver.copy_records_to_table(
                self._table.name, records=records, columns=columns
            )
        except (asyncpg.ForeignKeyViolationError, asyncpg.UniqueViolationError) as e:
            _raise_for_copied(e)
        self.copied += len(tasks)

    async def list(self, query: TaskQuery) -> Page[Task]:
        values: dict[str, Any] = {}
        if query.done is not None:
            values["done"] = query.done
        if query.project_id is not None:
            values["project_id"] = query.project_id
        if query.priority is not None:
            values["priority"] = query.priority.rank
        if query.q is not None:
            values["q"] = _pattern(query.q)
        if query.due_before is not None:
            values["due_before"] = query.due_before
        if query.due_after is not None:
            values["due_after"] = query.due_after
        return await self._list(values, query)

    async def count_in_project(self, project_id: int) -> int:
        count = sa.select(sa.func.count()).where(
            self._mine, tasks.c.project_id == project_id
        )
        return (await self._session.execute(count)).scalar_one()

    def _to_row(self, entity: Task) -> dict[str, Any]:
        return task_to_row(entity)

    def _to_entity(self, row: sa.Row[Any]) -> Task:
        return task_to_entity(row)

    def _constraint_errors(self, entity: Task) -> ConstraintErrors:
        # The project was deleted between the use case's check and this statement.
        message = f"Project {entity.project_id} does not exist."
        return {"fk_tasks_project_owner": lambda: InvalidValue("project_id", message)}


class SqlAlchemyProjectRepository(_SqlAlchemyRepository[Project]):
    _table = projects
    _kind = "Project"

    async def list(self, query: ProjectQuery) -> Page[Project]:
        values: dict[str, Any] = {}
        if query.q is not None:
            values["q"] = _pattern(query.q)
        if query.archived is not None:
            values["archived"] = query.archived
        return await self._list(values, query)

    def _to_row(self, entity: Project) -> dict[str, Any]:
        return project_to_row(entity)

    def _to_entity(self, row: sa.Row[Any]) -> Project:
        return project_to_entity(row)

    def _constraint_errors(self, entity: Project) -> ConstraintErrors:
        return {"uq_projects_owner_id_name_key": lambda: ProjectNameTaken(entity.name)}

    def _removal_errors(self, entity_id: int) -> ConstraintErrors:
        # A task was added between the use case's count and this statement.
        return {"fk_tasks_project_owner": lambda: ProjectHasTasks(entity_id)}


class SqlAlchemyUserRepository:
    def __init__(self, session: Statements) -> None:
        self._session = session

    async def add(self, user: User) -> None:
        statement = (
            sa.insert(users)
            .values(name=user.name, created_at=user.created_at)
            .returning(users.c.id)
        )
        try:
            user.id = (await self._session.execute(statement)).scalar_one()
        except IntegrityError as error:
            raise_for_constraint(
                error, {"uq_users_name": lambda: UserNameTaken(user.name)}
            )

    async def get_by_name(self, name: str) -> User | None:
        statement = sa.select(users).where(users.c.name == name)
        row = (await self._session.execute(statement)).one_or_none()
        return None if row is None else user_to_entity(row)

    async def exists(self) -> bool:
        statement = sa.select(sa.exists().select_from(users))
        return bool((await self._session.execute(statement)).scalar_one())

    async def list_after(self, user_id: int | None, limit: int) -> list[User]:
        statement = sa.select(users).order_by(users.c.id).limit(limit)
        if user_id is not None:
            statement = statement.where(users.c.id > user_id)
        rows = (await self._session.execute(statement)).all()
        return [user_to_entity(row) for row in rows]


async def advance_ids(session: AsyncSession) -> None:
    """Move the id sequences of projects and tasks past every stored id.

    Only PostgreSQL needs it: SQLite's AUTOINCREMENT counter follows any
    larger id inserted explicitly. Never moves a sequence back, so ids of
    deleted rows stay unused.
    """
    connection = await session.connection()
    if connection.dialect.name != "postgresql":
        return
    for table in (projects, tasks):
        sequence = (
            await connection.exec_driver_sql(
                f"SELECT pg_get_serial_sequence('{table.name}', 'id')"
            )
        ).scalar_one()
        # `>=`: a fresh sequence reads last_value 1 before its first use, and
        # would hand out 1 again.
        await connection.exec_driver_sql(
            f"SELECT setval('{sequence}', m) FROM (SELECT max(id) AS m FROM "
            f"{table.name}) AS stored WHERE m >= (SELECT last_value FROM {sequence})"
        )


_FIND_TOKEN = sa.select(api_tokens).where(
    api_tokens.c.secret_hash == sa.bindparam("secret_hash")
)
# Several at once, in one statement of one shape: PostgreSQL's = ANY(array),
# where IN (...) would be compiled anew for every number of hashes.
_FIND_TOKENS = sa.select(api_tokens).where(
    api_tokens.c.secret_hash
    == sa.any_(sa.bindparam("secret_hashes", type_=postgresql.ARRAY(sa.String)))
)


class SqlAlchemyTokenRepository:
    def __init__(self, session: Statements) -> None:
        self._session = session

    async def add(self, token: ApiToken) -> None:
        statement = (
            sa.insert(api_tokens).values(token_to_row(token)).returning(api_tokens.c.id)
        )
        token.id = (await self._session.execute(statement)).scalar_one()

    async def find(self, secret_hash: str) -> ApiToken | None:
        # Every authenticated request runs this: the statement is built once.
        parameters = {"secret_hash": secret_hash}
        row = (await self._session.execute(_FIND_TOKEN, parameters)).one_or_none()
        return None if row is None else token_to_entity(row)

    async def find_many(self, secret_hashes: Collection[str]) -> list[ApiToken]:
        if len(secret_hashes) > 1 and _on_postgresql(self._session):
            parameters = {"secret_hashes": list(secret_hashes)}
            rows = (await self._session.execute(_FIND_TOKENS, parameters)).all()
            return [token_to_entity(row) for row in rows]
        # One, or on SQLite, whose reads cost no round trip: one statement each.
        found = [await self.find(secret_hash) for secret_hash in secret_hashes]
        return [token for token in found if token is not None]

    async def find_by_prefix(self, prefix: str) -> ApiToken | None:
        return await self._one(api_tokens.c.prefix == prefix)

    async def list_for(self, user_id: int) -> list[ApiToken]:
        statement = (
            sa.select(api_tokens)
            .where(api_tokens.c.user_id == user_id)
            .order_by(api_tokens.c.id)
        )
        rows = (await self._session.execute(statement)).all()
        return [token_to_entity(row) for row in rows]

    async def update(self, token: ApiToken) -> None:
        statement = (
            sa.update(api_tokens)
            .where(api_tokens.c.id == token.id)
            .values(token_to_row(token))
        )
        await self._session.execute(statement)

    async def record_use(self, token_id: int, at: datetime) -> None:
        statement = (
            sa.update(api_tokens)
            .where(api_tokens.c.id == token_id)
            .values(last_used_at=at)
        )
        await self._session.execute(statement)

    async def _one(self, condition: sa.ColumnElement[bool]) -> ApiToken | None:
        statement = sa.select(api_tokens).where(condition)
        row = (await self._session.execute(statement)).one_or_none()
        return None if row is None else token_to_entity(row)
