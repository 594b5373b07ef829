"""The migrated schema is one Citus could distribute by owner (docs/scaling.md)."""

from typing import Any

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.sqlalchemy.tables import OWNED_TABLES, POSTGRESQL_PRIMARY_KEYS, metadata
from domain.errors import InvalidValue, ProjectHasTasks, ProjectNameTaken
from domain.projects import Project
from domain.tasks import Task
from entrypoints.container import build_container
from tests.conftest import test_settings
from tests.databases import migrate
from tests.fakes import TickingClock


async def _inspect(url: str, look: Any) -> Any:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(look)
    finally:
        await engine.dispose()


def _keys(connection: Connection) -> dict[str, dict[str, Any]]:
    """Per owned table: its primary key, unique constraints and foreign keys."""
    inspector = inspect(connection)
    return {
        table: {
            "primary": tuple(inspector.get_pk_constraint(table)["constrained_columns"]),
            "unique": {
                u["name"]: u["column_names"]
                for u in inspector.get_unique_constraints(table)
            },
            "foreign": {
                f["name"]: (f["constrained_columns"], f["referred_columns"])
                for f in inspector.get_foreign_keys(table)
            },
        }
        for table in OWNED_TABLES
    }


async def test_every_key_of_an_owned_table_on_postgresql_includes_the_owner(
    empty_database_url: str,
) -> None:
    migrate(empty_database_url)
    keys = await _inspect(empty_database_url, _keys)
    postgresql = empty_database_url.startswith("postgresql")

    for table, found in keys.items():
        if postgresql:
            assert found["primary"] == POSTGRESQL_PRIMARY_KEYS[table], table
        for name, columns in found["unique"].items():
            assert "owner_id" in columns, f"{table}.{name} lacks owner_id"
        for name, (columns, referred) in found["foreign"].items():
            # To users (a reference table) by owner_id itself, or owner to owner.
            assert "owner_id" in columns, f"{table}.{name} lacks owner_id"
            if referred != ["id"]:
                at = columns.index("owner_id")
                assert referred[at] == "owner_id", f"{table}.{name}: {referred}"
    # SQLite's id autoincrements only as the primary key alone (see tables.py).
    if not postgresql:
        assert keys["projects"]["primary"] == ("id",)
        assert keys["tasks"]["primary"] == ("id",)


def test_the_metadata_names_every_owned_table_and_its_owner_column() -> None:
    for table in OWNED_TABLES:
        assert "owner_id" in metadata.tables[table].c, table


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


async def test_constraint_errors_still_map_to_domain_errors_after_the_new_keys(
    database_url: str,
) -> None:
    """The constraints an owner's writes break keep the names the adapters map."""
    clock = TickingClock()
    container = build_container(test_settings(database_url))
    try:
        owner = await container.identity_service().ensure_user("alice")
        at = clock.now()
        async with container.unit_of_work(owner_id=owner) as uow:
            project = Project.create("Launch", None, at)
            await uow.projects.add(project)
            assert project.id is not None
            await uow.tasks.add(Task.create("In it", at, project_id=project.id))
            await uow.commit()
        async with container.unit_of_work(owner_id=owner) as uow:
            with pytest.raises(ProjectNameTaken):
                await uow.projects.add(Project.create("LAUNCH", None, at))
        async with container.unit_of_work(owner_id=owner) as uow:
            with pytest.raises(ProjectHasTasks):
                await uow.projects.remove(project.id)
        async with container.unit_of_work(owner_id=owner) as uow:
            orphan = Task.create("Orphan", at, project_id=project.id + 1000)
            with pytest.raises(InvalidValue):
                await uow.tasks.add(orphan)
        # Another owner's project id is no project of mine, even at the database.
        other = await container.identity_service().ensure_user("bob")
        async with container.unit_of_work(owner_id=other) as uow:
            theirs = Task.create("Theirs", at, project_id=project.id)
            with pytest.raises(InvalidValue):
                await uow.tasks.add(theirs)
    finally:
        await container.engine().dispose()
