"""Listing tasks and projects: filters, search, sorting and pagination.

Task listings run twice: on GET /tasks, and on GET /projects/{id}/tasks with a
copy of every task in another project that the listing must leave out.
"""

import base64
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient, Response

from entrypoints.container import Container, build_container
from entrypoints.http.app import create_app
from entrypoints.http.cursors import Cursors
from tests.api.helpers import (
    INT64_MAX,
    Json,
    assert_invalid,
    assert_problem,
    create_project,
    create_task,
    ids,
    patch,
    utc_timestamp,
)
from tests.conftest import test_settings

TASK_SORT_FIELDS = ["id", "created_at", "updated_at", "due_date", "priority", "title"]
PROJECT_SORT_FIELDS = ["id", "name", "created_at", "updated_at"]
PRIORITY_RANK = {"low": 1, "normal": 2, "high": 3, "urgent": 4}


@dataclass
class TaskListing:
    """Where tasks are listed, and how to make tasks that this listing shows."""

    client: AsyncClient
    path: str
    project_id: int | None = None
    other_project_id: int | None = None
    created: list[Json] = dataclass_field(default_factory=list)

    async def add(self, title: str = "A task", **fields: Any) -> Json:
        if self.other_project_id is not None:
            # A twin elsewhere, which this project's listing must not show.
            await create_task(
                self.client, title, project_id=self.other_project_id, **fields
            )
        task = await create_task(
            self.client, title, project_id=self.project_id, **fields
        )
        self.created.append(task)
        return task

    async def get(self, **params: Any) -> Response:
        return await self.client.get(self.path, params=params)

    async def ids(self, **params: Any) -> list[int]:
        return ids(await self.get(**params))


@pytest.fixture(params=["all tasks", "project tasks"])
async def listing(request: pytest.FixtureRequest, client: AsyncClient) -> TaskListing:
    if request.param == "all tasks":
        return TaskListing(client, "/tasks")
    project = await create_project(client, "Listed")
    other = await create_project(client, "Elsewhere")
    return TaskListing(
        client, f"/projects/{project['id']}/tasks", project["id"], other["id"]
    )


def by_id(tasks: list[Json]) -> list[int]:
    return [task["id"] for task in tasks]


# --- the envelope and pagination ---------------------------------------------


async def test_a_listing_is_an_envelope_of_items_total_limit_offset_and_next_cursor(
    listing: TaskListing,
) -> None:
    task = await listing.add()

    response = await listing.get()

    assert response.status_code == 200
    assert response.json() == {
        "items": [task],
        "total": 1,
        "limit": 20,
        "offset": 0,
        "next_cursor": None,
    }


async def test_an_empty_listing_has_no_items_and_a_total_of_zero(
    listing: TaskListing,
) -> None:
    response = await listing.get()

    assert response.json() == {
        "items": [],
        "total": 0,
        "limit": 20,
        "offset": 0,
        "next_cursor": None,
    }


async def test_a_listing_shows_20_items_by_default_and_counts_them_all(
    listing: TaskListing,
) -> None:
    for n in range(21):
        await listing.add(f"task {n}")

    body = (await listing.get()).json()

    assert len(body["items"]) == 20
    assert body["total"] == 21
    assert body["limit"] == 20
    assert body["offset"] == 0


async def test_the_default_order_is_newest_first(listing: TaskListing) -> None:
    for n in range(4):
        await listing.add(f"task {n}")

    assert await listing.ids() == list(reversed(by_id(listing.created)))


async def test_limit_and_offset_select_a_window_and_echo_in_the_envelope(
    listing: TaskListing,
) -> None:
    for n in range(5):
        await listing.add(f"task {n}")
    everything = await listing.ids(sort="id")

    body = (await listing.get(sort="id", limit=2, offset=1)).json()

    assert [item["id"] for item in body["items"]] == everything[1:3]
    assert body["total"] == 5
    assert body["limit"] == 2
    assert body["offset"] == 1


async def test_an_offset_past_the_end_gives_an_empty_page_with_the_total(
    listing: TaskListing,
) -> None:
    await listing.add()
    await listing.add()

    body = (await listing.get(offset=10)).json()

    assert body == {
        "items": [],
        "total": 2,
        "limit": 20,
        "offset": 10,
        "next_cursor": None,
    }


