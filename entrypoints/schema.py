"""Is the database's schema the one this code expects? Alembic says."""

from functools import cache
from pathlib import Path

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations

MIGRATIONS = Path(migrations.__file__).parent


@cache
def _heads() -> frozenset[str]:
    """The migrations' heads: read once, since /readyz asks on every probe."""
    return frozenset(ScriptDirectory(str(MIGRATIONS)).get_heads())


def _problem(connection: Connection) -> str | None:
    heads = _heads()
    current = set(MigrationContext.configure(connection).get_current_heads())
    if current == heads:
        return None
    at = ", ".join(sorted(current)) or "no revision (an empty database)"
    return (
        f"The database is at {at}, but this taskhub needs {', '.join(sorted(heads))}."
        " Run `taskhub db upgrade` first."
    )


async def schema_problem(engine: AsyncEngine) -> str | None:
    """Why the database cannot be served as it is, or None when it is at head."""
    async with engine.connect() as connection:
        return await connection.run_sync(_problem)
