import pytest

from tests.conftest import url_for


@pytest.fixture(params=["memory", "sqlite"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The HTTP contract runs on the in-memory adapter and on SQLite."""
    return url_for(request.param, request)