async def test_the_largest_offset_is_an_empty_page(listing: TaskListing) -> None:
    await listing.add()

    body = (await listing.get(offset=INT64_MAX)).json()

    assert body == {
        "items": [],
        "total": 1,
        "limit": 20,
        "offset": INT64_MAX,
        "next_cursor": None,
    }


@pytest.mark.parametrize("limit", [1, 100])
async def test_limits_of_1_and_100_are_accepted(
    listing: TaskListing, limit: int
) -> None:
    await listing.add()
    await listing.add()

    body = (await listing.get(limit=limit)).json()

    assert body["limit"] == limit
    assert len(body["items"]) == min(limit, 2)
    assert body["total"] == 2


async def test_a_limit_or_offset_out_of_range_is_rejected_not_clamped(
    listing: TaskListing,
) -> None:
    await listing.add()
    bad: list[tuple[str, object]] = [
        ("limit", 0),
        ("limit", 101),
        ("limit", -1),
        ("limit", 1000),
        ("limit", "ten"),
        ("offset", -1),
        ("offset", "first"),
        ("offset", INT64_MAX + 1),
    ]

    for field, value in bad:
        response = await listing.get(**{field: value})
        assert response.status_code == 422, (field, value, response.text)
        assert_invalid(response, field, location="query")


async def test_pages_neither_overlap_nor_skip_when_sort_values_tie(
    listing: TaskListing,
) -> None:
    for n in range(7):
        await listing.add(f"task {n}", priority=["high", "low"][n % 2])

    for sort in ("priority", "-priority"):
        whole = await listing.ids(sort=sort)
        pages = [await listing.ids(sort=sort, limit=3, offset=o) for o in (0, 3, 6)]
        assert [i for page in pages for i in page] == whole
        assert sorted(whole) == sorted(by_id(listing.created))


# --- sorting ------------------------------------------------------------------


async def _sortable_tasks(listing: TaskListing) -> None:
    """Tasks whose values tie on some fields and whose order differs per field."""
    specs: list[dict[str, Any]] = [
        {"title": "delta", "priority": "high", "due_date": "2026-03-01"},
        {"title": "alpha", "priority": "low"},
        {"title": "charlie", "priority": "urgent", "due_date": "2026-01-15"},
        {"title": "bravo", "priority": "normal", "due_date": "2026-03-01"},
        {"title": "alpha", "priority": "high", "due_date": "2026-02-01"},
        {"title": "echo", "priority": "low"},
        {"title": "bravo", "priority": "urgent", "due_date": "2026-01-15"},
    ]
    for spec in specs:
        await listing.add(**spec)
    # Touch tasks out of creation order, so updated_at differs from created_at.
    for index in (3, 0, 5):
        task = listing.created[index]
        listing.created[index] = await patch(
            listing.client, f"/tasks/{task['id']}", description=f"touched {index}"
        )


SORT_KEYS: dict[str, Callable[[Json], Any]] = {
    "id": lambda t: t["id"],
    "created_at": lambda t: utc_timestamp(t["created_at"]),
    "updated_at": lambda t: utc_timestamp(t["updated_at"]),
    "name": lambda p: p["name"],
    "priority": lambda t: PRIORITY_RANK[t["priority"]],
    "title": lambda t: t["title"],
}


# due_date has a test of its own: where undated tasks go is not specified.
@pytest.mark.parametrize("sort", [f for f in TASK_SORT_FIELDS if f != "due_date"])
async def test_tasks_sort_ascending_by_each_field_with_ties_broken_on_id(
    listing: TaskListing, sort: str
) -> None:
    await _sortable_tasks(listing)
    key = SORT_KEYS[sort]
    expected = sorted(listing.created, key=lambda t: (key(t), t["id"]))

    assert await listing.ids(sort=sort) == by_id(expected)


@pytest.mark.parametrize("sort", TASK_SORT_FIELDS)
async def test_tasks_sorted_descending_are_exactly_the_reverse_of_ascending(
    listing: TaskListing, sort: str
) -> None:
    await _sortable_tasks(listing)

    ascending = await listing.ids(sort=sort)
    descending = await listing.ids(sort=f"-{sort}")

    assert descending == list(reversed(ascending))
    assert sorted(ascending) == sorted(by_id(listing.created))


