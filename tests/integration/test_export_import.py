"""`taskhub export` and `taskhub import`, on SQLite and PostgreSQL."""

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from application.services import CreateTask
from entrypoints.container import Container, build_container
from tests.conftest import test_settings
from tests.databases import fresh_postgres_database, planned_rows, postgres_server
from tests.served import TASKHUB, environment, taskhub
from tests.transfer_data import AWKWARD, populate


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def databases(
    request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path
) -> Iterator[tuple[str, str]]:
    """Two migrated, empty databases of one kind: a source and a target."""
    if request.param == "sqlite":
        urls = []
        for name in ("source", "target"):
            shutil.copyfile(sqlite_template, tmp_path / f"{name}.db")
            urls.append(f"sqlite:///{tmp_path}/{name}.db")
        yield urls[0], urls[1]
        return
    with (
        postgres_server() as server,
        fresh_postgres_database(server) as source,
        fresh_postgres_database(server) as target,
    ):
        yield source, target


async def in_process(url: str) -> Container:
    return build_container(test_settings(url, database_pool_size=2))


async def fill(url: str) -> None:
    container = await in_process(url)
    try:
        await populate(container)
    finally:
        await container.engine().dispose()


def run(
    env: dict[str, str], *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [TASKHUB, *args], env=env, input=stdin, capture_output=True, timeout=120
    )


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
async def test_export_import_export_gives_the_same_file_and_new_ids_follow(
    databases: tuple[str, str], tmp_path: Path, suffix: str
) -> None:
    source, target = (environment(url) for url in databases)
    await fill(databases[0])
    first, second = tmp_path / f"first.{suffix}", tmp_path / f"second.{suffix}"

    taskhub(source, "export", "--all", "--output", str(first))
    imported = taskhub(target, "import", "--keep-ids", str(first))
    taskhub(target, "export", "--all", "--output", str(second))

    assert "Imported 9 records." in imported.stderr
    assert second.read_bytes() == first.read_bytes()
    text = first.read_text(encoding="utf-8")
    assert "bob" in text
    assert "أرشيف" in text
    # New rows after an import with kept ids: ids after the imported ones.
    container = await in_process(databases[1])
    try:
        alice = await container.identity_service().ensure_user("alice")
        task = await container.task_service().create(alice, CreateTask("After"))
        project = await container.project_service().create(alice, "After")
    finally:
        await container.engine().dispose()
    assert (task.id, project.id) == (7, 5)


async def test_an_owners_export_goes_through_a_pipe_to_another_user(
    databases: tuple[str, str],
) -> None:
    source, target = (environment(url) for url in databases)
    await fill(databases[0])
    taskhub(target, "users", "create", "carol")

    exported = run(source, "export", "--user", "alice", "--format", "csv")
    imported = run(
        target,
        "import",
        "--user",
        "carol",
        "--format",
        "csv",
        "--keep-ids",
        stdin=exported.stdout,
    )
    again = run(target, "export", "--user", "carol", "--format", "csv")

    assert imported.returncode == 0, imported.stderr
    assert again.stdout == exported.stdout
    assert AWKWARD.replace('"', '""').encode() in exported.stdout


async def test_bad_lines_are_reported_and_the_database_is_left_as_it_was(
    databases: tuple[str, str], tmp_path: Path
) -> None:
    source, target = (environment(url) for url in databases)
    await fill(databases[0])
    await fill(databases[1])
    exported = run(source, "export", "--all").stdout
    lines = exported.replace(b'"alice"', b'"dave"').splitlines(keepends=True)
    lines[3] = lines[3].replace(b'"Plain"', b'""')
    lines[4] = lines[4].replace(b'"project_id":1', b'"project_id":42')
    lines[5] = b"not json at all\n"
    lines[8] = lines[8].replace(b"Z", b"+25:00", 1)
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b"".join(lines))
    before = run(target, "export", "--all").stdout

    done = run(target, "import", str(broken))

    stderr = done.stderr.decode()
    assert done.returncode == 1
    for number in (4, 5, 6, 9):
        assert f"line {number}:" in stderr
    assert "line 7:" not in stderr
    assert "Nothing was imported." in stderr
    assert run(target, "export", "--all").stdout == before


async def test_kept_ids_that_the_database_has_import_nothing(
    databases: tuple[str, str], tmp_path: Path
) -> None:
    source, target = (environment(url) for url in databases)
    await fill(databases[0])
    await fill(databases[1])
    exported = run(source, "export", "--user", "bob").stdout
    taskhub(target, "users", "create", "erin")
    before = run(target, "export", "--all").stdout

    done = run(target, "import", "--user", "erin", "--keep-ids", stdin=exported)

    assert done.returncode == 1
    assert "line 1: A project with the id 4 already exists." in done.stderr.decode()
    assert run(target, "export", "--all").stdout == before
    # Without kept ids the same file goes in, with new ids.
    assert run(target, "import", "--user", "erin", stdin=exported).returncode == 0


@pytest.mark.postgres
@pytest.mark.parametrize("databases", ["postgres"], indirect=True)
def test_a_large_import_leaves_the_planner_knowing_the_tables_size(
    databases: tuple[str, str], tmp_path: Path
) -> None:
    source, target = (environment(url) for url in databases)
    taskhub(source, "users", "create", "carol")
    lines = "".join(json.dumps({"title": f"Task {i}"}) + "\n" for i in range(1_200))
    loaded = run(source, "tasks", "load", "--user", "carol", stdin=lines.encode())
    assert loaded.returncode == 0, loaded.stderr
    exported = tmp_path / "all.jsonl"
    taskhub(source, "export", "--all", "--output", str(exported))
    assert planned_rows(databases[1]) == -1

    taskhub(target, "import", str(exported))

    assert planned_rows(databases[1]) == 1_200
