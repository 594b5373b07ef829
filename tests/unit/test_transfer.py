"""Export and import use cases on the in-memory adapter, through both file formats."""

import io
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from application.queries import ProjectQuery, TaskQuery, Window
from application.services import CreateTask
from application.transfer import Line, Lines, RowsRejected
from domain.errors import IdTaken, UserNotFound
from entrypoints.container import Container, build_container
from entrypoints.settings import MEMORY_URL
from entrypoints.transfer_files import FORMATS, Format, read_records, writer_for
from tests.conftest import test_settings
from tests.fakes import TickingClock
from tests.transfer_data import AWKWARD, populate

ALL = None  # the `user` of an export of every owner


@pytest.fixture
def source() -> Container:
    container = build_container(test_settings(MEMORY_URL))
    container.clock.override(TickingClock())
    return container


@pytest.fixture
def target() -> Container:
    """Another process's memory, as it were: an empty database."""
    container = build_container(test_settings(MEMORY_URL))
    container.clock.override(TickingClock(datetime(2030, 1, 1, tzinfo=UTC)))
    return container


async def export(container: Container, user: str | None, fmt: Format) -> bytes:
    out = io.StringIO(newline="")
    writer = writer_for(fmt, out)
    async for record in container.exporter().export(user):
        writer.write(record)
    return out.getvalue().encode()


def lines_of(data: bytes, fmt: Format) -> Lines:
    def lines() -> Iterator[Line]:
        return read_records(io.BytesIO(data), fmt)

    return lines


async def import_(
    container: Container, data: bytes, fmt: Format, user: str | None, keep: bool
) -> int:
    return await container.importer().store(lines_of(data, fmt), user, keep)


@pytest.mark.parametrize("fmt", FORMATS)
async def test_an_export_of_all_imported_with_its_ids_exports_the_same_again(
    source: Container, target: Container, fmt: Format
) -> None:
    await populate(source)
    first = await export(source, ALL, fmt)

    assert await import_(target, first, fmt, None, keep=True) == 9
    assert await export(target, ALL, fmt) == first


@pytest.mark.parametrize("fmt", FORMATS)
async def test_one_owners_export_goes_to_the_user_named_on_import(
    source: Container, target: Container, fmt: Format
) -> None:
    await populate(source)
    first = await export(source, "alice", fmt)
    await target.identity_service().ensure_user("carol")

    await import_(target, first, fmt, "carol", keep=True)

    assert await export(target, "carol", fmt) == first
    assert b"bob" not in first


async def test_without_kept_ids_records_get_new_ids_and_timestamps_and_keep_their_links(
    source: Container, target: Container
) -> None:
    await populate(source)
    first = await export(source, "alice", "jsonl")
    carol = await target.identity_service().ensure_user("carol")
    # Ids 1 and 2 are taken in the target: kept ids would clash.
    await target.project_service().create(carol, "Existing")
    await target.task_service().create(carol, CreateTask("Existing"))

    await import_(target, first, "jsonl", "carol", keep=False)

    everything = Window(limit=100)
    projects = await target.project_service().list(
        carol, ProjectQuery(sort="id", descending=False, window=everything)
    )
    tasks = await target.task_service().list(
        carol, TaskQuery(sort="id", descending=False, window=everything)
    )
    assert [p.name for p in projects.items] == ["Existing", "Launch 🚀", "أرشيف", "\\N"]
    assert [p.archived for p in projects.items] == [False, False, True, False]
    by_title = {t.title: t for t in tasks.items}
    assert by_title[AWKWARD.strip()].project_id == projects.items[1].id
    assert by_title["Filed away"].project_id == projects.items[2].id
    assert by_title[AWKWARD.strip()].done
    assert [t.id for t in tasks.items] == [1, 2, 3, 4]  # no gap: ids are new
    imported = tasks.items[1:]
    assert all(t.created_at.year == 2030 and t.version == 1 for t in imported)
    assert (
        by_title[AWKWARD.strip()].completed_at == by_title[AWKWARD.strip()].created_at
    )


def bad(data: bytes, replacements: dict[int, bytes]) -> bytes:
    lines = data.splitlines(keepends=True)
    for number, line in replacements.items():
        lines[number - 1] = line
    return b"".join(lines)


