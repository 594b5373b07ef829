"""Loading many tasks at once, on the in-memory adapter (no I/O)."""

from collections.abc import Iterator, Sequence

import pytest

from adapters.memory import (
    InMemoryIdentityUnitOfWork,
    InMemoryProjectRepository,
    InMemoryStore,
    InMemoryTaskRepository,
    InMemoryUnitOfWork,
)
from application.identity import IdentityService
from application.loading import LineRejected, TaskLoader
from application.services import CreateTask, ProjectService
from domain.errors import InvalidValue, ProjectArchived, UserNotFound
from domain.projects import Project, ProjectChanges
from domain.tasks import Task
from domain.values import Priority
from tests.fakes import TickingClock

OWNER = 1


class CountingProjects(InMemoryProjectRepository):
    """Counts how often a project is read."""

    reads: list[int]

    async def get(self, entity_id: int, *, for_update: bool = False) -> Project | None:
        self.reads.append(entity_id)
        return await super().get(entity_id, for_update=for_update)


@pytest.fixture
def clock() -> TickingClock:
    return TickingClock()


@pytest.fixture
def project_reads() -> list[int]:
    return []


@pytest.fixture
def loader(
    store: InMemoryStore, clock: TickingClock, project_reads: list[int]
) -> TaskLoader:
    def uow(owner_id: int) -> InMemoryUnitOfWork:
        unit = InMemoryUnitOfWork(store, owner_id)
        unit.projects = CountingProjects(store, owner_id)
        unit.projects.reads = project_reads
        return unit

    return TaskLoader(
        uow, lambda: InMemoryIdentityUnitOfWork(store), clock, batch_size=2
    )


def numbered(*commands: CreateTask) -> list[tuple[int, CreateTask]]:
    return list(enumerate(commands, start=1))


async def test_every_task_is_stored_in_batches_with_its_own_clock_time(
    loader: TaskLoader, store: InMemoryStore, clock: TickingClock
) -> None:
    started = clock.current
    batches: list[int] = []
    commands = numbered(*(CreateTask(f"Task {n}") for n in range(5)))

    loaded = await loader.load(OWNER, commands, batches.append)

    assert loaded == 5
    assert batches == [2, 2, 1]
    stored = sorted(store.tasks.values(), key=lambda t: t.id or 0)
    assert [t.title for t in stored] == [f"Task {n}" for n in range(5)]
    assert all(t.owner_id == OWNER and t.version == 1 for t in stored)
    moments = [t.created_at for t in stored]
    assert moments == sorted(set(moments))
    assert started < moments[0]
    assert moments[-1] <= clock.current
    assert all(t.updated_at == t.created_at for t in stored)


async def test_the_domain_rules_apply_to_every_line(
    loader: TaskLoader, store: InMemoryStore
) -> None:
    command = CreateTask("  Trimmed  ", "  also trimmed ", Priority.HIGH)
    await loader.load(OWNER, [(7, command)])

    (task,) = store.tasks.values()
    assert (task.title, task.description) == ("Trimmed", "also trimmed")
    assert task.priority is Priority.HIGH


async def test_the_first_bad_line_stops_the_load_and_nothing_is_stored(
    loader: TaskLoader, store: InMemoryStore
) -> None:
    batches: list[int] = []
    commands = [
        *numbered(*(CreateTask(f"Fine {n}") for n in range(4))),
        (9, CreateTask("   ")),
        (10, CreateTask("\x00")),
    ]

    with pytest.raises(LineRejected) as rejected:
        await loader.load(OWNER, commands, batches.append)

    assert rejected.value.line == 9
    assert isinstance(rejected.value.error, InvalidValue)
    assert str(rejected.value).startswith("line 9: title must be")
    assert batches == [2, 2]  # two batches went out, and were rolled back
    assert store.tasks == {}


async def test_an_error_from_the_input_itself_stores_nothing(
    loader: TaskLoader, store: InMemoryStore
) -> None:
    def commands() -> Iterator[tuple[int, CreateTask]]:
        for n in range(1, 4):
            yield n, CreateTask(f"Fine {n}")
        raise LineRejected(4, InvalidValue("title", "title: Field required"))

    with pytest.raises(LineRejected, match="line 4: title: Field required"):
        await loader.load(OWNER, commands())
    assert store.tasks == {}


