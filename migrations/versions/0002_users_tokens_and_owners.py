"""Users, API tokens, and an owner for every project and task.

Rows from before this revision are kept: if there are any, they all go to a
new user named `owner-of-existing-data` (as no other user exists yet), whose
tokens `taskhub tokens create owner-of-existing-data` issues.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EXISTING_DATA_OWNER = "owner-of-existing-data"

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)

# SQLite rebuilds a table to alter it; the copy must not start reusing ids.
KEEP_AUTOINCREMENT: dict[str, Any] = {"table_kwargs": {"sqlite_autoincrement": True}}

TASK_INDEXES = ["done", "project_id", "priority", "due_date", "title_key"]
TASK_INDEXES += ["created_at", "updated_at"]


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", Id, sa.Identity(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("name", name="uq_users_name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", Id, sa.Identity(), nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=True),
        sa.Column("last_used_at", Timestamp, nullable=True),
        sa.Column("revoked_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_api_tokens_user_id_users",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("secret_hash", name="uq_api_tokens_secret_hash"),
        sa.UniqueConstraint("prefix", name="uq_api_tokens_prefix"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_api_tokens_user_id_id", "api_tokens", ["user_id", "id"])

    owner_id = _owner_of_existing_data()

    for table in ("projects", "tasks"):
        op.add_column(table, sa.Column("owner_id", Id, nullable=True))
        if owner_id is not None:
            op.execute(sa.text(f"UPDATE {table} SET owner_id = {int(owner_id)}"))

    with op.batch_alter_table("projects", **KEEP_AUTOINCREMENT) as batch:
        batch.alter_column("owner_id", existing_type=Id, nullable=False)
        batch.create_foreign_key(
            "fk_projects_owner_id_users", "users", ["owner_id"], ["id"],
            ondelete="RESTRICT",
        )  # fmt: skip
        batch.drop_constraint("uq_projects_name_key", type_="unique")
        batch.create_unique_constraint(
            "uq_projects_owner_id_name_key", ["owner_id", "name_key"]
        )
        batch.create_unique_constraint("uq_projects_id_owner_id", ["id", "owner_id"])
        for column in ("archived", "created_at", "updated_at"):
            old = "ix_projects_archived" if column == "archived" else None
            batch.drop_index(old or f"ix_projects_{column}_id")
            batch.create_index(
                f"ix_projects_owner_id_{column}_id", ["owner_id", column, "id"]
            )

    with op.batch_alter_table("tasks", **KEEP_AUTOINCREMENT) as batch:
        batch.alter_column("owner_id", existing_type=Id, nullable=False)
        batch.create_foreign_key(
            "fk_tasks_owner_id_users", "users", ["owner_id"], ["id"],
            ondelete="RESTRICT",
        )  # fmt: skip
        batch.drop_constraint("fk_tasks_project_id_projects", type_="foreignkey")
        batch.create_foreign_key(
            "fk_tasks_project_owner", "projects",
            ["project_id", "owner_id"], ["id", "owner_id"],
            ondelete="RESTRICT",
        )  # fmt: skip
        for column in TASK_INDEXES:
            batch.drop_index(f"ix_tasks_{column}_id")
            batch.create_index(
                f"ix_tasks_owner_id_{column}_id", ["owner_id", column, "id"]
            )


def _owner_of_existing_data() -> int | None:
    """Create the owner of the rows already here, if there are any."""
    bind = op.get_bind()
    has_rows = bind.execute(
        sa.text(
            "SELECT EXISTS (SELECT 1 FROM projects) OR EXISTS (SELECT 1 FROM tasks)"
        )
    ).scalar_one()
    if not has_rows:
        return None
    bind.execute(
        sa.text("INSERT INTO users (name, created_at) VALUES (:name, :now)"),
        {"name": EXISTING_DATA_OWNER, "now": _now(bind)},
    )
    return int(
        bind.execute(
            sa.text("SELECT id FROM users WHERE name = :name"),
            {"name": EXISTING_DATA_OWNER},
        ).scalar_one()
    )


def _now(bind: sa.Connection) -> object:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    # SQLite keeps naive UTC text, as the adapter's UTCDateTime writes it.
    return now.replace(tzinfo=None) if bind.dialect.name == "sqlite" else now


def downgrade() -> None:
    """Back to one shared set of rows. Fails if two owners share a project name."""
    with op.batch_alter_table("tasks", **KEEP_AUTOINCREMENT) as batch:
        for column in TASK_INDEXES:
            batch.drop_index(f"ix_tasks_owner_id_{column}_id")
            batch.create_index(f"ix_tasks_{column}_id", [column, "id"])
        batch.drop_constraint("fk_tasks_project_owner", type_="foreignkey")
        batch.drop_constraint("fk_tasks_owner_id_users", type_="foreignkey")
        batch.create_foreign_key(
            "fk_tasks_project_id_projects", "projects", ["project_id"], ["id"],
            ondelete="RESTRICT",
        )  # fmt: skip
        batch.drop_column("owner_id")

    with op.batch_alter_table("projects", **KEEP_AUTOINCREMENT) as batch:
        for column in ("archived", "created_at", "updated_at"):
            batch.drop_index(f"ix_projects_owner_id_{column}_id")
            if column == "archived":
                batch.create_index("ix_projects_archived", ["archived"])
            else:
                batch.create_index(f"ix_projects_{column}_id", [column, "id"])
        batch.drop_constraint("uq_projects_id_owner_id", type_="unique")
        batch.drop_constraint("uq_projects_owner_id_name_key", type_="unique")
        batch.drop_constraint("fk_projects_owner_id_users", type_="foreignkey")
        batch.create_unique_constraint("uq_projects_name_key", ["name_key"])
        batch.drop_column("owner_id")

    op.drop_table("api_tokens")
    op.drop_table("users")
