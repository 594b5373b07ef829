"""taskhub behind PgBouncer in transaction pooling mode (Debian's `pgbouncer`).

PgBouncer gives each transaction, and each statement outside one, whichever
of its server connections is free (two here, so that clients take turns on
them). The defaults break there, in two ways the first tests show;
TASKHUB_DATABASE_POOLER=pgbouncer-transaction is what makes it work.
"""

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import exc

from entrypoints.container import Container, build_container
from entrypoints.outages import database_unavailable
from tests.conftest import test_settings
from tests.databases import direct
from tests.pgbouncer import POOLER, pgbouncer

pytestmark = pytest.mark.postgres

UNITS = 100  # concurrent units of work: enough for clients to take turns


@pytest.fixture
def pool_size() -> int:
    """PgBouncer's server connections (a test may parametrize it)."""
    return 2


@pytest.fixture
def bouncer_url(postgres_url: str, pool_size: int) -> Iterator[str]:
    """The test's database through a PgBouncer with `pool_size` server connections."""
    with pgbouncer(direct(postgres_url), pool_size=pool_size) as bouncer:
        yield bouncer.url_for(direct(postgres_url))


def _container(url: str, **settings: Any) -> Container:
    return build_container(test_settings(url, database_pool_size=4, **settings))


@pytest.fixture
async def containers() -> AsyncIterator[list[Container]]:
    """Containers the test builds; their engines are disposed afterwards."""
    made: list[Container] = []
    yield made
    for container in made:
        if container.engine.initialized:
            await container.engine().dispose()


async def _read_and_write(container: Container, n: int) -> str:
    """One read-only and one writing unit of work; the statement timeout seen."""
    async with container.read_session_factory()() as session:
        await session.execute(sa.select(sa.literal(n)))
        await session.execute(sa.select(sa.func.count()).select_from(sa.text("tasks")))
    async with container.session_factory()() as session:
        timeout = (await session.execute(sa.text("SHOW statement_timeout"))).scalar()
        await session.commit()
    return str(timeout)


async def _load(container: Container) -> list[Any]:
    return await asyncio.gather(
        *(_read_and_write(container, n) for n in range(UNITS)), return_exceptions=True
    )


async def test_by_default_pgbouncer_refuses_the_statement_timeout_at_connect(
    bouncer_url: str, containers: list[Container]
) -> None:
    containers.append(_container(bouncer_url, database_pooler="none"))
    with pytest.raises(exc.DBAPIError, match="unsupported startup parameter"):
        await _read_and_write(containers[0], 0)


async def test_without_the_pooler_setting_prepared_statements_go_astray(
    bouncer_url: str, containers: list[Container]
) -> None:
    containers.append(
        _container(bouncer_url, database_pooler="none", database_statement_timeout=0)
    )
    outcomes = await _load(containers[0])
    errors = [str(outcome) for outcome in outcomes if isinstance(outcome, Exception)]
    assert any("prepared statement" in error for error in errors), errors[:3]


async def test_with_the_pooler_setting_every_unit_of_work_succeeds_with_its_timeout(
    bouncer_url: str, containers: list[Container]
) -> None:
    containers.append(
        _container(bouncer_url, database_pooler=POOLER, database_statement_timeout=2)
    )
    outcomes = await _load(containers[0])
    assert outcomes == ["2s"] * UNITS


async def test_behind_pgbouncer_the_statement_timeout_cancels_a_slow_read(
    bouncer_url: str, containers: list[Container]
) -> None:
    containers.append(
        _container(bouncer_url, database_pooler=POOLER, database_statement_timeout=0.2)
    )
    with pytest.raises(exc.DBAPIError) as raised:
        async with containers[0].read_session_factory()() as session:
            await session.execute(sa.select(sa.func.pg_sleep(5)))
    assert database_unavailable(raised.value)  # so its request gets a 503


@pytest.mark.parametrize("pool_size", [1])
async def test_the_timeout_stays_with_its_transaction_not_the_server_connection(
    bouncer_url: str, containers: list[Container]
) -> None:
    """Another client given the same (the only) server connection next sees the
    server's default."""
    timed = _container(
        bouncer_url, database_pooler=POOLER, database_statement_timeout=3
    )
    plain = _container(
        bouncer_url, database_pooler=POOLER, database_statement_timeout=0
    )
    containers += [timed, plain]
    assert await _read_and_write(timed, 0) == "3s"
    assert await _read_and_write(plain, 0) == "0"
