import pytest

from tests.conftest import BACKENDS, url_for


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """Every repository behaviour runs on memory, SQLite and PostgreSQL alike."""
    return url_for(request.param, request)