async def test_tasks_sort_by_due_date_with_ties_on_id_and_undated_together(
    listing: TaskListing,
) -> None:
    await _sortable_tasks(listing)
    dated = [t for t in listing.created if t["due_date"] is not None]
    undated = [t for t in listing.created if t["due_date"] is None]
    expected_dated = by_id(sorted(dated, key=lambda t: (t["due_date"], t["id"])))

    order = await listing.ids(sort="due_date")

    # Where undated tasks go is not specified, only that they stay together.
    undated_ids = by_id(sorted(undated, key=lambda t: t["id"]))
    assert order in (expected_dated + undated_ids, undated_ids + expected_dated)


async def test_priority_sorts_by_rank_not_alphabetically(
    listing: TaskListing,
) -> None:
    for priority in ("normal", "urgent", "low", "high"):
        await listing.add(priority, priority=priority)

    items = (await listing.get(sort="priority")).json()["items"]
    reverse = (await listing.get(sort="-priority")).json()["items"]

    assert [t["priority"] for t in items] == ["low", "normal", "high", "urgent"]
    assert [t["priority"] for t in reverse] == ["urgent", "high", "normal", "low"]


async def test_an_unknown_sort_field_is_rejected(listing: TaskListing) -> None:
    for sort in ("done", "-description", "+id", "id,title", "", "--id"):
        assert_invalid(await listing.get(sort=sort), "sort", location="query")


# --- filters ------------------------------------------------------------------


async def test_tasks_can_be_filtered_by_done(listing: TaskListing) -> None:
    done = await listing.add("done")
    await patch(listing.client, f"/tasks/{done['id']}", done=True)
    open_ = await listing.add("open")

    assert await listing.ids(done="true") == [done["id"]]
    assert await listing.ids(done="false") == [open_["id"]]


async def test_tasks_can_be_filtered_by_priority(listing: TaskListing) -> None:
    high = await listing.add("high", priority="high")
    await listing.add("low", priority="low")
    other_high = await listing.add("high too", priority="high")

    response = await listing.get(priority="high")

    assert ids(response) == [other_high["id"], high["id"]]
    assert response.json()["total"] == 2


async def test_tasks_can_be_filtered_by_due_dates_strictly(
    listing: TaskListing,
) -> None:
    early = await listing.add("early", due_date="2026-01-10")
    middle = await listing.add("middle", due_date="2026-01-20")
    late = await listing.add("late", due_date="2026-01-30")
    await listing.add("undated")

    assert await listing.ids(due_before="2026-01-20", sort="id") == [early["id"]]
    assert await listing.ids(due_after="2026-01-20", sort="id") == [late["id"]]
    between = await listing.ids(due_after="2026-01-10", due_before="2026-01-30")
    assert between == [middle["id"]]
    assert await listing.ids(due_before="2026-02-01", sort="id") == by_id(
        [early, middle, late]
    )


async def test_filters_combine(listing: TaskListing) -> None:
    match = await listing.add("Pay rent", priority="high", due_date="2026-01-05")
    await listing.add("Pay rent", priority="low", due_date="2026-01-05")
    await listing.add("Pay rent", priority="high", due_date="2026-03-05")
    await listing.add("Buy milk", priority="high", due_date="2026-01-05")
    finished = await listing.add("Pay rent", priority="high", due_date="2026-01-05")
    await patch(listing.client, f"/tasks/{finished['id']}", done=True)

    response = await listing.get(
        q="rent", priority="high", due_before="2026-02-01", done="false"
    )

    assert ids(response) == [match["id"]]
    assert response.json()["total"] == 1


async def test_q_matches_a_case_insensitive_substring_of_the_title(
    listing: TaskListing,
) -> None:
    first = await listing.add("Write the Tests")
    second = await listing.add("retest everything")
    await listing.add("Write docs")
    umlaut = await listing.add("Ärger vermeiden")

    assert await listing.ids(q="TEST", sort="id") == [first["id"], second["id"]]
    assert await listing.ids(q="äRGER") == [umlaut["id"]]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("%", ["100% done"]),
        ("0%", ["100% done"]),
        ("_", ["snake_case"]),
        ("e_c", ["snake_case"]),
        ("\\", ["back\\slash"]),
    ],
)
async def test_q_matches_wildcard_characters_literally(
    listing: TaskListing, q: str, expected: list[str]
) -> None:
    for title in ("100% done", "1000 done", "snake_case", "snakeXcase", "back\\slash"):
        await listing.add(title)

    items = (await listing.get(q=q)).json()["items"]

    assert [item["title"] for item in items] == expected


