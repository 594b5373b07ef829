"""Primary keys (owner_id, id) for projects and tasks on PostgreSQL.

Citus distributes a table only if its primary key and unique constraints include
the distribution column; owner_id is ours (docs/scaling.md). Tasks' foreign key
to their project, already (project_id, owner_id), now points at the new primary
key, and projects' unique (id, owner_id), which it pointed at, goes.

SQLite keeps `id` alone as the primary key: only an INTEGER PRIMARY KEY column
autoincrements there, and an embedded database is never sharded.

On a large database this rewrites both primary key indexes under an exclusive
lock; build unique indexes CONCURRENTLY beforehand and swap them in with
`ADD CONSTRAINT ... PRIMARY KEY USING INDEX` to shorten it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _postgresql() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def _recreate_project_foreign_key() -> None:
    op.create_foreign_key(
        "fk_tasks_project_owner", "tasks", "projects",
        ["project_id", "owner_id"], ["id", "owner_id"],
        ondelete="RESTRICT",
    )  # fmt: skip


def upgrade() -> None:
    if not _postgresql():
        return
    # The foreign key depends on the unique index it references: off first.
    op.drop_constraint("fk_tasks_project_owner", "tasks", type_="foreignkey")
    op.drop_constraint("uq_projects_id_owner_id", "projects", type_="unique")
    for table in ("projects", "tasks"):
        op.drop_constraint(f"pk_{table}", table, type_="primary")
        op.create_primary_key(f"pk_{table}", table, ["owner_id", "id"])
    _recreate_project_foreign_key()


def downgrade() -> None:
    if not _postgresql():
        return
    op.drop_constraint("fk_tasks_project_owner", "tasks", type_="foreignkey")
    for table in ("projects", "tasks"):
        op.drop_constraint(f"pk_{table}", table, type_="primary")
        op.create_primary_key(f"pk_{table}", table, ["id"])
    op.create_unique_constraint(
        "uq_projects_id_owner_id", "projects", ["id", "owner_id"]
    )
    _recreate_project_foreign_key()