async def test_each_distinct_project_is_checked_once(
    loader: TaskLoader,
    store: InMemoryStore,
    clock: TickingClock,
    project_reads: list[int],
) -> None:
    projects = ProjectService(
        lambda owner_id: InMemoryUnitOfWork(store, owner_id), clock
    )
    first = await projects.create(OWNER, "First")
    second = await projects.create(OWNER, "Second")
    ids = [first.id, second.id, None, first.id, second.id, first.id]

    await loader.load(OWNER, numbered(*(CreateTask("T", project_id=i) for i in ids)))

    assert sorted(project_reads) == sorted([first.id, second.id])
    stored = sorted(store.tasks.values(), key=lambda t: t.id or 0)
    assert [t.project_id for t in stored] == ids


async def test_an_archived_project_refuses_the_load(
    loader: TaskLoader, store: InMemoryStore, clock: TickingClock
) -> None:
    projects = ProjectService(
        lambda owner_id: InMemoryUnitOfWork(store, owner_id), clock
    )
    archived = await projects.create(OWNER, "Old")
    await projects.update(OWNER, archived.id or 0, ProjectChanges(archived=True))
    commands = numbered(
        CreateTask("Fine"),
        CreateTask("Fine too"),
        CreateTask("Late", project_id=archived.id),
    )

    with pytest.raises(LineRejected) as rejected:
        await loader.load(OWNER, commands)

    assert rejected.value.line == 3
    assert isinstance(rejected.value.error, ProjectArchived)
    assert store.tasks == {}


async def test_a_project_of_another_owner_is_no_project(
    loader: TaskLoader, store: InMemoryStore, clock: TickingClock
) -> None:
    projects = ProjectService(
        lambda owner_id: InMemoryUnitOfWork(store, owner_id), clock
    )
    theirs = await projects.create(OWNER + 1, "Theirs")

    with pytest.raises(LineRejected) as rejected:
        await loader.load(OWNER, [(1, CreateTask("Mine", project_id=theirs.id))])

    assert isinstance(rejected.value.error, InvalidValue)
    assert rejected.value.error.field == "project_id"
    assert store.tasks == {}


async def test_the_owner_is_found_by_name_and_an_unknown_name_is_an_error(
    loader: TaskLoader, store: InMemoryStore, clock: TickingClock
) -> None:
    identity = IdentityService(lambda: InMemoryIdentityUnitOfWork(store), clock)
    dana = await identity.ensure_user("dana")

    assert await loader.owner_id("dana") == dana
    with pytest.raises(UserNotFound):
        await loader.owner_id("nobody")


class RecordingTasks(InMemoryTaskRepository):
    """Records the calls a load makes, in order."""

    calls: list[str]

    async def defer_indexes(self) -> None:
        self.calls.append("defer_indexes")

    async def add_many(self, tasks: Sequence[Task]) -> None:
        self.calls.append(f"add_many {len(tasks)}")
        await super().add_many(tasks)


@pytest.mark.parametrize("rebuild", [False, True])
async def test_indexes_are_deferred_before_the_first_task_only_when_asked(
    store: InMemoryStore, clock: TickingClock, rebuild: bool
) -> None:
    calls: list[str] = []

    def uow(owner_id: int) -> InMemoryUnitOfWork:
        unit = InMemoryUnitOfWork(store, owner_id)
        unit.tasks = RecordingTasks(store, owner_id)
        unit.tasks.calls = calls
        return unit

    loader = TaskLoader(uow, lambda: InMemoryIdentityUnitOfWork(store), clock, 2)
    commands = numbered(*(CreateTask(f"Task {n}") for n in range(3)))

    assert await loader.load(OWNER, commands, rebuild_indexes=rebuild) == 3

    stored = ["add_many 2", "add_many 1"]
    assert calls == (["defer_indexes", *stored] if rebuild else stored)
