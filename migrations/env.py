"""Alembic environment: async, one code path for SQLite and PostgreSQL.

The database URL comes from `config.attributes["url"]` when `taskhub db` runs
Alembic, and from the service's settings (TASKHUB_DATABASE_URL) otherwise.
"""

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.sqlalchemy.engine import PGBOUNCER_TRANSACTION, pooler_connect_args
from adapters.sqlalchemy.tables import metadata, schema_filter

config = context.config


def _url() -> str:
    url = config.attributes.get("url")
    if url is None:
        from entrypoints.settings import Settings

        url = Settings().database_url
    return str(url)


def _configure(**options: object) -> None:
    context.configure(
        target_metadata=metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
        # SQLite can roll DDL back too: a failed migration leaves nothing half done.
        transactional_ddl=True,
        **options,
    )


def _run(connection: Connection) -> None:
    _configure(
        connection=connection, include_object=schema_filter(connection.dialect.name)
    )
    with context.begin_transaction():
        context.run_migrations()


def _connect_args() -> dict[str, object]:
    pooler = config.attributes.get("pooler")
    if pooler is None:
        from entrypoints.settings import Settings

        pooler = Settings().database_pooler
    if pooler == PGBOUNCER_TRANSACTION and _url().startswith("postgresql"):
        return pooler_connect_args()
    return {}


async def _run_online() -> None:
    engine = create_async_engine(
        _url(), poolclass=pool.NullPool, connect_args=_connect_args()
    )
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    _configure(url=_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
