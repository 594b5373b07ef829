"""Listing tasks and projects: filters, search, sorting and pagination.

Task listings run twice: on GET /tasks, and on GET /projects/{id}/tasks with a
copy of every task in another project that the listing must leave out.
"""

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

import pytest
from httpx import AsyncClient, Response

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


async def test_a_listing_of_the_tasks_of_a_missing_project_is_404_not_empty(
    client: AsyncClient,
) -> None:
    await create_task(client)

    response = await client.get("/projects/999/tasks", params={"done": "false"})

    body = assert_problem(response, 404)
    assert "999" in body["detail"]