async def test_q_that_matches_nothing_gives_an_empty_page(
    listing: TaskListing,
) -> None:
    await listing.add("Write tests")

    body = (await listing.get(q="zzz")).json()

    assert body["items"] == []
    assert body["total"] == 0


async def test_a_bad_task_filter_is_rejected_naming_it(listing: TaskListing) -> None:
    bad = [
        ("done", "yes"),
        ("done", "1"),
        ("priority", "critical"),
        ("due_before", "2026-02-30"),
        ("due_after", "soon"),
        ("q", "a\x00b"),
    ]

    for field, value in bad:
        response = await listing.get(**{field: value})
        assert response.status_code == 422, (field, value, response.text)
        assert_invalid(response, field, location="query")


async def test_tasks_can_be_filtered_by_project(client: AsyncClient) -> None:
    project = await create_project(client, "Mine")
    other = await create_project(client, "Other")
    first = await create_task(client, "first", project_id=project["id"])
    await create_task(client, "elsewhere", project_id=other["id"])
    await create_task(client, "loose")
    second = await create_task(client, "second", project_id=project["id"])

    response = await client.get("/tasks", params={"project_id": project["id"]})

    assert ids(response) == [second["id"], first["id"]]
    assert response.json()["total"] == 2


async def test_filtering_tasks_by_an_unknown_project_gives_an_empty_page(
    client: AsyncClient,
) -> None:
    await create_task(client)

    response = await client.get("/tasks", params={"project_id": 999})

    assert response.status_code == 200
    assert response.json()["items"] == []
    assert response.json()["total"] == 0


@pytest.mark.parametrize("project_id", ["abc", "1.5", str(INT64_MAX + 1)])
async def test_a_bad_project_id_filter_is_rejected(
    client: AsyncClient, project_id: str
) -> None:
    response = await client.get("/tasks", params={"project_id": project_id})

    assert_invalid(response, "project_id", location="query")


# --- projects -----------------------------------------------------------------


async def _projects(client: AsyncClient, *names: str) -> list[Json]:
    return [await create_project(client, name) for name in names]


async def test_a_project_listing_is_the_same_envelope_newest_first(
    client: AsyncClient,
) -> None:
    first, second = await _projects(client, "first", "second")

    response = await client.get("/projects")

    assert response.status_code == 200
    assert response.json() == {
        "items": [second, first],
        "total": 2,
        "limit": 20,
        "offset": 0,
        "next_cursor": None,
    }


async def test_projects_are_paginated(client: AsyncClient) -> None:
    created = await _projects(client, *(f"project {n}" for n in range(5)))

    body = (await client.get("/projects", params={"sort": "id", "limit": 2})).json()
    rest = (
        await client.get("/projects", params={"sort": "id", "limit": 2, "offset": 4})
    ).json()

    assert [p["id"] for p in body["items"]] == by_id(created[:2])
    assert (body["total"], body["limit"], body["offset"]) == (5, 2, 0)
    assert [p["id"] for p in rest["items"]] == by_id(created[4:])
    assert (rest["total"], rest["limit"], rest["offset"]) == (5, 2, 4)


async def test_q_matches_a_case_insensitive_substring_of_the_project_name(
    client: AsyncClient,
) -> None:
    roadmap, _, plans = await _projects(client, "Roadmap 2026", "Garden", "MAP plans")

    response = await client.get("/projects", params={"q": "map", "sort": "id"})

    assert ids(response) == [roadmap["id"], plans["id"]]
    assert response.json()["total"] == 2


@pytest.mark.parametrize(
    ("q", "expected"), [("%", ["50% off"]), ("_", ["a_b"]), ("\\", ["x\\y"])]
)
async def test_project_q_matches_wildcard_characters_literally(
    client: AsyncClient, q: str, expected: list[str]
) -> None:
    await _projects(client, "50% off", "500 off", "a_b", "axb", "x\\y")

    items = (await client.get("/projects", params={"q": q})).json()["items"]

    assert [item["name"] for item in items] == expected


