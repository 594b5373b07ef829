from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.databases import fresh_postgres_database, postgres_server


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database with no schema at all, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('empty')}/empty.db"
        return
    with (
        postgres_server() as server,
        fresh_postgres_database(server, migrated=False) as url,
    ):
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server_database_url(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    """A database for a served taskhub to migrate: a SQLite file, or PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/taskhub.db"  # a plain URL, as a user writes it
        return
    with (
        postgres_server() as server,
        fresh_postgres_database(server, migrated=False) as url,
    ):
        yield url
