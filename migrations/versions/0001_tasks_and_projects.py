"""Tasks and projects.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 64-bit identities on PostgreSQL; SQLite only autoincrements INTEGER PRIMARY KEY.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)
# Casefolded keys sort by code point on every database (see adapters' tables.py).
Key = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", Id, sa.Identity(), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("name_key", Key, nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_projects"),
        sa.UniqueConstraint("name_key", name="uq_projects_name_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_projects_archived", "projects", ["archived"])
    op.create_index("ix_projects_created_at_id", "projects", ["created_at", "id"])
    op.create_index("ix_projects_updated_at_id", "projects", ["updated_at", "id"])

    op.create_table(
        "tasks",
        sa.Column("id", Id, sa.Identity(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("title_key", Key, nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("completed_at", Timestamp, nullable=True),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("project_id", Id, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tasks"),
        sa.CheckConstraint("priority BETWEEN 1 AND 4", name="ck_tasks_priority_rank"),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name="fk_tasks_project_id_projects",
            ondelete="RESTRICT",
        ),
        sqlite_autoincrement=True,
    )
    for columns in (
        ["done", "id"],
        ["project_id", "id"],
        ["priority", "id"],
        ["due_date", "id"],
        ["title_key", "id"],
        ["created_at", "id"],
        ["updated_at", "id"],
    ):
        op.create_index(f"ix_tasks_{'_'.join(columns)}", "tasks", columns)


def downgrade() -> None:
    op.drop_table("tasks")
    op.drop_table("projects")