async def test_projects_can_be_filtered_by_archived(client: AsyncClient) -> None:
    active, old = await _projects(client, "Active", "Old")
    await patch(client, f"/projects/{old['id']}", archived=True)

    assert ids(await client.get("/projects", params={"archived": "true"})) == [
        old["id"]
    ]
    assert ids(await client.get("/projects", params={"archived": "false"})) == [
        active["id"]
    ]


async def _sortable_projects(client: AsyncClient) -> list[Json]:
    created = await _projects(client, "delta", "alpha", "echo", "charlie", "bravo")
    for index in (2, 0):
        project = created[index]
        created[index] = await patch(
            client, f"/projects/{project['id']}", description=f"touched {index}"
        )
    return created


@pytest.mark.parametrize("sort", PROJECT_SORT_FIELDS)
async def test_projects_sort_by_each_field_and_descending_is_the_exact_reverse(
    client: AsyncClient, sort: str
) -> None:
    created = await _sortable_projects(client)
    key = SORT_KEYS[sort]
    expected = sorted(created, key=lambda p: (key(p), p["id"]))

    ascending = ids(await client.get("/projects", params={"sort": sort}))
    descending = ids(await client.get("/projects", params={"sort": f"-{sort}"}))

    assert ascending == by_id(expected)
    assert descending == list(reversed(ascending))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"archived": "yes"}, "archived"),
        ({"sort": "title"}, "sort"),
        ({"sort": "-priority"}, "sort"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"offset": -1}, "offset"),
        ({"q": "a\x00b"}, "q"),
    ],
)
async def test_a_bad_project_listing_parameter_is_rejected_naming_it(
    client: AsyncClient, params: dict[str, Any], field: str
) -> None:
    response = await client.get("/projects", params=params)

    assert_invalid(response, field, location="query")


async def test_every_error_of_a_listing_is_named(client: AsyncClient) -> None:
    response = await client.get(
        "/tasks", params={"limit": 0, "offset": -1, "sort": "nope", "done": "maybe"}
    )

    assert_invalid(response, "limit", "offset", "sort", "done", location="query")


async def test_an_unknown_listing_parameter_is_rejected_naming_it(
    client: AsyncClient,
) -> None:
    for path in ("/tasks", "/projects"):
        response = await client.get(path, params={"colour": "red"})

        assert_invalid(response, "colour", location="query")


async def test_a_repeated_listing_parameter_counts_with_its_last_value(
    client: AsyncClient,
) -> None:
    for title in ("one", "two", "three"):
        await client.post("/tasks", json={"title": title})

    response = await client.get("/tasks?limit=1&limit=2&sort=id")

    assert response.status_code == 200
    assert response.json()["limit"] == 2
    assert [task["title"] for task in response.json()["items"]] == ["one", "two"]


async def test_a_listing_of_the_tasks_of_a_missing_project_is_404_not_empty(
    client: AsyncClient,
) -> None:
    await create_task(client)

    response = await client.get("/projects/999/tasks", params={"done": "false"})

    body = assert_problem(response, 404)
    assert "999" in body["detail"]


# --- cursors ------------------------------------------------------------------


@pytest.fixture
def known_secret(container: Container) -> Cursors:
    """The app signs with a key the test knows (TASKHUB_CURSOR_SECRET), so the
    test can sign cursors of its own making."""
    container.config.cursor_secret.from_value("a known secret")
    return Cursors(b"a known secret")


@pytest.fixture
def cap_of_three(container: Container) -> None:
    """Totals count at most three matches (TASKHUB_LIST_COUNT_CAP=3)."""
    container.config.list_count_cap.from_value(3)


@pytest.fixture
async def another_instance(database_url: str, token: str) -> AsyncIterator[AsyncClient]:
    """A second taskhub on the same database, as another worker or host is."""
    container = build_container(test_settings(database_url))
    app = create_app(container)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with (
            app.router.lifespan_context(app),
            AsyncClient(
                transport=ASGITransport(app), base_url="http://taskhub", headers=headers
            ) as client,
        ):
            yield client
    finally:
        if container.engine.initialized:
            await container.engine().dispose()


