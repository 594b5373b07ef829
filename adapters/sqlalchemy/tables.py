"""The schema the SQL adapter expects. Alembic's migrations must produce exactly this.

Constraints carry names (see NAMING) so an IntegrityError maps to a domain error
by name. `name_key` / `title_key` hold the casefolded text that uniqueness, `q`
and sorting use, so every database compares text the way the domain does.

The schema is shaped for sharding by owner (Citus's multi-tenant pattern, see
docs/scaling.md): OWNED_TABLES hold one owner's rows each, every statement on
them names the owner, and every primary key, unique constraint and foreign key
on them includes owner_id. On PostgreSQL the primary keys of projects and tasks
are (owner_id, id); SQLite keeps `id` alone as the primary key, because only an
INTEGER PRIMARY KEY column autoincrements there. SQLAlchemy's view below is
SQLite's; Alembic does not compare primary keys, so a test checks both.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING)

# 64-bit identities on PostgreSQL; SQLite only autoincrements INTEGER PRIMARY KEY.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Keys sort by code point everywhere: SQLite's BINARY, PostgreSQL's "C" collation
# (a database's default collation may be language-aware), Python's str order.
Key = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def _postgresql_only(index: sa.Index) -> sa.Index:
    """An index only PostgreSQL has: created there alone, compared there alone."""
    index.info["only_on"] = "postgresql"
    return index.ddl_if(dialect="postgresql")


def _sqlite_only(constraint: sa.UniqueConstraint) -> sa.UniqueConstraint:
    """A constraint only SQLite has: PostgreSQL's primary key already is one."""
    constraint.info["only_on"] = "sqlite"
    return constraint.ddl_if(dialect="sqlite")


