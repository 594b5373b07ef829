"""Records the SQL an engine sends and finds statements on owned tables that do
not name their owner: each would be a multi-shard query once the tables are
distributed by owner_id (docs/scaling.md).

The SQL is parsed with sqlglot, not matched with patterns: SQLAlchemy nests a
listing's stretches in UNION ALL subqueries and a count in a subquery, and
every SELECT that reads an owned table must name the owner itself. A regular
expression cannot tell which WHERE belongs to which FROM.
"""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final

import sqlglot
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlglot import exp

from adapters.sqlalchemy.driver import Driver
from adapters.sqlalchemy.tables import (
    CROSS_OWNER,
    CROSS_OWNER_STATEMENTS,
    OWNED_TABLES,
)

# An execution option a test sets on its own look into the tables (a count of
# every owner's rows, say): that is no statement the service sends.
TEST_INSPECTION: Final = {"taskhub_test_inspection": True}

_DIALECTS = {"sqlite": "sqlite", "postgresql": "postgres"}
# What an owner's value is in a statement: a bound parameter, maybe cast
# (asyncpg renders `$1::BIGINT`), or a literal.
_VALUES = (exp.Placeholder, exp.Parameter, exp.Literal)


def _conjuncts(condition: exp.Expression | None) -> Iterator[exp.Expression]:
    """The terms ANDed at the top of `condition`: an owner test under an OR or
    a NOT does not confine the statement to the owner."""
    if condition is None:
        return
    if isinstance(condition, exp.Paren):
        yield from _conjuncts(condition.this)
    elif isinstance(condition, exp.And):
        yield from _conjuncts(condition.left)
        yield from _conjuncts(condition.right)
    else:
        yield condition


def _is_value(node: exp.Expression) -> bool:
    while isinstance(node, exp.Cast):
        node = node.this
    return isinstance(node, _VALUES)


def _names_owner(condition: exp.Expression | None, table: exp.Table) -> bool:
    """Whether `condition` holds `table`.owner_id equal to one value."""
    names = {table.name, table.alias_or_name}
    for term in _conjuncts(condition):
        if not isinstance(term, exp.EQ):
            continue
        sides = (term.this, term.expression)
        for column, value in (sides, sides[::-1]):
            if (
                isinstance(column, exp.Column)
                and column.name == "owner_id"
                and (not column.table or column.table in names)
                and _is_value(value)
            ):
                return True
    return False


def _owned(node: exp.Expression | None) -> exp.Table | None:
    if isinstance(node, exp.Schema):  # INSERT INTO t (columns)
        node = node.this
    if isinstance(node, exp.Table) and node.name in OWNED_TABLES:
        return node
    return None


def _select_problems(select: exp.Select) -> Iterator[str]:
    where = select.args.get("where")
    where_condition = where.this if where is not None else None
    sources = [select.args.get("from_"), *(select.args.get("joins") or [])]
    for source in sources:
        table = _owned(source.this if source is not None else None)
        if table is None:
            continue
        on = source.args.get("on") if isinstance(source, exp.Join) else None
        if not (_names_owner(where_condition, table) or _names_owner(on, table)):
            yield f"SELECT from {table.name} without {table.name}.owner_id = value"


def _problems(tree: exp.Expression) -> Iterator[str]:
    for node in tree.walk():
        if isinstance(node, exp.Select):
            yield from _select_problems(node)
        elif isinstance(node, exp.Insert):
            table = _owned(node.this)
            if table is None:
                continue
            columns = node.this.expressions if isinstance(node.this, exp.Schema) else []
            if "owner_id" not in {column.name for column in columns}:
                yield f"INSERT into {table.name} without an owner_id value"
        elif isinstance(node, exp.Update | exp.Delete):
            table = _owned(node.this)
            where = node.args.get("where")
            condition = where.this if where is not None else None
            if table is not None and not _names_owner(condition, table):
                kind = type(node).__name__.upper()
                yield f"{kind} of {table.name} without {table.name}.owner_id = value"
            sets = node.expressions if isinstance(node, exp.Update) else []
            if table is not None and any(s.this.name == "owner_id" for s in sets):
                # Citus refuses to change a row's distribution column.
                yield f"UPDATE of {table.name} that sets owner_id"


@cache
def owner_problems(sql: str, dialect: str) -> tuple[str, ...]:
    """Why `sql` (in the dialect SQLAlchemy calls `dialect`) is not confined
    to one owner; empty if it is, or if it touches no owned table."""
    words = set(sql.replace("(", " ").replace(",", " ").lower().split())
    if not words & OWNED_TABLES:
        return ()  # BEGIN, PRAGMA, SELECT 1, users, api_tokens, ...
    try:
        trees = sqlglot.parse(sql, read=_DIALECTS.get(dialect, dialect))
    except sqlglot.errors.ParseError as error:
        return (f"unparsable, so unchecked: {error}",)
    return tuple(problem for tree in trees if tree for problem in _problems(tree))


@dataclass(frozen=True)
class Statement:
    sql: str
    dialect: str
    cross_owner: str | None  # the statement's CROSS_OWNER execution option


@dataclass
class StatementAudit:
    """Every statement the engines it watches send, while it watches them."""

    statements: list[Statement] = field(default_factory=list)

    def watch(self, engine: Engine, driver: Driver | None = None) -> Callable[[], None]:
        """Record what `engine`'s sessions and `driver` send; returns the call
        that stops recording."""
        event.listen(engine, "before_cursor_execute", self._record)
        stop_driver = driver.observe(self._record_driven) if driver else None

        def unwatch() -> None:
            event.remove(engine, "before_cursor_execute", self._record)
            if stop_driver is not None:
                stop_driver()

        return unwatch

    def _record_driven(
        self, sql: str, dialect: str, options: Mapping[str, Any]
    ) -> None:
        self.statements.append(Statement(sql, dialect, options.get(CROSS_OWNER)))

    def _record(
        self,
        connection: Any,
        cursor: Any,
        sql: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        options = context.execution_options if context is not None else {}
        if options.get("taskhub_test_inspection"):
            return
        dialect = connection.dialect.name
        self.statements.append(Statement(sql, dialect, options.get(CROSS_OWNER)))

    def violations(self) -> list[str]:
        """Each statement on an owned table without an owner predicate, with
        why, unless it is a named exception of CROSS_OWNER_STATEMENTS."""
        found: dict[str, None] = {}  # in order, each once
        for statement in self.statements:
            if statement.cross_owner in CROSS_OWNER_STATEMENTS:
                continue
            for problem in owner_problems(statement.sql, statement.dialect):
                tag = statement.cross_owner
                unknown = f" (unknown exception {tag!r})" if tag else ""
                found[f"{problem}{unknown}:\n    {statement.sql}"] = None
        return list(found)
