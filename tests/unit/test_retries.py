"""A change that loses a race to another writer is re-applied to the row as that
writer left it, a bounded number of times; a conditional one (If-Match) fails
with VersionMismatch instead. Run on the in-memory adapter, with a rival writer
that commits between the use case's read and its write."""

from dataclasses import dataclass, field, replace
from datetime import date

import pytest

from adapters.memory import (
    InMemoryProjectRepository,
    InMemoryStore,
    InMemoryTaskRepository,
    InMemoryUnitOfWork,
)
from application.services import ATTEMPTS, CreateTask, ProjectService, TaskService
from domain.errors import ConcurrentUpdate, VersionMismatch
from domain.projects import Project, ProjectChanges
from domain.tasks import Task, TaskChanges
from domain.values import Priority
from tests.fakes import FrozenClock

OWNER = 1


@dataclass
class Rival:
    """Another writer. Just before each of the use case's writes, it commits its
    next change (while it has any) to the very row, so that the versioned write
    finds the row moved on. `attempts` counts the use case's units of work."""

    clock: FrozenClock
    changes: list[TaskChanges | ProjectChanges] = field(default_factory=list)
    attempts: int = 0
    landed: int = 0


class _RivalWritesFirst:
    """Makes a repository's update and remove let the rival write first."""

    def __init__(self, store: InMemoryStore, owner_id: int, uow: "RacedUnitOfWork"):
        super().__init__(store, owner_id)  # type: ignore[call-arg]
        self._uow = uow

    async def update(self, entity: Task | Project, expected_version: int) -> None:
        await self._rival_writes(entity.id or 0)
        await super().update(entity, expected_version)  # type: ignore[misc]

    async def remove(self, entity_id: int, expected_version: int | None = None) -> bool:
        await self._rival_writes(entity_id)
        return await super().remove(entity_id, expected_version)  # type: ignore[misc, no-any-return]

    async def _rival_writes(self, entity_id: int) -> None:
        rival = self._uow.rival
        if not rival.changes:
            return
        row = await super().get(entity_id)  # type: ignore[misc]
        version = row.version
        assert row.apply(rival.changes.pop(0), rival.clock.now())
        await super().update(row, version)  # type: ignore[misc]
        # The rival's own transaction commits: its write must outlive the
        # rollback of the use case's unit of work, which holds the store now.
        await self._uow.commit()
        rival.landed += 1


class RacedTaskRepository(_RivalWritesFirst, InMemoryTaskRepository):
    pass


class RacedProjectRepository(_RivalWritesFirst, InMemoryProjectRepository):
    pass


class RacedUnitOfWork(InMemoryUnitOfWork):
    def __init__(self, store: InMemoryStore, owner_id: int, rival: Rival) -> None:
        super().__init__(store, owner_id)
        self.rival = rival
        self.tasks = RacedTaskRepository(store, owner_id, self)
        self.projects = RacedProjectRepository(store, owner_id, self)

    async def __aenter__(self) -> "RacedUnitOfWork":
        self.rival.attempts += 1
        return await super().__aenter__()


@pytest.fixture
def rival(clock: FrozenClock) -> Rival:
    return Rival(clock)


@pytest.fixture
def raced_tasks(store: InMemoryStore, clock: FrozenClock, rival: Rival) -> TaskService:
    return TaskService(lambda owner_id: RacedUnitOfWork(store, owner_id, rival), clock)


@pytest.fixture
def raced_projects(
    store: InMemoryStore, clock: FrozenClock, rival: Rival
) -> ProjectService:
    return ProjectService(
        lambda owner_id: RacedUnitOfWork(store, owner_id, rival), clock
    )


async def _task(tasks: TaskService) -> int:
    task = await tasks.create(OWNER, CreateTask("Draft"))
    assert task.id is not None
    return task.id


async def _project(projects: ProjectService) -> int:
    project = await projects.create(OWNER, "Roadmap")
    assert project.id is not None
    return project.id


# --- tasks --------------------------------------------------------------------


async def test_a_task_change_that_loses_a_race_is_reapplied_to_the_rivals_row(
    tasks: TaskService, raced_tasks: TaskService, rival: Rival
) -> None:
    task_id = await _task(tasks)
    rival.changes = [TaskChanges(description="Their notes")]

    updated = await raced_tasks.update(OWNER, task_id, TaskChanges(title="Our title"))

    assert (updated.title, updated.description) == ("Our title", "Their notes")
    assert updated.version == 3
    assert await tasks.get(OWNER, task_id) == updated
    assert (rival.landed, rival.attempts) == (1, 2)


