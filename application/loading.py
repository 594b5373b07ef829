"""Loading many tasks at once: all of them or none, in one unit of work."""

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

from application.ports import Clock, IdentityUnitOfWork, UnitOfWorkFactory
from application.services import CreateTask, ensure_accepts_tasks
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
        *,
        rebuild_indexes: bool = False,
    ) -> int:
        """Create a task for each (line, command) and commit once; how many.

        Each task follows the rules of `TaskService.create`, each distinct
        project checked once. The first command that breaks one raises
        LineRejected with its line, and nothing is stored; so does any error
        that `commands` itself raises (it is iterated in a worker thread).
        `rebuild_indexes`: the tasks' indexes are built anew at the end, and
        every other use of tasks waits for the load (TaskRepository.defer_indexes).
        """
        rows = iter(commands)
        checked: set[int] = set()
        loaded = 0
        async with self._uow(owner_id=owner_id) as uow:
            if rebuild_indexes:
                await uow.tasks.defer_indexes()
            storing: asyncio.Task[None] | None = None
            try:
                while True:
                    # The next batch is read and built in a thread while the
                    # database stores the previous one: the two take turns
                    # otherwise, and each would wait for the other.
                    batch = await asyncio.to_thread(self._take, rows)
                    if storing is not None:
                        await storing
                        storing = None
                        loaded += self._batch_size
                        progress(self._batch_size)
                    for line, task in zip(batch.lines, batch.tasks, strict=True):
                        project_id = task.project_id
                        if project_id is not None and project_id not in checked:
                            try:
                                await ensure_accepts_tasks(uow, project_id)
                            except DomainError as error:
                                raise LineRejected(line, error) from error
                            checked.add(project_id)
                    if batch.error is not None:
                        raise batch.error
                    if len(batch.tasks) < self._batch_size:
                        break
                    storing = asyncio.ensure_future(uow.tasks.add_many(batch.tasks))
                if batch.tasks:
                    await uow.tasks.add_many(batch.tasks)
                    loaded += len(batch.tasks)
                    progress(len(batch.tasks))
            finally:
                if storing is not None:
                    # Never leave the unit of work with a statement in flight.
                    with contextlib.suppress(Exception):
                        await storing
            await uow.commit()
        return loaded

    def _take(self, rows: Iterator[tuple[int, CreateTask]]) -> "_Batch":
        """The next batch_size new tasks, fewer at the end of the input, or up
        to the first error, which it then holds."""
        batch = _Batch()
        now = self._clock.now
        try:
            for line, command in itertools.islice(rows, self._batch_size):
                try:
                    task = Task.create(
                        command.title,
                        now(),
                        description=command.description,
                        priority=command.priority,
                        due_date=command.due_date,
                        project_id=command.project_id,
                    )
                except DomainError as error:
                    raise LineRejected(line, error) from error
                batch.lines.append(line)
                batch.tasks.append(task)
        except Exception as error:
            batch.error = error
        return batch


@dataclass(slots=True)
class _Batch:
    lines: list[int] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    error: Exception | None = None
