"""TASKHUB_SQLITE_SYNCHRONOUS reaches every SQLite connection of the service."""

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from entrypoints.container import build_container
from tests.conftest import test_settings

# What `PRAGMA synchronous` answers for each level.
LEVELS = {"full": 2, "normal": 1}


async def pragmas(engine: AsyncEngine) -> tuple[str, int]:
    async with engine.connect() as connection:
        journal = (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar()
        level = (await connection.exec_driver_sql("PRAGMA synchronous")).scalar()
    return journal, level


@pytest.mark.parametrize("setting", [None, "full", "normal"])
async def test_sqlite_syncs_each_commit_unless_told_otherwise(
    tmp_path: Path, setting: str | None
) -> None:
    overrides = {} if setting is None else {"sqlite_synchronous": setting}
    url = f"sqlite+aiosqlite:///{tmp_path}/taskhub.db"
    container = build_container(test_settings(url, **overrides))
    try:
        journal, level = await pragmas(container.engine())
    finally:
        await container.engine().dispose()

    assert journal == "wal"
    assert level == LEVELS[setting or "full"]


def test_another_level_is_refused_by_the_settings() -> None:
    with pytest.raises(ValueError, match="sqlite_synchronous"):
        test_settings("sqlite:///x.db", sqlite_synchronous="off")
