"""The statement audit of tests/api catches what would leave one owner's shard.

Statements are compiled by SQLAlchemy for both dialects, as the adapters'
statements are, and judged as the audit judges the ones it records."""

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from adapters.sqlalchemy.tables import (
    CROSS_OWNER_STATEMENTS,
    api_tokens,
    projects,
    tasks,
)
from adapters.sqlalchemy.tables import idempotency_keys as keys
from tests.statement_audit import Statement, StatementAudit, owner_problems

DIALECTS = {"sqlite": sqlite.dialect(), "postgresql": postgresql.asyncpg.dialect()}


@pytest.fixture(params=list(DIALECTS))
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _problems(statement: sa.Executable, dialect: str) -> tuple[str, ...]:
    sql = str(statement.compile(dialect=DIALECTS[dialect]))  # type: ignore[attr-defined]
    return owner_problems(sql, dialect)


def _listing(second: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """Two stretches of a listing in UNION ALL, as the repositories build them."""
    first = sa.select(tasks).where(tasks.c.owner_id == 1).limit(3)
    other = sa.select(tasks).where(second, tasks.c.due_date.is_(None)).limit(3)
    both = sa.union_all(sa.select(first.subquery()), sa.select(other.subquery()))
    union = both.subquery()
    return sa.select(union).order_by(union.c.id)


def test_statements_that_name_the_owner_pass(dialect: str) -> None:
    mine = tasks.c.owner_id == 7
    count = sa.select(sa.literal(1)).select_from(tasks).where(mine).subquery()
    confined = [
        sa.select(tasks).where(mine, tasks.c.title_key.like("%a\\%%", escape="\\")),
        sa.select(sa.func.count()).select_from(count),
        _listing(tasks.c.owner_id == 7),
        sa.insert(tasks).values(owner_id=7, title="x"),
        sa.update(projects).where(projects.c.owner_id == 7).values(name="n"),
        sa.delete(keys).where(keys.c.owner_id == 7, keys.c.key == "k"),
        sa.select(api_tokens).where(api_tokens.c.secret_hash == "h"),  # not owned
    ]
    for statement in confined:
        assert _problems(statement, dialect) == (), statement


def test_an_update_or_delete_by_id_alone_is_caught(dialect: str) -> None:
    by_id = tasks.c.id == 1
    assert _problems(sa.delete(tasks).where(by_id), dialect) == (
        "DELETE of tasks without tasks.owner_id = value",
    )
    assert _problems(sa.update(tasks).where(by_id).values(title="x"), dialect) == (
        "UPDATE of tasks without tasks.owner_id = value",
    )


def test_an_owner_test_under_an_or_does_not_confine_a_statement(dialect: str) -> None:
    either = sa.or_(projects.c.owner_id == 1, projects.c.id == 2)
    assert _problems(sa.select(projects).where(either), dialect) == (
        "SELECT from projects without projects.owner_id = value",
    )


def test_one_stretch_of_a_listing_without_the_owner_is_caught(dialect: str) -> None:
    assert _problems(_listing(tasks.c.id > 5), dialect) == (
        "SELECT from tasks without tasks.owner_id = value",
    )


def test_a_join_to_an_owned_table_must_name_its_owner_too(dialect: str) -> None:
    joined = sa.select(tasks.c.id).join_from(
        tasks, projects, tasks.c.project_id == projects.c.id
    )
    assert _problems(joined.where(tasks.c.owner_id == 1), dialect) == (
        "SELECT from projects without projects.owner_id = value",
    )


def test_an_insert_without_the_owner_is_caught(dialect: str) -> None:
    assert _problems(sa.insert(tasks).values(title="x"), dialect) == (
        "INSERT into tasks without an owner_id value",
    )


def test_an_update_that_sets_the_owner_is_caught(dialect: str) -> None:
    moving = sa.update(tasks).where(tasks.c.owner_id == 1).values(owner_id=2)
    assert _problems(moving, dialect) == ("UPDATE of tasks that sets owner_id",)


def test_only_a_named_exception_may_span_owners(dialect: str) -> None:
    purge = sa.delete(keys).where(keys.c.expires_at <= sa.func.now())
    sql = str(purge.compile(dialect=DIALECTS[dialect]))
    name = "purge-expired-idempotency-keys"
    assert name in CROSS_OWNER_STATEMENTS
    audit = StatementAudit(
        [
            Statement(sql, dialect, cross_owner=name),
            Statement(sql, dialect, cross_owner="just-this-once"),
            Statement(sql, dialect, cross_owner=None),
        ]
    )

    violations = audit.violations()

    assert len(violations) == 2
    assert "(unknown exception 'just-this-once')" in violations[0]
    assert violations[1].startswith("DELETE of idempotency_keys without")


def test_sql_the_parser_cannot_read_is_reported_not_passed() -> None:
    problems = owner_problems("DELETE FROM tasks WHERE ((", "sqlite")
    assert len(problems) == 1
    assert problems[0].startswith("unparsable, so unchecked")