async def walk(
    client: AsyncClient, path: str, limit: int, **params: Any
) -> tuple[list[int], list[Json]]:
    """Every item by following next_cursor from the first page; ids and bodies."""
    walked: list[int] = []
    bodies: list[Json] = []
    cursor = None
    for _ in range(100):
        page_params = {**params, "limit": limit}
        if cursor is not None:
            page_params["cursor"] = cursor
        response = await client.get(path, params=page_params)
        walked.extend(ids(response))
        body = response.json()
        bodies.append(body)
        cursor = body["next_cursor"]
        if cursor is None:
            return walked, bodies
        assert len(body["items"]) == limit
    raise AssertionError("the walk never ended")


@pytest.mark.parametrize("limit", [1, 3])
@pytest.mark.parametrize("sort", TASK_SORT_FIELDS)
async def test_walking_tasks_by_cursor_gives_exactly_the_order_of_offset_pages(
    listing: TaskListing, sort: str, limit: int
) -> None:
    await _sortable_tasks(listing)  # ties, and tasks without a due date

    for direction in ("", "-"):
        whole = await listing.ids(sort=direction + sort)
        walked, bodies = await walk(
            listing.client, listing.path, limit, sort=direction + sort
        )
        assert walked == whole
        assert len(whole) == len(listing.created)
        assert bodies[0]["total"] == len(whole)
        assert all(body["total"] is None for body in bodies[1:])
        assert all(body["offset"] == 0 for body in bodies)


@pytest.mark.parametrize("sort", PROJECT_SORT_FIELDS)
async def test_walking_projects_by_cursor_gives_exactly_the_order_of_offset_pages(
    client: AsyncClient, sort: str
) -> None:
    await _sortable_projects(client)

    for direction in ("", "-"):
        whole = ids(await client.get("/projects", params={"sort": direction + sort}))
        walked, _ = await walk(client, "/projects", 2, sort=direction + sort)
        assert walked == whole


async def test_a_walk_by_cursor_keeps_the_filters(listing: TaskListing) -> None:
    for n in range(7):
        await listing.add(f"task {n}", priority=["high", "low"][n % 3 == 0])

    walked, _ = await walk(listing.client, listing.path, 2, priority="high")

    assert walked == await listing.ids(priority="high")
    assert len(walked) == 4


async def test_an_offset_page_gives_a_cursor_for_the_page_after_it(
    listing: TaskListing,
) -> None:
    for n in range(6):
        await listing.add(f"task {n}")
    everything = await listing.ids(sort="id")

    page = (await listing.get(sort="id", limit=2, offset=2)).json()
    after = await listing.get(sort="id", limit=2, cursor=page["next_cursor"])

    assert ids(after) == everything[4:6]
    assert after.json()["next_cursor"] is None


async def test_the_last_page_has_no_next_cursor(listing: TaskListing) -> None:
    for n in range(4):
        await listing.add(f"task {n}")

    full = (await listing.get(limit=4)).json()
    more = (await listing.get(limit=3)).json()

    assert full["next_cursor"] is None
    assert isinstance(more["next_cursor"], str)


async def test_tasks_made_or_deleted_during_a_walk_neither_repeat_nor_skip_others(
    listing: TaskListing,
) -> None:
    for n in range(6):
        await listing.add(f"task {n}")
    oldest_first = by_id(listing.created)

    first = (await listing.get(sort="id", limit=2)).json()
    await listing.add("made meanwhile")  # after the walk's end: it shows
    gone = oldest_first[2]
    assert (await listing.client.delete(f"/tasks/{gone}")).status_code == 204
    await listing.client.delete(f"/tasks/{oldest_first[0]}")  # already walked
    rest, _ = await walk_from(listing, first["next_cursor"], sort="id", limit=2)

    walked = [item["id"] for item in first["items"]] + rest
    expected = [i for i in oldest_first if i != gone] + [listing.created[-1]["id"]]
    assert walked == expected


async def walk_from(
    listing: TaskListing, cursor: str, **params: Any
) -> tuple[list[int], list[Json]]:
    walked: list[int] = []
    bodies: list[Json] = []
    while cursor is not None:
        response = await listing.get(cursor=cursor, **params)
        walked.extend(ids(response))
        bodies.append(response.json())
        cursor = response.json()["next_cursor"]
    return walked, bodies


