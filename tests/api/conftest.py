import pytest

from tests.conftest import BACKENDS, url_for


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """The HTTP contract runs on the in-memory adapter, SQLite and PostgreSQL."""
    return url_for(request.param, request)
