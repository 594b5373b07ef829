"""Loading many tasks at once: all of them or none, in one unit of work."""

from collections.abc import Callable, Iterable
from typing import Final

from application.ports import Clock, IdentityUnitOfWork, UnitOfWorkFactory
from application.services import CreateTask, _ensure_accepts_tasks
from domain.errors import DomainError, UserNotFound
from domain.tasks import Task

# Tasks per add_many: big enough that per-batch costs vanish, small enough that
# progress moves and a batch's rows stay a few megabytes.
BATCH_SIZE: Final = 5000

IdentityUnitOfWorkFactory = Callable[[], IdentityUnitOfWork]

Progress = Callable[[int], None]
"""Told how many more tasks were stored, after each batch."""


class LineRejected(Exception):
    """Line `line` of the input broke a rule; nothing was stored."""

    def __init__(self, line: int, error: DomainError) -> None:
        super().__init__(f"line {line}: {error.message}")
        self.line = line
        self.error = error


def _ignore(count: int) -> None:
    pass


class TaskLoader:
    """Store a stream of new tasks for one owner, all or nothing."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        identity_uow: IdentityUnitOfWorkFactory,
        clock: Clock,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self._uow = uow
        self._identity_uow = identity_uow
        self._clock = clock
        self._batch_size = batch_size

    async def owner_id(self, user_name: str) -> int:
        """The id of the user `user_name`; UserNotFound if there is none."""
        async with self._identity_uow() as uow:
            user = await uow.users.get_by_name(user_name)
        if user is None or user.id is None:
            raise UserNotFound(user_name)
        return user.id

    async def load(
        self,
        owner_id: int,
        commands: Iterable[tuple[int, CreateTask]],
        progress: Progress = _ignore,
    ) -> int:
        """Create a task for each (line, command) and commit once; how many.

        Each task follows the rules of `TaskService.create`, each distinct
        project checked once. The first command that breaks one raises
        LineRejected with its line, and nothing is stored; so does an error
        that `commands` itself raises.
        """
        checked: set[int] = set()
        batch: list[Task] = []
        loaded = 0
        async with self._uow(owner_id=owner_id) as uow:
            for line, command in commands:
                try:
                    task = Task.create(
                        command.title,
                        self._clock.now(),
                        description=command.description,
                        priority=command.priority,
                        due_date=command.due_date,
                        project_id=command.project_id,
                    )
                    project_id = task.project_id
                    if project_id is not None and project_id not in checked:
                        await _ensure_accepts_tasks(uow, project_id)
                        checked.add(project_id)
                except DomainError as error:
                    raise LineRejected(line, error) from error
                batch.append(task)
                if len(batch) == self._batch_size:
                    await uow.tasks.add_many(batch)
                    loaded += len(batch)
                    progress(len(batch))
                    batch = []
            if batch:
                await uow.tasks.add_many(batch)
                loaded += len(batch)
                progress(len(batch))
            await uow.commit()
        return loaded
