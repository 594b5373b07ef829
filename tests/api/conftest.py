from collections.abc import AsyncIterator

import pytest

from entrypoints.container import Container
from tests.conftest import BACKENDS, url_for
from tests.statement_audit import StatementAudit


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """The HTTP contract runs on the in-memory adapter, SQLite and PostgreSQL."""
    return url_for(request.param, request)


@pytest.fixture
def statement_audit() -> StatementAudit:
    return StatementAudit()


@pytest.fixture
async def container(
    container: Container, statement_audit: StatementAudit
) -> AsyncIterator[Container]:
    """The container, every SQL statement its engine sends audited: a statement
    on an owned table that does not name the owner fails the test that caused
    it (at teardown), as it would be a multi-shard query (docs/scaling.md)."""
    if container.config.backend() != "sql":
        yield container
        return
    audit = statement_audit
    unwatch = audit.watch(container.engine().sync_engine, container.driver())
    yield container
    unwatch()
    if violations := audit.violations():
        pytest.fail(
            "Statements on owned tables without an owner predicate (add one, or"
            " name the statement in tables.CROSS_OWNER_STATEMENTS with a reason):\n"
            + "\n".join(violations),
            pytrace=False,
        )
