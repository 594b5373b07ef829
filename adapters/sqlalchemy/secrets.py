"""The service's own keys, which the migrations store in the database."""

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sqlalchemy.tables import service_secrets


async def read_secret(engine: AsyncEngine, name: str) -> bytes:
    """The key called `name`; the same for every process on this database."""
    statement = sa.select(service_secrets.c.secret).where(
        service_secrets.c.name == name
    )
    async with engine.connect() as connection:
        secret: str = (await connection.execute(statement)).scalar_one()
    return bytes.fromhex(secret)
