from functools import partial

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
    return TaskService(partial(InMemoryUnitOfWork, store), clock)


@pytest.fixture
def projects(store: InMemoryStore, clock: FrozenClock) -> ProjectService:
    return ProjectService(partial(InMemoryUnitOfWork, store), clock)
