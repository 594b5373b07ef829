"""Explicit data mappers between rows and entities, and integrity-error naming."""

from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from adapters.sqlalchemy.tables import metadata
from application.ports import IdempotencyRecord, StoredResponse
from domain.errors import DomainError
from domain.projects import Project
from domain.tasks import Task
from domain.users import ApiToken, User
from domain.values import Priority

# The columns a new task's row fills, in the order of `task_to_values`; the
# id is left to the database's sequence.
TASK_COLUMNS = (
    "owner_id",
    "title",
    "title_key",
    "description",
    "done",
    "completed_at",
    "priority",
    "due_date",
    "project_id",
    "created_at",
    "updated_at",
    "version",
)


def task_to_values(task: Task) -> tuple[Any, ...]:
    """A task's row as values in TASK_COLUMNS order (what COPY takes)."""
    return (
        task.owner_id,
        task.title,
        task.title_key,
        task.description,
        task.done,
        task.completed_at,
        task.priority.rank,
        task.due_date,
        task.project_id,
        task.created_at,
        task.updated_at,
        task.version,
    )


def task_to_row(task: Task) -> dict[str, Any]:
    return dict(zip(TASK_COLUMNS, task_to_values(task), strict=True))


def task_to_entity(row: sa.Row[Any]) -> Task:
    return Task(
        id=row.id,
        title=row.title,
        description=row.description,
        done=row.done,
        completed_at=row.completed_at,
        priority=Priority.from_rank(row.priority),
        due_date=row.due_date,
        project_id=row.project_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
        owner_id=row.owner_id,
    )


def project_to_row(project: Project) -> dict[str, Any]:
    return {
        "owner_id": project.owner_id,
        "name": project.name,
        "name_key": project.name_key,
        "description": project.description,
        "archived": project.archived,
        "created_at": project.created_at,
        "updated_at": project.updated_at,
        "version": project.version,
    }


def project_to_entity(row: sa.Row[Any]) -> Project:
    return Project(
        id=row.id,
        name=row.name,
        description=row.description,
        archived=row.archived,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
        owner_id=row.owner_id,
    )


def user_to_entity(row: sa.Row[Any]) -> User:
    return User(id=row.id, name=row.name, created_at=row.created_at)


def token_to_row(token: ApiToken) -> dict[str, Any]:
    return {
        "user_id": token.user_id,
        "name": token.name,
        "prefix": token.prefix,
        "secret_hash": token.secret_hash,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
    }


def token_to_entity(row: sa.Row[Any]) -> ApiToken:
    return ApiToken(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        prefix=row.prefix,
        secret_hash=row.secret_hash,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def idempotency_to_row(record: IdempotencyRecord) -> dict[str, Any]:
    response = record.response
    return {
        "owner_id": record.owner_id,
        "key": record.key,
        "claim": record.claim,
        "fingerprint": record.fingerprint,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "locked_until": record.locked_until,
        "response_status": None if response is None else response.status,
        "response_headers": None if response is None else list(response.headers),
        "response_body": None if response is None else response.body,
    }


def idempotency_to_record(row: sa.Row[Any]) -> IdempotencyRecord:
    response = None
    if row.response_status is not None:
        response = StoredResponse(
            status=row.response_status,
            headers=tuple((name, value) for name, value in row.response_headers),
            body=bytes(row.response_body),
        )
    return IdempotencyRecord(
        owner_id=row.owner_id,
        key=row.key,
        claim=row.claim,
        fingerprint=row.fingerprint,
        created_at=row.created_at,
        expires_at=row.expires_at,
        locked_until=row.locked_until,
        response=response,
    )


def _unique_constraints_by_columns() -> dict[str, str]:
    # SQLite names the columns, not the constraint: "UNIQUE constraint failed: t.c".
    names = {}
    for table in metadata.tables.values():
        for constraint in table.constraints:
            unique = (sa.UniqueConstraint, sa.PrimaryKeyConstraint)
            if isinstance(constraint, unique) and constraint.name:
                columns = ", ".join(
                    f"{table.name}.{c.name}" for c in constraint.columns
                )
                names[columns] = str(constraint.name)
    return names


_UNIQUE_BY_COLUMNS = _unique_constraints_by_columns()


ConstraintErrors = Mapping[str, Callable[[], DomainError]]


def raise_for_constraint(error: IntegrityError, errors: ConstraintErrors) -> NoReturn:
    """Re-raise `error` as the domain error mapped to the constraint it broke.

    `errors` maps constraint names to domain errors. SQLite does not say which
    foreign key failed, so there the one foreign key among `errors` is meant.
    """
    # asyncpg's own error, or the one SQLAlchemy's adapter wrapped it in.
    cause = getattr(error.orig, "__cause__", None)
    name: str | None = getattr(error.orig, "constraint_name", None) or getattr(
        cause, "constraint_name", None
    )
    message = str(error.orig)
    if name is None and message.startswith("UNIQUE constraint failed: "):
        name = _UNIQUE_BY_COLUMNS.get(
            message.removeprefix("UNIQUE constraint failed: ")
        )
    if name is None and message.startswith("FOREIGN KEY constraint failed"):
        foreign_keys = [key for key in errors if key.startswith("fk_")]
        name = foreign_keys[0] if len(foreign_keys) == 1 else None
    if name is not None and name in errors:
        raise errors[name]() from error
    raise error
