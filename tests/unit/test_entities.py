"""The entities' own rules, without any use case around them."""

from datetime import UTC, date, datetime, timedelta

import pytest

from domain.errors import InvalidValue
from domain.projects import Project, ProjectChanges
from domain.tasks import Task, TaskChanges
from domain.values import Priority
from tests.fakes import FrozenClock


def test_a_new_task_is_open_normal_and_at_version_one() -> None:
    clock = FrozenClock()
    task = Task.create("Write the README", clock.now())
    assert (task.done, task.completed_at, task.priority) == (
        False,
        None,
        Priority.NORMAL,
    )
    assert task.version == 1
    assert task.created_at == task.updated_at == clock.now()


def test_titles_are_trimmed_and_their_length_counted_after_trimming() -> None:
    now = FrozenClock().now()
    assert Task.create("  tidy  ", now).title == "tidy"
    assert len(Task.create(" " + "x" * 200 + " ", now).title) == 200
    with pytest.raises(InvalidValue) as error:
        Task.create("x" * 201, now)
    assert error.value.field == "title"


@pytest.mark.parametrize("title", ["", "   ", "\t\n"])
def test_a_blank_title_is_invalid(title: str) -> None:
    with pytest.raises(InvalidValue):
        Task.create(title, FrozenClock().now())


@pytest.mark.parametrize("text", ["nul\x00inside", "lone \ud800 surrogate"])
def test_text_no_database_can_store_is_invalid_and_names_the_field(text: str) -> None:
    with pytest.raises(InvalidValue) as error:
        Task.create("fine", FrozenClock().now(), description=text)
    assert error.value.field == "description"


def test_completing_sets_completed_at_and_reopening_clears_it() -> None:
    clock = FrozenClock()
    task = Task.create("Ship", clock.now())
    completed_at = clock.advance(hours=1)
    assert task.complete(clock.now())
    clock.advance(hours=1)
    assert not task.complete(clock.now()), "completing twice changes nothing"
    assert task.completed_at == completed_at
    assert task.version == 2
    assert task.reopen(clock.now())
    assert (task.done, task.completed_at, task.version) == (False, None, 3)


def test_a_change_that_changes_nothing_keeps_version_and_updated_at() -> None:
    clock = FrozenClock()
    task = Task.create("Same", clock.now(), priority=Priority.HIGH)
    clock.advance(minutes=5)
    assert not task.apply(
        TaskChanges(title=" Same ", priority=Priority.HIGH), clock.now()
    )
    assert (task.version, task.updated_at) == (1, task.created_at)


def test_every_real_change_bumps_version_and_updated_at() -> None:
    clock = FrozenClock()
    task = Task.create("Plan", clock.now())
    changes = [
        TaskChanges(title="Plan more"),
        TaskChanges(description="details"),
        TaskChanges(priority=Priority.URGENT),
        TaskChanges(due_date=date(2026, 2, 1)),
        TaskChanges(project_id=7),
        TaskChanges(description=None),
    ]
    for version, change in enumerate(changes, start=2):
        now = clock.advance(seconds=1)
        assert task.apply(change, now)
        assert (task.version, task.updated_at) == (version, now)


def test_an_invalid_change_changes_nothing() -> None:
    clock = FrozenClock()
    task = Task.create("Keep me", clock.now())
    before = task.copy()
    with pytest.raises(InvalidValue):
        task.apply(TaskChanges(title="New", description="x" * 5001), clock.now())
    assert task == before


def test_priorities_rank_low_normal_high_urgent() -> None:
    ranked = sorted(Priority, key=lambda p: p.rank)
    assert ranked == [Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.URGENT]
    assert all(Priority.from_rank(p.rank) is p for p in Priority)


def test_project_names_are_trimmed_and_two_to_120_characters() -> None:
    now = FrozenClock().now()
    assert Project.create("  Roadmap ", None, now).name == "Roadmap"
    for bad in ["x", " x ", "x" * 121]:
        with pytest.raises(InvalidValue) as error:
            Project.create(bad, None, now)
        assert error.value.field == "name"


def test_project_names_clash_regardless_of_case() -> None:
    now = FrozenClock().now()
    assert Project.create("Roadmap", None, now).name_key == (
        Project.create("ROADMAP", None, now).name_key
    )
    assert Project.create("Straße", None, now).name_key == (
        Project.create("STRASSE", None, now).name_key
    )


def test_archiving_a_project_bumps_its_version_once() -> None:
    clock = FrozenClock()
    project = Project.create("Roadmap", None, clock.now())
    later = clock.now() + timedelta(days=1)
    assert project.archive(later)
    assert not project.archive(later + timedelta(days=1))
    assert (project.archived, project.version, project.updated_at) == (True, 2, later)
    assert not project.apply(ProjectChanges(name="Roadmap"), later)


def test_a_restored_task_is_done_exactly_when_it_has_a_completion_time() -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)

    def restore(title: str, done: bool, completed_at: datetime | None) -> Task:
        return Task.restore(
            title,
            description=None,
            priority=Priority.NORMAL,
            due_date=None,
            project_id=None,
            done=done,
            completed_at=completed_at,
            created_at=moment,
            updated_at=moment,
            version=2,
        )

    restored = restore("  Kept  ", True, moment)

    assert (restored.title, restored.version, restored.done) == ("Kept", 2, True)
    with pytest.raises(InvalidValue):
        restore("Odd", True, None)
    with pytest.raises(InvalidValue):
        restore("Odd", False, moment)


def test_a_restored_project_has_a_history_that_runs_forwards() -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)

    with pytest.raises(InvalidValue):
        Project.restore(
            "Late",
            None,
            archived=True,
            created_at=moment,
            updated_at=moment - timedelta(microseconds=1),
            version=1,
        )
    with pytest.raises(InvalidValue):
        Project.restore(
            "Naive",
            None,
            archived=False,
            created_at=moment.replace(tzinfo=None),
            updated_at=moment,
            version=1,
        )
    with pytest.raises(InvalidValue):
        Project.restore(
            "Zero",
            None,
            archived=False,
            created_at=moment,
            updated_at=moment,
            version=0,
        )