def schema_filter(dialect: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """Alembic's include_object for `dialect`: leaves out what it does not have."""

    def include(
        item: Any, name: str | None, kind: str, reflected: bool, to: Any
    ) -> bool:
        return bool(item.info.get("only_on", dialect) == dialect)

    return include


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, also on SQLite, which stores no offset."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[Any], datetime | None]:
        chained = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite" or chained is None:
            return chained  # type: ignore[return-value]

        # SQLite hands back the text that the bind wrote ("2026-11-23
        # 21:17:00.123456", UTC). The C parser, with the offset appended,
        # reads it in 0.4 µs; SQLAlchemy's regex and then replace(tzinfo=)
        # took 1.8 µs, three times a row: a page of 21 rows converted in
        # 81 µs before, 31 now.
        def process(value: Any) -> datetime | None:
            if value is None:
                return None
            try:
                parsed = datetime.fromisoformat(value + "+00:00")
            except (TypeError, ValueError):
                parsed = None
            if parsed is None or parsed.tzinfo is None:  # not that text
                return chained(value)
            return parsed

        return process

    def process_result_value(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


users = sa.Table(
    "users",
    metadata,
    sa.Column("id", Id, sa.Identity(), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("name"),
    sqlite_autoincrement=True,
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", Id, sa.Identity(), primary_key=True),
    sa.Column(
        "user_id", Id, sa.ForeignKey(users.c.id, ondelete="CASCADE"), nullable=False
    ),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("prefix", sa.String(32), nullable=False),
    # SHA-256 of the secret, hex: the secret itself is never stored.
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime()),
    sa.Column("last_used_at", UTCDateTime()),
    sa.Column("revoked_at", UTCDateTime()),
    sa.UniqueConstraint("secret_hash"),
    sa.UniqueConstraint("prefix"),
    sa.Index(None, "user_id", "id"),
    sqlite_autoincrement=True,
)

# Every index of an owner's data leads with owner_id: every query filters on it.
projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", Id, sa.Identity(), primary_key=True),
    sa.Column(
        "owner_id", Id, sa.ForeignKey(users.c.id, ondelete="RESTRICT"), nullable=False
    ),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("name_key", Key, nullable=False),
    sa.Column("description", sa.Text()),
    sa.Column("archived", sa.Boolean(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.UniqueConstraint("owner_id", "name_key"),
    # The target of tasks' (project_id, owner_id) foreign key on SQLite; on
    # PostgreSQL the primary key (owner_id, id) is.
    _sqlite_only(sa.UniqueConstraint("id", "owner_id")),
    sa.Index(None, "owner_id", "archived", "id"),
    sa.Index(None, "owner_id", "created_at", "id"),
    sa.Index(None, "owner_id", "updated_at", "id"),
    # `q` is a substring match: only trigrams (pg_trgm) find one without a scan.
    _postgresql_only(
        sa.Index(
            "ix_projects_name_key_trgm",
            "name_key",
            postgresql_using="gin",
            postgresql_ops={"name_key": "gin_trgm_ops"},
        )
    ),
    sqlite_autoincrement=True,  # never reuse a deleted project's id
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", Id, sa.Identity(), primary_key=True),
    sa.Column(
        "owner_id", Id, sa.ForeignKey(users.c.id, ondelete="RESTRICT"), nullable=False
    ),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("title_key", Key, nullable=False),
    sa.Column("description", sa.Text()),
    sa.Column("done", sa.Boolean(), nullable=False),
    sa.Column("completed_at", UTCDateTime()),
    # Priority rank, 1 (low) to 4 (urgent), so sorting by it is sorting by rank.
    sa.Column("priority", sa.SmallInteger(), nullable=False),
    sa.Column("due_date", sa.Date()),
    sa.Column("project_id", Id),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.CheckConstraint("priority BETWEEN 1 AND 4", name="priority_rank"),
    # A task's project must be a project of the same owner, even under races.
    sa.ForeignKeyConstraint(
        ["project_id", "owner_id"],
        [projects.c.id, projects.c.owner_id],
        name="fk_tasks_project_owner",
        ondelete="RESTRICT",
    ),
    sa.Index(None, "owner_id", "done", "id"),
    sa.Index(None, "owner_id", "project_id", "id"),
    sa.Index(None, "owner_id", "priority", "id"),
    sa.Index(None, "owner_id", "due_date", "id"),
    sa.Index(None, "owner_id", "title_key", "id"),
    sa.Index(None, "owner_id", "created_at", "id"),
    sa.Index(None, "owner_id", "updated_at", "id"),
    _postgresql_only(
        sa.Index(
            "ix_tasks_title_key_trgm",
            "title_key",
            postgresql_using="gin",
            postgresql_ops={"title_key": "gin_trgm_ops"},
        )
    ),
    sqlite_autoincrement=True,  # never reuse a deleted task's id
)

# Keys the service makes for itself, shared by every worker on the database:
# a migration writes each once (e.g. the one that signs list cursors).
service_secrets = sa.Table(
    "service_secrets",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("secret", sa.String(128), nullable=False),
)

# The first response to each (owner, Idempotency-Key), replayed to retries.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column(
        "owner_id",
        Id,
        sa.ForeignKey(users.c.id, ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("claim", sa.String(32), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("locked_until", UTCDateTime(), nullable=False),
    sa.Column("response_status", sa.SmallInteger()),
    sa.Column("response_headers", sa.JSON()),
    sa.Column("response_body", sa.LargeBinary()),
    sa.Index(None, "expires_at"),
)

# The tables whose rows belong to one owner: distributed by owner_id on Citus.
# users, api_tokens and service_secrets are reference tables (docs/scaling.md).
OWNED_TABLES: Final = frozenset({"projects", "tasks", "idempotency_keys"})
# The primary key each owned table has on PostgreSQL: the owner leads.
POSTGRESQL_PRIMARY_KEYS: Final = {
    "projects": ("owner_id", "id"),
    "tasks": ("owner_id", "id"),
    "idempotency_keys": ("owner_id", "key"),
}

# Statements on owned tables that may span owners, by the name a statement
# carries in its CROSS_OWNER execution option, with the reason. Anything else
# without an owner predicate fails tests/api's statement audit.
CROSS_OWNER: Final = "taskhub_cross_owner"
CROSS_OWNER_STATEMENTS: Final = {
    "purge-expired-idempotency-keys": (
        "Maintenance, once per PURGE_EVERY per process: deletes every owner's"
        " expired keys in one statement, which Citus runs on all shards in"
        " parallel. Per owner it would need the list of owners first."
    ),
    "kept-ids-unique-across-owners": (
        "Only `taskhub import --keep-ids`: a kept id must not repeat under"
        " another owner, which the (owner_id, id) primary key allows."
    ),
}
