"""The schema comes from Alembic alone, and it is exactly what the adapters expect."""

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.sqlalchemy.tables import metadata
from tests.databases import migrate


async def _inspect(url: str, look: Any) -> Any:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(look)
    finally:
        await engine.dispose()


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
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
