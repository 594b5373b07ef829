import pytest

from application.services import UnitOfWorkFactory
from entrypoints.container import Container
from tests.conftest import BACKENDS, url_for


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """Every repository behaviour runs on memory, SQLite and PostgreSQL alike."""
    return url_for(request.param, request)


@pytest.fixture
def new_uow(container: Container) -> UnitOfWorkFactory:
    """A fresh unit of work per call, from the real container for this backend."""
    return container.unit_of_work
