"""`taskhub tasks load`, as a user runs it, on SQLite and on PostgreSQL."""

import asyncio
import contextlib
import json
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from application.loading import BATCH_SIZE
from application.queries import TaskQuery, Window
from domain.errors import InvalidValue, TasksBusy
from domain.tasks import Task
from entrypoints.container import Container, build_container
from tests.conftest import test_settings
from tests.databases import direct, in_thread, planned_rows
from tests.served import TASKHUB, environment, taskhub


@pytest.fixture
def env(server_database_url: str) -> dict[str, str]:
    """A migrated database with the user carol."""
    env = environment(server_database_url)
    taskhub(env, "db", "upgrade")
    taskhub(env, "users", "create", "carol")
    return env


def load(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TASKHUB, "tasks", "load", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


@contextlib.asynccontextmanager
async def carols(url: str) -> AsyncIterator[tuple[Container, int]]:
    """A container on the database at `url`, and carol's id there."""
    container = build_container(test_settings(url))
    try:
        yield container, await container.task_loader().owner_id("carol")
    finally:
        if container.engine.initialized:
            await container.engine().dispose()


async def stored_tasks(env: dict[str, str]) -> list[Task]:
    async with carols(env["TASKHUB_DATABASE_URL"]) as (container, owner_id):
        query = TaskQuery(sort="id", descending=False, window=Window(limit=100))
        return (await container.task_service().list(owner_id, query)).items


def lines(*tasks: dict[str, object]) -> str:
    return "".join(json.dumps(task) + "\n" for task in tasks)


async def test_a_file_of_tasks_is_loaded_for_the_user(
    env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "tasks.jsonl"
    source.write_text(
        lines(
            {"title": "  Plain  "},
            {"title": "Full", "description": "More", "priority": "urgent"},
        )
        + "\n"  # a blank line is skipped
        + lines({"title": "Dated", "due_date": "2026-12-01"})
    )

    done = load(env, "--user", "carol", str(source))

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Loaded 3 tasks for carol in ")
    assert "/s" in done.stdout
    assert "tasks" in done.stderr  # the progress bar, even without a terminal
    stored = await stored_tasks(env)
    assert [t.title for t in stored] == ["Plain", "Full", "Dated"]
    assert stored[1].description == "More"
    assert stored[1].priority.value == "urgent"
    assert str(stored[2].due_date) == "2026-12-01"
    assert all(t.version == 1 and not t.done for t in stored)


async def test_tasks_are_read_from_stdin(env: dict[str, str]) -> None:
    source = lines({"title": "From a pipe"}, {"title": "Another"})

    without_file = load(env, "--user", "carol", stdin=source)
    with_dash = load(env, "--user", "carol", "-", stdin=source)

    assert (without_file.returncode, with_dash.returncode) == (0, 0)
    assert with_dash.stdout.startswith("Loaded 2 tasks")
    assert len(await stored_tasks(env)) == 4


async def test_a_bad_line_stores_nothing_and_names_the_line(
    env: dict[str, str],
) -> None:
    # More good lines than a batch, so a batch was sent before the bad line.
    good = lines(*({"title": f"Task {n}"} for n in range(BATCH_SIZE + 1)))
    source = good + lines({"title": "Bad", "priority": "whenever"})

    done = load(env, "--user", "carol", stdin=source)

    assert done.returncode == 1
    assert f"line {BATCH_SIZE + 2}: priority: " in done.stderr
    assert await stored_tasks(env) == []


BAD_LINES = [
    ('{"title": "   "}', "title: String should have at least 1 character"),
    ('{"title": "NUL \\u0000"}', "must not contain NUL characters"),
    ('{"title": "x", "colour": "red"}', "colour: Extra inputs are not permitted"),
    ('{"title": "x", "project_id": 42}', "Project 42 does not exist."),
    ('{"title": "lone \\ud800 surrogate"}', "Invalid JSON"),
    ('{"title": "unfinished', "Invalid JSON"),
]


async def test_bad_lines_and_unknown_users_are_refused_as_the_api_refuses_them(
    env: dict[str, str],
) -> None:
    for line, message in BAD_LINES:
        done = load(env, "--user", "carol", stdin=lines({"title": "Fine"}) + line)

        assert done.returncode == 1, line
        assert "line 2: " in done.stderr
        assert message in done.stderr

    unknown = load(env, "--user", "nobody", stdin=lines({"title": "Orphan"}))
    assert unknown.returncode == 1
    assert "There is no user named 'nobody'." in unknown.stderr
    assert await stored_tasks(env) == []


@pytest.mark.postgres
@pytest.mark.parametrize("server_database_url", ["postgres"], indirect=True)
def test_a_large_load_leaves_the_planner_knowing_the_tables_size(
    env: dict[str, str],
) -> None:
    url = env["TASKHUB_DATABASE_URL"]
    few = load(env, "--user", "carol", stdin=lines({"title": "One"}, {"title": "Two"}))
    assert few.returncode == 0, few.stderr
    assert planned_rows(url) == -1  # a small load leaves it to autovacuum

    many = [{"title": f"Task {i}"} for i in range(1_500)]
    done = load(env, "--user", "carol", stdin=lines(*many))

    assert done.returncode == 0, done.stderr
    assert planned_rows(url) == 1_502


def tasks_schema(url: str) -> list[tuple[object, ...]]:
    """The tasks table's indexes and constraints, as PostgreSQL describes them."""

    async def read() -> list[tuple[object, ...]]:
        engine = create_async_engine(
            make_url(direct(url)).set(drivername="postgresql+asyncpg")
        )
        try:
            async with engine.connect() as connection:
                result = await connection.exec_driver_sql(
                    "SELECT indexdef, NULL FROM pg_indexes WHERE tablename = 'tasks' "
                    "UNION ALL SELECT conname || ' ' || pg_get_constraintdef(oid), "
                    "convalidated FROM pg_constraint "
                    "WHERE conrelid = 'tasks'::regclass ORDER BY 1"
                )
                return [tuple(row) for row in result]
        finally:
            await engine.dispose()

    return in_thread(asyncio.run, read())


@pytest.mark.postgres
@pytest.mark.parametrize("server_database_url", ["postgres"], indirect=True)
def test_rebuilding_indexes_stores_the_tasks_and_builds_the_same_indexes_again(
    env: dict[str, str],
) -> None:
    url = env["TASKHUB_DATABASE_URL"]
    before = tasks_schema(url)
    many = [{"title": f"Task {i}"} for i in range(BATCH_SIZE + 10)]

    done = load(env, "--user", "carol", "--rebuild-indexes", stdin=lines(*many))

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Loaded {BATCH_SIZE + 10} tasks for carol")
    after = tasks_schema(url)
    assert after == before
    assert sum("USING gin" in str(row[0]) for row in after) == 1  # the trigram one
    assert all(valid in (None, True) for _, valid in after)  # keys checked again
    assert planned_rows(url) == BATCH_SIZE + 10


@pytest.mark.postgres
@pytest.mark.parametrize("server_database_url", ["postgres"], indirect=True)
async def test_a_bad_line_while_rebuilding_indexes_leaves_tasks_and_indexes_alone(
    env: dict[str, str],
) -> None:
    url = env["TASKHUB_DATABASE_URL"]
    assert load(env, "--user", "carol", stdin=lines({"title": "Kept"})).returncode == 0
    before = tasks_schema(url)
    good = lines(*({"title": f"Task {n}"} for n in range(BATCH_SIZE + 1)))
    source = good + lines({"title": "Bad", "priority": "whenever"})

    done = load(env, "--user", "carol", "--rebuild-indexes", stdin=source)

    assert done.returncode == 1
    assert f"line {BATCH_SIZE + 2}: priority: " in done.stderr
    assert tasks_schema(url) == before
    assert [task.title for task in await stored_tasks(env)] == ["Kept"]


@pytest.mark.parametrize("server_database_url", ["sqlite"], indirect=True)
async def test_rebuilding_indexes_is_accepted_and_changes_nothing_on_sqlite(
    env: dict[str, str],
) -> None:
    source = lines({"title": "One"}, {"title": "Two"})

    done = load(env, "--user", "carol", "--rebuild-indexes", stdin=source)

    assert done.returncode == 0, done.stderr
    assert [task.title for task in await stored_tasks(env)] == ["One", "Two"]


@pytest.mark.postgres
@pytest.mark.parametrize("server_database_url", ["postgres"], indirect=True)
async def test_deferring_indexes_waits_for_the_table_only_so_long(
    env: dict[str, str],
) -> None:
    url = env["TASKHUB_DATABASE_URL"]
    before = tasks_schema(url)
    reader = await asyncpg.connect(
        make_url(direct(url))
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )
    try:
        async with (
            carols(url) as (container, owner_id),
            reader.transaction(),
        ):
            await reader.execute("LOCK TABLE tasks IN ACCESS SHARE MODE")
            async with (
                container.unit_of_work(owner_id=owner_id) as uow,
                # Not a measure: without the patience the wait never ends.
                asyncio.timeout(60),
            ):
                with pytest.raises(TasksBusy, match=r"over 0\.3 s") as refused:
                    await uow.tasks.defer_indexes(patience=0.3)
    finally:
        await reader.close()
    # PostgreSQL gave up on the lock (lock_timeout), as the patience asked.
    assert isinstance(refused.value.__cause__, asyncpg.LockNotAvailableError)
    assert tasks_schema(url) == before


@pytest.mark.postgres
@pytest.mark.parametrize("server_database_url", ["postgres"], indirect=True)
async def test_a_missing_project_found_when_keys_are_checked_again_stores_nothing(
    env: dict[str, str],
) -> None:
    url = env["TASKHUB_DATABASE_URL"]
    before = tasks_schema(url)
    # As if the project went between the loader's check and the commit.
    orphan = Task.create("Orphan", datetime.now(UTC), project_id=404)
    async with (
        carols(url) as (container, owner_id),
        container.unit_of_work(owner_id=owner_id) as uow,
    ):
        await uow.tasks.defer_indexes()
        await uow.tasks.add_many([orphan])
        with pytest.raises(InvalidValue, match="no longer exists"):
            await uow.commit()
    assert tasks_schema(url) == before
    assert await stored_tasks(env) == []