async def test_every_bad_line_is_reported_by_number_and_nothing_is_imported(
    source: Container, target: Container
) -> None:
    await populate(source)
    good = await export(source, ALL, "jsonl")
    lines = good.splitlines(keepends=True)
    task = lines[3]  # alice's "Plain", in no project
    broken = bad(
        good,
        {
            4: task.replace(b'"Plain"', b'"  "'),
            5: b"{not json\n",
            6: lines[5].replace(b'"project_id":2', b'"project_id":99'),
            7: lines[6].replace(b"Z", b"", 1),
            8: lines[7].replace(b'"created_at":"2026', b'"created_at":"2126', 1),
        },
    )

    with pytest.raises(RowsRejected) as caught:
        await import_(target, broken, "jsonl", None, keep=True)

    rejected = caught.value.rejected
    assert [r.line for r in rejected] == [4, 5, 6, 7, 8]
    assert "title" in str(rejected[0])
    assert "project 99" in str(rejected[2])
    assert "created_at" in str(rejected[3])
    assert "updated_at must not be before created_at" in str(rejected[4])
    assert await export(target, ALL, "jsonl") == b""


async def test_a_bad_csv_row_is_reported_by_the_line_it_starts_on(
    source: Container, target: Container
) -> None:
    await populate(source)
    good = await export(source, ALL, "csv")
    # The awkward task spans two lines: the row after it starts two lines on.
    assert good.count(b"\r\n\r\n") == 0
    broken = good.replace(b"Filed away", b"")

    with pytest.raises(RowsRejected) as caught:
        await import_(target, broken, "csv", None, keep=True)

    (rejected,) = caught.value.rejected
    text = good.decode()
    row_start = text[: text.index("Filed away")].count("\n") + 1
    assert rejected.line == row_start
    assert "title" in str(rejected)


async def test_the_report_stops_after_max_reported_lines(
    source: Container, target: Container
) -> None:
    data = b"{}\n" * 30

    with pytest.raises(RowsRejected) as caught:
        await import_(target, data, "jsonl", None, keep=True)

    assert len(caught.value.rejected) == 20
    assert caught.value.more


async def test_kept_ids_that_are_taken_import_nothing(
    source: Container, target: Container
) -> None:
    await populate(source)
    first = await export(source, ALL, "jsonl")
    await import_(target, first, "jsonl", None, keep=True)
    before = await export(target, ALL, "jsonl")

    with pytest.raises(RowsRejected) as caught:
        await import_(target, first, "jsonl", None, keep=True)

    assert isinstance(caught.value.rejected[0].error, IdTaken)
    assert await export(target, ALL, "jsonl") == before


async def test_after_an_import_with_kept_ids_new_entities_get_ids_after_them(
    source: Container, target: Container
) -> None:
    await populate(source)
    await import_(target, await export(source, ALL, "jsonl"), "jsonl", None, True)

    alice = await target.identity_service().ensure_user("alice")
    task = await target.task_service().create(alice, CreateTask("After"))
    project = await target.project_service().create(alice, "After")

    # After the largest imported (6 and 4), not in the gap at task 3.
    assert task.id == 7
    assert project.id == 5


async def test_the_count_is_told_once_checked_and_progress_as_stored(
    source: Container, target: Container
) -> None:
    await populate(source)
    data = await export(source, ALL, "jsonl")
    told: list[tuple[str, int]] = []

    await target.importer().store(
        lines_of(data, "jsonl"),
        None,
        False,
        progress=lambda n: told.append(("stored", n)),
        checked=lambda n: told.append(("checked", n)),
    )

    assert told[0] == ("checked", 9)
    assert sum(n for what, n in told if what == "stored") == 9


async def test_an_unknown_user_is_refused_before_anything_is_read(
    target: Container,
) -> None:
    with pytest.raises(UserNotFound):
        await import_(target, b"", "jsonl", "nobody", keep=False)
    with pytest.raises(UserNotFound):
        await export(target, "nobody", "jsonl")


async def test_records_without_an_owner_need_a_user(
    source: Container, target: Container
) -> None:
    await populate(source)
    data = await export(source, "bob", "jsonl")

    with pytest.raises(RowsRejected) as caught:
        await import_(target, data, "jsonl", None, keep=False)

    assert [r.line for r in caught.value.rejected] == [1, 2, 3]
    assert "owner" in str(caught.value.rejected[0])