async def _a_cursor(listing: TaskListing, **params: Any) -> str:
    for n in range(3):
        await listing.add(f"task {n}", priority="high")
    cursor = (await listing.get(limit=1, **params)).json()["next_cursor"]
    assert isinstance(cursor, str)
    return cursor


@pytest.mark.parametrize(
    "other",
    [
        {"sort": "id"},
        {"sort": "created_at"},
        {"priority": "high", "sort": "-created_at"},
        {"q": "task"},
        {"done": "false"},
        {"due_before": "2030-01-01"},
    ],
)
async def test_a_cursor_used_with_another_sort_or_filter_is_rejected(
    listing: TaskListing, other: dict[str, Any]
) -> None:
    cursor = await _a_cursor(listing, sort="-created_at")

    response = await listing.get(cursor=cursor, **other)

    body = assert_invalid(response, "cursor", location="query")
    assert "sort" in body["errors"][0]["message"]


async def test_a_cursor_of_one_listing_is_rejected_by_another(
    client: AsyncClient,
) -> None:
    project = await create_project(client, "Home")
    other = await create_project(client, "Work")
    for _ in range(3):
        await create_task(client, project_id=project["id"])
        await create_project(client, f"p{_}")
    path = f"/projects/{project['id']}/tasks"
    cursor = (await client.get(path, params={"limit": 1})).json()["next_cursor"]

    for elsewhere in ("/tasks", "/projects", f"/projects/{other['id']}/tasks"):
        response = await client.get(elsewhere, params={"cursor": cursor})
        assert_invalid(response, "cursor", location="query")
    assert ids(await client.get(path, params={"limit": 1, "cursor": cursor}))


def _flip(text: str, at: int) -> str:
    swapped = "A" if text[at] != "A" else "B"
    return text[:at] + swapped + text[at + 1 :]


GARBAGE = [
    "",
    "x",
    "....",
    "a.b",
    "not base64!.x",
    "ümlaut.ü",
    "💡.💡",
    "\x00.\x00",
    "=.=",
    "a" * 1000 + ".a",
    "a" * 5000,
    "eyJ.eyJ",
    "null.null",
]


async def test_a_tampered_or_garbage_cursor_is_a_422_and_changes_nothing(
    listing: TaskListing,
) -> None:
    cursor = await _a_cursor(listing)
    before = await listing.get()
    payload, tag = cursor.split(".")
    tampered = [
        _flip(cursor, 0),
        _flip(cursor, len(payload) - 1),
        _flip(cursor, len(cursor) - 2),
        payload + "." + tag[:-2],
        payload + "A." + tag,
        payload,
        tag + "." + payload,
        cursor + ".x",
        cursor + "=",
    ]

    for bad in tampered + GARBAGE:
        response = await listing.get(cursor=bad)
        assert_invalid(response, "cursor", location="query")
    assert (await listing.get()).json() == before.json()


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"{}",
        b"[]",
        b"[1, 2, 3, 4]",
        b'"text"',
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        b"\xff\xfe",
    ],
)
async def test_a_signed_cursor_with_a_malformed_payload_is_a_422(
    known_secret: Cursors, client: AsyncClient, payload: bytes
) -> None:
    response = await client.get("/tasks", params={"cursor": known_secret.seal(payload)})

    assert_invalid(response, "cursor", location="query")


