"""Export and import hold a bounded amount of memory, whatever the number of rows.

In process on SQLite, through the use cases and the JSON Lines format: the
peak that tracemalloc sees for ten times the tasks stays about the same.
"""

import io
import shutil
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from application.transfer import Importer, Line
from domain.tasks import Task
from entrypoints.container import Container, build_container
from entrypoints.transfer_files import JsonLinesWriter, read_records
from tests.conftest import test_settings
from tests.fakes import TickingClock

SMALL, LARGE = 2_000, 20_000


async def with_tasks(sqlite_template: Path, path: Path, count: int) -> Container:
    """A container on a new SQLite file where alice has `count` tasks."""
    shutil.copyfile(sqlite_template, path)
    container = build_container(test_settings(f"sqlite:///{path}"))
    clock = TickingClock()
    container.clock.override(clock)
    owner = await container.identity_service().ensure_user("alice")
    async with container.unit_of_work(owner_id=owner) as uow:
        for start in range(0, count, 5000):
            batch = range(start, min(count, start + 5000))
            tasks = [Task.create(f"Task {n} ✓", clock.now()) for n in batch]
            await uow.tasks.add_many(tasks)
        await uow.commit()
    return container


class Discard(io.TextIOBase):
    """Takes text and keeps none of it."""

    def write(self, text: str) -> int:
        return len(text)


async def peak(action: Callable[[], Awaitable[object]]) -> int:
    tracemalloc.start()
    try:
        await action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def export_to(container: Container, out: io.TextIOBase) -> None:
    writer = JsonLinesWriter(out)  # type: ignore[arg-type]
    async for record in container.exporter().export("alice"):
        writer.write(record)


async def test_export_memory_does_not_grow_with_the_number_of_tasks(
    sqlite_template: Path, tmp_path: Path
) -> None:
    peaks = {}
    for count in (100, SMALL, LARGE):  # the first only warms up (imports, caches)
        container = await with_tasks(sqlite_template, tmp_path / f"{count}.db", count)
        try:
            peaks[count] = await peak(lambda: export_to(container, Discard()))  # noqa: B023
        finally:
            await container.engine().dispose()

    assert peaks[LARGE] / peaks[SMALL] < 1.5, peaks


async def test_import_memory_does_not_grow_with_the_number_of_tasks(
    sqlite_template: Path, tmp_path: Path
) -> None:
    peaks = {}
    for count in (100, SMALL, LARGE):
        source = await with_tasks(sqlite_template, tmp_path / f"{count}.db", count)
        file = tmp_path / f"{count}.jsonl"
        try:
            with file.open("w", encoding="utf-8") as out:
                await export_to(source, out)
        finally:
            await source.engine().dispose()
        target = await with_tasks(sqlite_template, tmp_path / f"{count}-in.db", 0)
        # Batches far below the task counts, so that the batch is not what grows.
        importer = Importer(target.transfer_unit_of_work, target.clock(), 500)
        try:
            with file.open("rb") as opened:

                def lines(opened: io.BufferedReader = opened) -> Iterator[Line]:
                    opened.seek(0)
                    return read_records(opened, "jsonl")

                peaks[count] = await peak(
                    lambda: importer.store(lines, "alice", keep_ids=False)  # noqa: B023
                )
        finally:
            await target.engine().dispose()

    assert peaks[LARGE] / peaks[SMALL] < 1.5, peaks
