"""The ProjectRepository contract, run against every adapter."""

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, timedelta
from typing import Any

import pytest

from application.queries import (
    PROJECT_SORT_FIELDS,
    Position,
    ProjectQuery,
    ProjectSortField,
    Window,
)
from domain.errors import ConcurrentUpdate, ProjectHasTasks, ProjectNameTaken
from domain.projects import NAME_MAX, Project, ProjectChanges
from domain.tasks import Task
from domain.values import DESCRIPTION_MAX
from tests.contract.support import NewUnitOfWork, get_project, ids, list_projects, save
from tests.fakes import TickingClock

EVERYTHING = Window(limit=1000)


# --- add, get, remove ---------------------------------------------------------


async def test_adding_a_project_gives_it_an_id(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    first = Project.create("First", None, clock.now())
    second = Project.create("Second", None, clock.now())
    assert first.id is None

    await save(new_uow, first, second)

    assert isinstance(first.id, int)
    assert isinstance(second.id, int)
    assert first.id != second.id


async def test_a_stored_project_reads_back_equal_in_every_field(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    created = clock.now() + timedelta(microseconds=11)
    archived = clock.now() + timedelta(microseconds=999_999)
    project = Project.create("Roadmap 2026", "Plans — ünïcode 🚀\nsecond line", created)
    project.archive(archived)
    await save(new_uow, project)
    assert project.id is not None

    stored = await get_project(new_uow, project.id)

    assert stored == project
    assert stored is not None
    assert stored.archived is True
    assert stored.version == 2
    assert stored.created_at.microsecond == created.microsecond
    assert stored.updated_at.microsecond == archived.microsecond
    for moment in (stored.created_at, stored.updated_at):
        assert moment.utcoffset() == timedelta(0)
        assert moment.tzinfo == UTC


async def test_a_project_without_a_description_reads_back_with_none(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    project = Project.create("Bare", None, clock.now())
    await save(new_uow, project)
    assert project.id is not None

    stored = await get_project(new_uow, project.id)

    assert stored == project
    assert stored is not None
    assert stored.description is None
    assert stored.archived is False
    assert stored.version == 1


async def test_the_longest_texts_the_domain_allows_read_back_unchanged(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    # Characters, not bytes: each of these is four bytes in UTF-8.
    project = Project.create("💡" * NAME_MAX, "🚀" * DESCRIPTION_MAX, clock.now())
    await save(new_uow, project)
    assert project.id is not None

    assert await get_project(new_uow, project.id) == project


async def test_getting_an_unknown_project_gives_none(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    assert await get_project(new_uow, 1) is None
    project = Project.create("Exists", None, clock.now())
    await save(new_uow, project)
    assert project.id is not None

    assert await get_project(new_uow, project.id + 1000) is None


async def test_removing_a_project_returns_true_then_false(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    project = Project.create("Doomed", None, clock.now())
    await save(new_uow, project)
    assert project.id is not None

    async with new_uow() as uow:
        assert await uow.projects.remove(project.id) is True
        assert await uow.projects.remove(project.id) is False
        await uow.commit()
    async with new_uow() as uow:
        assert await uow.projects.remove(project.id) is False

    assert await get_project(new_uow, project.id) is None


async def test_a_removed_projects_id_is_never_given_to_a_new_project(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    first = Project.create("First", None, clock.now())
    second = Project.create("Second", None, clock.now())
    await save(new_uow, first, second)
    async with new_uow() as uow:
        assert first.id is not None
        assert second.id is not None
        assert await uow.projects.remove(first.id)
        assert await uow.projects.remove(second.id)
        await uow.commit()

    third = Project.create("Third", None, clock.now())
    await save(new_uow, third)

    assert third.id not in {first.id, second.id}


async def test_a_removed_projects_name_is_free_again(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    old = Project.create("Recycled", None, clock.now())
    await save(new_uow, old)
    async with new_uow() as uow:
        assert old.id is not None
        assert await uow.projects.remove(old.id)
        await uow.commit()

    new = Project.create("RECYCLED", None, clock.now())
    await save(new_uow, new)

    assert new.id is not None
    assert await get_project(new_uow, new.id) == new


async def test_removing_a_project_that_still_has_tasks_raises_and_keeps_it(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    project = Project.create("Busy", None, clock.now())
    await save(new_uow, project)
    task = Task.create("Still here", clock.now(), project_id=project.id)
    task.complete(clock.now())  # done tasks still belong to the project
    await save(new_uow, task)
    assert project.id is not None

    async with new_uow() as uow:
        with pytest.raises(ProjectHasTasks) as raised:
            await uow.projects.remove(project.id)

    assert raised.value.project_id == project.id
    assert await get_project(new_uow, project.id) == project


async def test_a_project_with_a_task_added_in_the_same_unit_of_work_cannot_be_removed(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    project = Project.create("Busy", None, clock.now())
    await save(new_uow, project)
    assert project.id is not None

    async with new_uow() as uow:
        await uow.tasks.add(Task.create("Fresh", clock.now(), project_id=project.id))
        with pytest.raises(ProjectHasTasks):
            await uow.projects.remove(project.id)

    assert await get_project(new_uow, project.id) == project


async def test_a_project_whose_tasks_are_gone_can_be_removed(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    project = Project.create("Emptied", None, clock.now())
    await save(new_uow, project)
    task = Task.create("Short-lived", clock.now(), project_id=project.id)
    await save(new_uow, task)
    assert project.id is not None
    assert task.id is not None

    async with new_uow() as uow:
        assert await uow.tasks.remove(task.id)
        assert await uow.projects.remove(project.id) is True
        await uow.commit()

    assert await get_project(new_uow, project.id) is None


# --- update, versions and unique names -----------------------------------------


async def test_an_update_with_the_expected_version_is_stored(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    project = Project.create("Before", "old", clock.now())
    await save(new_uow, project)
    assert project.id is not None

    async with new_uow() as uow:
        loaded = await uow.projects.get(project.id)
        assert loaded is not None
        loaded.apply(
            ProjectChanges(name="After", description=None, archived=True),
            clock.now() + timedelta(microseconds=5),
        )
        await uow.projects.update(loaded, expected_version=1)
        await uow.commit()

    stored = await get_project(new_uow, project.id)
    assert stored == loaded
    assert stored is not None
    assert stored.version == 2


async def test_an_update_with_a_stale_version_raises_and_changes_nothing(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    project = Project.create("Contested", None, clock.now())
    await save(new_uow, project)
    assert project.id is not None
    mine, theirs = project.copy(), project.copy()

    theirs.apply(ProjectChanges(description="theirs"), clock.now())
    async with new_uow() as uow:
        await uow.projects.update(theirs, expected_version=1)
        await uow.commit()

    mine.apply(ProjectChanges(description="mine"), clock.now())
    async with new_uow() as uow:
        with pytest.raises(ConcurrentUpdate):
            await uow.projects.update(mine, expected_version=1)

    assert await get_project(new_uow, project.id) == theirs


async def test_updating_a_removed_project_raises_concurrent_update(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    project = Project.create("Gone", None, clock.now())
    await save(new_uow, project)
    assert project.id is not None
    async with new_uow() as uow:
        await uow.projects.remove(project.id)
        await uow.commit()

    project.apply(ProjectChanges(description="back?"), clock.now())
    async with new_uow() as uow:
        with pytest.raises(ConcurrentUpdate):
            await uow.projects.update(project, expected_version=1)

    assert await get_project(new_uow, project.id) is None


async def test_the_stored_project_version_round_trips_through_updates(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    project = Project.create("Busy", None, clock.now())
    await save(new_uow, project)
    assert project.id is not None

    for n in range(3):
        expected = project.version
        project.apply(ProjectChanges(description=f"take {n}"), clock.now())
        async with new_uow() as uow:
            await uow.projects.update(project, expected_version=expected)
            await uow.commit()

    stored = await get_project(new_uow, project.id)
    assert stored is not None
    assert stored.version == project.version == 4


@pytest.mark.parametrize(
    ("existing", "clash"),
    [
        ("Roadmap", "Roadmap"),
        ("Roadmap", "roadmap"),
        ("Roadmap", "ROADMAP"),
        ("Roadmap", "  rOaDmAp  "),
        ("Ärger", "ÄRGER"),
        ("Ärger", "ärger"),
        ("Straße", "STRASSE"),
    ],
)
async def test_adding_a_project_whose_name_differs_only_in_case_raises(
    new_uow: NewUnitOfWork, clock: TickingClock, existing: str, clash: str
) -> None:
    first = Project.create(existing, None, clock.now())
    await save(new_uow, first)

    async with new_uow() as uow:
        with pytest.raises(ProjectNameTaken) as raised:
            await uow.projects.add(Project.create(clash, None, clock.now()))

    assert raised.value.name == clash.strip()
    page = await list_projects(new_uow, ProjectQuery(window=EVERYTHING))
    assert page.items == [first]
    assert page.total == 1


async def test_two_new_projects_in_one_unit_of_work_may_not_share_a_name(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    async with new_uow() as uow:
        await uow.projects.add(Project.create("Twin", None, clock.now()))
        with pytest.raises(ProjectNameTaken):
            await uow.projects.add(Project.create("TWIN", None, clock.now()))


async def test_renaming_a_project_to_anothers_name_in_any_case_raises(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> None:
    taken = Project.create("Roadmap", None, clock.now())
    other = Project.create("Backlog", None, clock.now())
    await save(new_uow, taken, other)
    assert other.id is not None
    renamed = other.copy()
    renamed.apply(ProjectChanges(name="ROADMAP"), clock.now())

    async with new_uow() as uow:
        with pytest.raises(ProjectNameTaken):
            await uow.projects.update(renamed, expected_version=1)

    assert await get_project(new_uow, other.id) == other


@pytest.mark.parametrize("new_name", ["Roadmap", "ROADMAP", "roadmap"])
async def test_a_project_keeps_its_own_name_in_any_case_on_update(
    new_uow: NewUnitOfWork, clock: TickingClock, new_name: str
) -> None:
    project = Project.create("Roadmap", None, clock.now())
    await save(new_uow, project, Project.create("Other", None, clock.now()))
    assert project.id is not None
    project.apply(ProjectChanges(name=new_name, description="changed"), clock.now())

    async with new_uow() as uow:
        await uow.projects.update(project, expected_version=1)
        await uow.commit()

    assert await get_project(new_uow, project.id) == project


# --- list: filters -------------------------------------------------------------


NAMES = [
    ("Home", False),
    ("Homework", True),
    ("Work", True),
    ("Ärger", False),
    ("Kein ÄRGER", True),
    ("Arger", False),
    ("50% done", False),
    ("500 done", True),
    ("snake_case", False),
    ("snakeXcase", False),
    ("C:\\dir", False),
    ("C:dir", False),
]


@pytest.fixture
async def filterable_projects(new_uow: NewUnitOfWork, clock: TickingClock) -> None:
    projects = []
    for name, archived in NAMES:
        project = Project.create(name, None, clock.now())
        if archived:
            project.archive(clock.now())
        projects.append(project)
    await save(new_uow, *projects)


PROJECT_FILTERS: list[tuple[dict[str, Any], set[str]]] = [
    ({}, {name for name, _ in NAMES}),
    ({"archived": True}, {"Homework", "Work", "Kein ÄRGER", "500 done"}),
    (
        {"archived": False},
        {
            "Home",
            "Ärger",
            "Arger",
            "50% done",
            "snake_case",
            "snakeXcase",
            "C:\\dir",
            "C:dir",
        },
    ),
    ({"q": "HOME"}, {"Home", "Homework"}),
    ({"q": "work"}, {"Homework", "Work"}),
    ({"q": "ÄRGER"}, {"Ärger", "Kein ÄRGER"}),
    ({"q": "ärger"}, {"Ärger", "Kein ÄRGER"}),
    ({"q": "%"}, {"50% done"}),
    ({"q": "0%"}, {"50% done"}),
    ({"q": "_"}, {"snake_case"}),
    ({"q": "e_c"}, {"snake_case"}),
    ({"q": "\\"}, {"C:\\dir"}),
    ({"q": ":\\d"}, {"C:\\dir"}),
    ({"q": "nothing like it"}, set()),
    ({"q": "home", "archived": True}, {"Homework"}),
    ({"q": "home", "archived": False}, {"Home"}),
    ({"q": "ärger", "archived": False}, {"Ärger"}),
    ({"q": "%", "archived": True}, set()),
]


@pytest.mark.parametrize(("filters", "expected"), PROJECT_FILTERS)
async def test_the_listing_holds_exactly_the_projects_matching_every_filter(
    new_uow: NewUnitOfWork,
    filterable_projects: None,
    filters: dict[str, Any],
    expected: set[str],
) -> None:
    page = await list_projects(new_uow, ProjectQuery(**filters, window=EVERYTHING))

    assert {project.name for project in page.items} == expected
    assert len(page.items) == len(expected)
    assert page.total == len(expected)


# --- list: sorting and pagination ----------------------------------------------


PROJECT_ORDER: dict[str, Callable[[Project], Any]] = {
    "id": lambda p: p.id,
    "name": lambda p: p.name.casefold(),
    "created_at": lambda p: p.created_at,
    "updated_at": lambda p: p.updated_at,
}


def expected_ids(
    projects: list[Project], field: ProjectSortField, descending: bool
) -> list[int | None]:
    key = PROJECT_ORDER[field]
    ascending = [p.id for p in sorted(projects, key=lambda p: (key(p), p.id))]
    return ascending[::-1] if descending else ascending


@pytest.fixture
async def sortable_projects(
    new_uow: NewUnitOfWork, clock: TickingClock
) -> list[Project]:
    """Five projects with tied timestamps, each field ordering them differently."""
    created = [clock.now() for _ in range(3)]
    updated = [clock.now() for _ in range(3)]
    rows = [
        ("beta", created[1], updated[2]),
        ("Alpha", created[0], updated[0]),
        ("delta", created[1], updated[1]),
        ("Gamma", created[0], updated[2]),
        ("Charlie", created[2], updated[0]),
    ]
    projects = []
    for name, created_at, updated_at in rows:
        project = Project.create(name, None, created_at)
        project.apply(ProjectChanges(description=f"about {name}"), updated_at)
        projects.append(project)
    await save(new_uow, *projects)
    return projects


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
@pytest.mark.parametrize("field", PROJECT_SORT_FIELDS)
async def test_projects_sort_by_every_field_with_ties_broken_by_id_the_same_way(
    new_uow: NewUnitOfWork,
    sortable_projects: list[Project],
    field: ProjectSortField,
    descending: bool,
) -> None:
    query = ProjectQuery(sort=field, descending=descending, window=EVERYTHING)

    page = await list_projects(new_uow, query)

    assert ids(page) == expected_ids(sortable_projects, field, descending)


@pytest.mark.parametrize("field", PROJECT_SORT_FIELDS)
async def test_descending_project_order_is_the_exact_reverse_of_ascending(
    new_uow: NewUnitOfWork,
    sortable_projects: list[Project],
    field: ProjectSortField,
) -> None:
    up = await list_projects(
        new_uow, ProjectQuery(sort=field, descending=False, window=EVERYTHING)
    )
    down = await list_projects(
        new_uow, ProjectQuery(sort=field, descending=True, window=EVERYTHING)
    )

    assert ids(down) == ids(up)[::-1]
    assert len(up.items) == len(sortable_projects)


async def test_names_sort_case_insensitively(
    new_uow: NewUnitOfWork, sortable_projects: list[Project]
) -> None:
    page = await list_projects(
        new_uow, ProjectQuery(sort="name", descending=False, window=EVERYTHING)
    )

    assert [p.name for p in page.items] == [
        "Alpha",
        "beta",
        "Charlie",
        "delta",
        "Gamma",
    ]


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
async def test_names_sort_by_their_casefolded_text_alike_on_every_backend(
    new_uow: NewUnitOfWork, clock: TickingClock, descending: bool
) -> None:
    # Spaces, punctuation and accents: a database's linguistic collation would
    # order these differently from the in-memory adapter.
    names = ["zebra", "Äpfel", "a-b", "apple", "ab", "a b", "Zulu", "Éclair"]
    projects = [Project.create(name, None, clock.now()) for name in names]
    await save(new_uow, *projects)

    page = await list_projects(
        new_uow, ProjectQuery(sort="name", descending=descending, window=EVERYTHING)
    )

    assert ids(page) == expected_ids(projects, "name", descending)
    expected = ["a b", "a-b", "ab", "apple", "zebra", "zulu", "äpfel", "éclair"]
    assert [p.name.casefold() for p in page.items] == (
        expected[::-1] if descending else expected
    )


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
@pytest.mark.parametrize("field", PROJECT_SORT_FIELDS)
async def test_project_pages_cover_the_whole_ordering_without_overlap_or_gaps(
    new_uow: NewUnitOfWork,
    sortable_projects: list[Project],
    field: ProjectSortField,
    descending: bool,
) -> None:
    everything = expected_ids(sortable_projects, field, descending)

    for limit in (1, 2, 3, 5):
        walked: list[int | None] = []
        for offset in range(0, len(sortable_projects) + limit, limit):
            query = ProjectQuery(
                sort=field,
                descending=descending,
                window=Window(limit=limit, offset=offset),
            )
            page = await list_projects(new_uow, query)
            assert page.total == len(sortable_projects), (limit, offset)
            walked.extend(ids(page))
        assert walked == everything, limit


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
@pytest.mark.parametrize("field", PROJECT_SORT_FIELDS)
async def test_walking_projects_by_positions_gives_exactly_the_whole_ordering(
    new_uow: NewUnitOfWork,
    sortable_projects: list[Project],
    field: ProjectSortField,
    descending: bool,
) -> None:
    everything = expected_ids(sortable_projects, field, descending)

    for limit in (1, 2, 3, 5, 6):
        walked: list[int | None] = []
        after: Position | None = None
        while True:
            query = ProjectQuery(
                sort=field, descending=descending, window=Window(limit), after=after
            )
            page = await list_projects(new_uow, query)
            walked.extend(ids(page))
            assert page.total == (len(sortable_projects) if after is None else None)
            if page.next is None:
                break
            after = page.next
        assert walked == everything, limit


async def test_a_walk_of_projects_by_positions_keeps_the_filters(
    new_uow: NewUnitOfWork, filterable_projects: None
) -> None:
    query = ProjectQuery(q="home", sort="name", descending=False, window=Window(1))

    first = await list_projects(new_uow, query)
    second = await list_projects(new_uow, replace(query, after=first.next))

    assert [p.name.casefold() for p in first.items + second.items] == sorted(
        p.name.casefold() for p in first.items + second.items
    )
    assert all("home" in p.name.casefold() for p in first.items + second.items)
    assert len(first.items + second.items) == 2
    assert second.next is None


@pytest.mark.parametrize(
    ("limit", "offset", "on_page"),
    [
        pytest.param(2, 0, 2, id="first-page-of-several"),
        pytest.param(3, 3, 2, id="partial-last-page"),
        pytest.param(1, 4, 1, id="exactly-full-last-page"),
        pytest.param(5, 0, 5, id="one-exactly-full-page"),
        pytest.param(3, 5, 0, id="offset-at-the-end"),
        pytest.param(3, 40, 0, id="offset-past-the-end"),
    ],
)
async def test_the_project_total_counts_every_match_whatever_the_window(
    new_uow: NewUnitOfWork,
    sortable_projects: list[Project],
    limit: int,
    offset: int,
    on_page: int,
) -> None:
    query = ProjectQuery(sort="id", descending=False, window=Window(limit, offset))

    page = await list_projects(new_uow, query)

    assert len(page.items) == on_page
    assert page.total == 5
    expected = expected_ids(sortable_projects, "id", False)[offset : offset + limit]
    assert ids(page) == expected


@pytest.mark.parametrize(
    ("limit", "offset", "on_page"),
    [
        pytest.param(1, 0, 1, id="full-page-of-several"),
        pytest.param(1, 1, 1, id="exactly-full-last-page"),
        pytest.param(5, 1, 1, id="partial-last-page"),
        pytest.param(4, 7, 0, id="offset-past-the-end"),
    ],
)
async def test_the_project_total_counts_only_the_matching_projects(
    new_uow: NewUnitOfWork,
    filterable_projects: None,
    limit: int,
    offset: int,
    on_page: int,
) -> None:
    query = ProjectQuery(q="home", window=Window(limit, offset))

    page = await list_projects(new_uow, query)

    assert len(page.items) == on_page
    assert all("home" in p.name.casefold() for p in page.items)
    assert page.total == 2


async def test_an_empty_repository_lists_no_projects_and_counts_zero(
    new_uow: NewUnitOfWork,
) -> None:
    page = await list_projects(new_uow, ProjectQuery())

    assert (page.items, page.total) == ([], 0)