@pytest.mark.parametrize(
    ("sort", "value", "last_id"),
    [
        ("-created_at", "2026-01-01", 1),  # a date, not a moment
        ("-created_at", "2026-01-01T00:00:00", 1),  # no offset
        ("-created_at", "0001-01-01T00:00:00+14:00", 1),  # before the year 1 in UTC
        ("-created_at", "9999-12-31T23:59:59-14:00", 1),  # after 9999 in UTC
        ("-created_at", 1700000000, 1),
        ("-created_at", None, 1),
        ("due_date", "2026-02-30", 1),
        ("due_date", "2026-1-1", 1),
        ("due_date", 20260101, 1),
        ("priority", 5, 1),
        ("priority", 2**70, 1),
        ("priority", "2", 1),
        ("priority", True, 1),
        ("priority", 2.0, 1),
        ("title", "nul\x00", 1),
        ("title", 5, 1),
        ("title", ["a"], 1),
        ("id", -1, 1),
        ("id", 2**63, 1),
        ("id", 1, -1),
        ("id", 1, 2**63),
        ("id", 1, "1"),
        ("id", 1, None),
    ],
)
async def test_a_signed_cursor_with_a_value_of_the_wrong_kind_is_a_422(
    known_secret: Cursors,
    client: AsyncClient,
    sort: str,
    value: object,
    last_id: object,
) -> None:
    await create_task(client, "first")
    await create_task(client, "second")
    good = (await client.get("/tasks", params={"sort": sort, "limit": 1})).json()
    # The digest of this very listing, from a cursor the service issued.
    digest = json.loads(_payload(good["next_cursor"]))[0]
    payload = json.dumps([digest, value, last_id]).encode()
    assert known_secret.seal(_payload(good["next_cursor"])) == good["next_cursor"]

    response = await client.get(
        "/tasks", params={"sort": sort, "cursor": known_secret.seal(payload)}
    )

    assert_invalid(response, "cursor", location="query")


def _payload(cursor: str) -> bytes:
    encoded = cursor.split(".")[0]
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))


async def test_a_cursor_with_an_offset_is_rejected(listing: TaskListing) -> None:
    cursor = await _a_cursor(listing)

    response = await listing.get(cursor=cursor, offset=1)

    assert_invalid(response, "cursor", location="query")
    assert ids(await listing.get(cursor=cursor, offset=0))


async def test_count_exact_counts_cursor_pages_too(listing: TaskListing) -> None:
    cursor = await _a_cursor(listing)

    counted = (await listing.get(cursor=cursor, count="exact")).json()
    uncounted = (await listing.get(cursor=cursor)).json()

    assert counted["total"] == 3
    assert uncounted["total"] is None
    assert counted["items"] == uncounted["items"]


async def test_an_unknown_count_is_rejected(listing: TaskListing) -> None:
    assert_invalid(await listing.get(count="estimate"), "count", location="query")


async def test_the_total_is_exact_up_to_the_cap_and_null_above_it(
    cap_of_three: None, client: AsyncClient
) -> None:
    capped = client
    for n in range(4):
        await create_task(capped, f"task {n}")
        await create_project(capped, f"project {n}")

    for path in ("/tasks", "/projects"):
        assert (await capped.get(path, params={"limit": 1})).json()["total"] is None
        exact = await capped.get(path, params={"limit": 1, "count": "exact"})
        assert exact.json()["total"] == 4
        three = await capped.get(path, params={"limit": 1, "q": "1"})
        assert three.json()["total"] == 1
        # A page that ends the listing tells its total, cap or not.
        last = await capped.get(path, params={"limit": 3, "offset": 2})
        assert last.json()["total"] == 4
    for n in range(3):
        await create_task(capped, f"another {n}")
    filtered = await capped.get("/tasks", params={"limit": 1, "q": "another"})
    assert filtered.json()["total"] == 3  # at the cap: still exact


@pytest.mark.parametrize(
    "database_url",
    ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)
async def test_every_instance_on_one_database_accepts_the_others_cursors(
    client: AsyncClient, another_instance: AsyncClient
) -> None:
    # No setting: the key comes from the database, the same for all.
    first, second = client, another_instance
    for n in range(3):
        await create_task(first, f"task {n}")
    cursor = (await first.get("/tasks", params={"limit": 1})).json()["next_cursor"]

    response = await second.get("/tasks", params={"limit": 1, "cursor": cursor})

    assert len(ids(response)) == 1


async def test_a_cursor_after_the_longest_title_there_can_be_works(
    listing: TaskListing,
) -> None:
    # Each "ΐ" casefolds to three characters of two bytes each in UTF-8.
    longest = "ΐ" * 200
    await listing.add(longest)
    await listing.add(longest)

    first = (await listing.get(sort="title", limit=1)).json()
    second = await listing.get(sort="title", limit=1, cursor=first["next_cursor"])

    assert len(first["next_cursor"]) > 1000
    assert ids(second) == [listing.created[1]["id"]]
