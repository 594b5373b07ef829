"""A key to sign list cursors with; trigram indexes for `q` on PostgreSQL.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGRAM_INDEXES = (
    ("ix_tasks_title_key_trgm", "tasks", "title_key"),
    ("ix_projects_name_key_trgm", "projects", "name_key"),
)


def upgrade() -> None:
    table = op.create_table(
        "service_secrets",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_service_secrets"),
    )
    # Made here, once per database, so every worker and host that serves it
    # signs with the same key and nobody has to configure one.
    op.bulk_insert(table, [{"name": "cursors", "secret": secrets.token_hex(32)}])
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite scans for a substring either way
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, table_name, column in TRIGRAM_INDEXES:
        op.create_index(
            name,
            table_name,
            [column],
            postgresql_using="gin",
            postgresql_ops={column: "gin_trgm_ops"},
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, table_name, _ in TRIGRAM_INDEXES:
            op.drop_index(name, table_name=table_name)
        # The extension stays: other schemas in the database may use it.
    op.drop_table("service_secrets")
