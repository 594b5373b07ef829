"""The schema comes from Alembic alone, and it is exactly what the adapters expect."""

from datetime import UTC, datetime
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import migrations
from adapters.sqlalchemy.tables import metadata, schema_filter
from domain.values import Priority
from entrypoints.container import build_container
from entrypoints.http.app import create_app
from entrypoints.schema import MIGRATIONS
from tests.conftest import test_settings
from tests.databases import direct, migrate


async def _inspect(url: str, look: Any) -> Any:
    engine = create_async_engine(direct(url))
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(look)
    finally:
        await engine.dispose()


def _diff(connection: Connection) -> list[Any]:
    # Each database compared with what it should have (PostgreSQL has more indexes).
    only_its_own = schema_filter(connection.dialect.name)
    options = {"compare_type": True, "include_object": only_its_own}
    context = MigrationContext.configure(connection, opts=options)
    return list(compare_metadata(context, metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_upgrading_an_empty_database_gives_exactly_the_adapters_schema(
    empty_database_url: str,
) -> None:
    migrate(empty_database_url)
    assert await _inspect(empty_database_url, _diff) == []


async def test_downgrading_to_base_removes_everything_and_upgrading_again_works(
    empty_database_url: str,
) -> None:
    migrate(empty_database_url)
    migrate(empty_database_url, "base", down=True)
    assert await _inspect(empty_database_url, _tables) <= {"alembic_version"}
    migrate(empty_database_url)
    assert {"tasks", "projects"} <= await _inspect(empty_database_url, _tables)


async def _insert_before_owners(url: str) -> None:
    """A project and a task as revision 0001 stored them."""
    engine = create_async_engine(direct(url))
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    if url.startswith("sqlite"):
        at = at.replace(tzinfo=None)  # SQLite stores naive UTC
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO projects (name, name_key, archived, created_at,"
                    " updated_at, version) VALUES ('Old', 'old', false, :at, :at, 3)"
                ),
                {"at": at},
            )
            await connection.execute(
                text(
                    "INSERT INTO tasks (title, title_key, done, priority, project_id,"
                    " created_at, updated_at, version)"
                    " VALUES ('Kept', 'kept', false, 4, 1, :at, :at, 2)"
                ),
                {"at": at},
            )
    finally:
        await engine.dispose()


async def test_rows_from_before_owners_survive_and_go_to_the_owner_of_existing_data(
    empty_database_url: str,
) -> None:
    migrate(empty_database_url, "0001")
    await _insert_before_owners(empty_database_url)
    migrate(empty_database_url)

    container = build_container(test_settings(empty_database_url))
    try:
        identity = container.identity_service()
        heir = await identity.ensure_user("owner-of-existing-data")
        stranger = await identity.ensure_user("stranger")
        async with container.unit_of_work(owner_id=heir) as uow:
            project = await uow.projects.get(1)
            task = await uow.tasks.get(1)
        async with container.unit_of_work(owner_id=stranger) as uow:
            assert await uow.tasks.get(1) is None
    finally:
        await container.engine().dispose()

    assert project is not None
    assert (project.name, project.version, project.owner_id) == ("Old", 3, heir)
    assert project.created_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert task is not None
    assert (task.title, task.priority, task.project_id) == ("Kept", Priority.URGENT, 1)
    assert (task.version, task.owner_id) == (2, heir)


async def test_an_empty_database_gets_no_owner_of_existing_data(
    empty_database_url: str,
) -> None:
    migrate(empty_database_url)

    def users(connection: Connection) -> list[Any]:
        return list(connection.execute(text("SELECT name FROM users")).all())

    assert await _inspect(empty_database_url, users) == []


async def test_the_app_refuses_to_start_on_a_database_that_is_not_at_head(
    empty_database_url: str,
) -> None:
    container = build_container(test_settings(empty_database_url))
    app = create_app(container)
    with pytest.raises(RuntimeError, match="Run `taskhub db upgrade` first"):
        async with app.router.lifespan_context(app):
            pass
    migrate(empty_database_url, "0001")
    with pytest.raises(RuntimeError, match="is at 0001"):
        async with app.router.lifespan_context(app):
            pass
    await container.engine().dispose()


def test_the_revision_the_service_checks_for_is_the_head_of_the_migrations() -> None:
    """migrations.HEAD spares the server Alembic; it must follow versions/."""
    heads = ScriptDirectory(str(MIGRATIONS)).get_heads()
    assert heads == [migrations.HEAD], (
        f"Set migrations.HEAD to {heads}: the service would refuse a database at"
        " the real head."
    )