async def test_a_task_change_that_wins_only_the_last_attempt_keeps_every_change(
    tasks: TaskService, raced_tasks: TaskService, rival: Rival, clock: FrozenClock
) -> None:
    task_id = await _task(tasks)
    theirs = [
        TaskChanges(description="Their notes"),
        TaskChanges(priority=Priority.URGENT),
        TaskChanges(due_date=date(2026, 6, 1)),
        TaskChanges(done=True),
        *(TaskChanges(description=f"Notes {n}") for n in range(ATTEMPTS)),
    ][: ATTEMPTS - 1]
    rival.changes = list(theirs)

    updated = await raced_tasks.update(OWNER, task_id, TaskChanges(title="Our title"))

    assert (rival.attempts, rival.landed) == (ATTEMPTS, ATTEMPTS - 1)
    expected = Task.create("Draft", clock.now())
    for change in [*theirs, TaskChanges(title="Our title")]:
        assert expected.apply(change, clock.now())
    assert updated == replace(expected, id=task_id, owner_id=OWNER)
    assert updated.version == 1 + ATTEMPTS
    assert await tasks.get(OWNER, task_id) == updated


async def test_a_task_change_that_loses_every_race_ends_in_concurrent_update(
    tasks: TaskService, raced_tasks: TaskService, rival: Rival
) -> None:
    task_id = await _task(tasks)
    rival.changes = [TaskChanges(description=f"Notes {n}") for n in range(ATTEMPTS + 3)]

    with pytest.raises(ConcurrentUpdate):
        await raced_tasks.update(OWNER, task_id, TaskChanges(title="Our title"))

    assert rival.attempts == rival.landed == ATTEMPTS
    stored = await tasks.get(OWNER, task_id)
    assert (stored.title, stored.description) == ("Draft", f"Notes {ATTEMPTS - 1}")
    assert stored.version == 1 + ATTEMPTS


async def test_a_conditional_task_change_that_loses_a_race_is_a_version_mismatch(
    tasks: TaskService, raced_tasks: TaskService, rival: Rival
) -> None:
    task_id = await _task(tasks)
    rival.changes = [TaskChanges(description="Their notes")]

    with pytest.raises(VersionMismatch) as error:
        await raced_tasks.update(
            OWNER, task_id, TaskChanges(title="Our title"), expected={1}
        )

    assert error.value.version == 2
    assert rival.landed == 1
    stored = await tasks.get(OWNER, task_id)
    assert (stored.title, stored.description, stored.version) == (
        "Draft",
        "Their notes",
        2,
    )


async def test_a_conditional_task_delete_that_loses_a_race_deletes_nothing(
    tasks: TaskService, raced_tasks: TaskService, rival: Rival
) -> None:
    task_id = await _task(tasks)
    rival.changes = [TaskChanges(done=True)]

    with pytest.raises(VersionMismatch) as error:
        await raced_tasks.delete(OWNER, task_id, expected={1})

    assert error.value.version == 2
    stored = await tasks.get(OWNER, task_id)
    assert (stored.done, stored.version) == (True, 2)


# --- projects -----------------------------------------------------------------


async def test_a_project_change_that_loses_a_race_is_reapplied_to_the_rivals_row(
    projects: ProjectService, raced_projects: ProjectService, rival: Rival
) -> None:
    project_id = await _project(projects)
    rival.changes = [ProjectChanges(description="Their plan")]

    updated = await raced_projects.update(
        OWNER, project_id, ProjectChanges(name="Our name")
    )

    assert (updated.name, updated.description, updated.version) == (
        "Our name",
        "Their plan",
        3,
    )
    assert await projects.get(OWNER, project_id) == updated
    assert (rival.landed, rival.attempts) == (1, 2)


async def test_a_project_change_that_loses_every_race_ends_in_concurrent_update(
    projects: ProjectService, raced_projects: ProjectService, rival: Rival
) -> None:
    project_id = await _project(projects)
    rival.changes = [
        ProjectChanges(description=f"Plan {n}") for n in range(ATTEMPTS + 3)
    ]

    with pytest.raises(ConcurrentUpdate):
        await raced_projects.update(OWNER, project_id, ProjectChanges(archived=True))

    assert rival.attempts == rival.landed == ATTEMPTS
    stored = await projects.get(OWNER, project_id)
    assert (stored.archived, stored.description) == (False, f"Plan {ATTEMPTS - 1}")


async def test_a_conditional_project_change_or_delete_that_loses_a_race_does_nothing(
    projects: ProjectService, raced_projects: ProjectService, rival: Rival
) -> None:
    project_id = await _project(projects)
    rival.changes = [ProjectChanges(description="Their plan")]
    with pytest.raises(VersionMismatch):
        await raced_projects.update(
            OWNER, project_id, ProjectChanges(name="Our name"), expected={1}
        )
    rival.changes = [ProjectChanges(archived=True)]
    with pytest.raises(VersionMismatch) as error:
        await raced_projects.delete(OWNER, project_id, expected={2})

    assert error.value.version == 3
    stored = await projects.get(OWNER, project_id)
    assert (stored.name, stored.description, stored.archived) == (
        "Roadmap",
        "Their plan",
        True,
    )
