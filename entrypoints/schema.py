"""Is the database's schema the one this code expects?"""

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations

MIGRATIONS = Path(migrations.__file__).parent

# Alembic's bookkeeping table; read directly, since loading Alembic in every
# server process would cost more memory than the whole check.
_VERSIONS = sa.table("alembic_version", sa.column("version_num", sa.String))


def _current(connection: Connection) -> set[str]:
    if not sa.inspect(connection).has_table(_VERSIONS.name):
        return set()
    return set(connection.execute(sa.select(_VERSIONS.c.version_num)).scalars())


def _problem(connection: Connection) -> str | None:
    current = _current(connection)
    if current == {migrations.HEAD}:
        return None
    at = ", ".join(sorted(current)) or "no revision (an empty database)"
    return (
        f"The database is at {at}, but this taskhub needs {migrations.HEAD}."
        " Run `taskhub db upgrade` first."
    )


async def schema_problem(engine: AsyncEngine) -> str | None:
    """Why the database cannot be served as it is, or None when it is at head."""
    async with engine.connect() as connection:
        return await connection.run_sync(_problem)
