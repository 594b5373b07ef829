import pytest

from adapters.memory import InMemoryStore, InMemoryUnitOfWork
from application.services import ProjectService, TaskService
from tests.fakes import FrozenClock


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def tasks(store: InMemoryStore, clock: FrozenClock) -> TaskService:
    return TaskService(lambda owner_id: InMemoryUnitOfWork(store, owner_id), clock)


@pytest.fixture
def projects(store: InMemoryStore, clock: FrozenClock) -> ProjectService:
    return ProjectService(lambda owner_id: InMemoryUnitOfWork(store, owner_id), clock)
