import pytest

from entrypoints.container import Container
from tests.conftest import BACKENDS, url_for
from tests.contract.support import NewUnitOfWork


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """Every repository behaviour runs on memory, SQLite and PostgreSQL alike."""
    return url_for(request.param, request)


@pytest.fixture
def new_uow(container: Container, owner_id: int) -> NewUnitOfWork:
    """A fresh unit of work per call, from the real container for this backend."""
    return lambda: container.unit_of_work(owner_id=owner_id)
