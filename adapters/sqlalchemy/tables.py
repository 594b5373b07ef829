"""The schema the SQL adapter expects. Alembic's migrations must produce exactly this.

Constraints carry names (see NAMING) so an IntegrityError maps to a domain error
by name. `name_key` / `title_key` hold the casefolded text that uniqueness, `q`
and sorting use, so every database compares text the way the domain does.
"""

from datetime import UTC, datetime
from typing import Any

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


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, also on SQLite, which stores no offset."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", Id, sa.Identity(), primary_key=True),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("name_key", Key, nullable=False),
    sa.Column("description", sa.Text()),
    sa.Column("archived", sa.Boolean(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.UniqueConstraint("name_key"),
    sa.Index(None, "archived"),
    sa.Index(None, "created_at", "id"),
    sa.Index(None, "updated_at", "id"),
    sqlite_autoincrement=True,  # never reuse a deleted project's id
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", Id, sa.Identity(), primary_key=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("title_key", Key, nullable=False),
    sa.Column("description", sa.Text()),
    sa.Column("done", sa.Boolean(), nullable=False),
    sa.Column("completed_at", UTCDateTime()),
    # Priority rank, 1 (low) to 4 (urgent), so sorting by it is sorting by rank.
    sa.Column("priority", sa.SmallInteger(), nullable=False),
    sa.Column("due_date", sa.Date()),
    sa.Column("project_id", Id, sa.ForeignKey(projects.c.id, ondelete="RESTRICT")),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.CheckConstraint("priority BETWEEN 1 AND 4", name="priority_rank"),
    sa.Index(None, "done", "id"),
    sa.Index(None, "project_id", "id"),
    sa.Index(None, "priority", "id"),
    sa.Index(None, "due_date", "id"),
    sa.Index(None, "title_key", "id"),
    sa.Index(None, "created_at", "id"),
    sa.Index(None, "updated_at", "id"),
    sqlite_autoincrement=True,  # never reuse a deleted task's id
)
