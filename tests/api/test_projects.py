"""Creating, reading, changing and deleting projects over HTTP."""

import asyncio

import pytest
from httpx import AsyncClient

from tests.api.helpers import (
    assert_invalid,
    assert_problem,
    create_project,
    create_task,
    patch,
    utc_timestamp,
)
from tests.fakes import TickingClock

# --- creating -----------------------------------------------------------------


async def test_a_created_project_is_answered_with_201_a_location_and_the_project(
    client: AsyncClient,
) -> None:
    response = await client.post("/projects", json={"name": "Roadmap"})

    assert response.status_code == 201
    project = response.json()
    assert response.headers["location"] == f"/projects/{project['id']}"
    assert project["name"] == "Roadmap"
    assert project["description"] is None
    assert project["archived"] is False
    assert set(project) == {
        "id", "name", "description", "archived", "created_at", "updated_at",
        "version",
    }  # fmt: skip


async def test_a_created_project_can_be_read_back_at_its_location(
    client: AsyncClient,
) -> None:
    created = await client.post(
        "/projects", json={"name": "Roadmap", "description": "Next year"}
    )

    fetched = await client.get(created.headers["location"])

    assert fetched.status_code == 200
    assert fetched.json() == created.json()
    assert fetched.json()["description"] == "Next year"


async def test_a_project_name_is_stored_trimmed(client: AsyncClient) -> None:
    project = await create_project(client, "  Roadmap  ")

    assert project["name"] == "Roadmap"


@pytest.mark.parametrize("length", [2, 120])
async def test_a_project_name_of_2_to_120_characters_is_accepted(
    client: AsyncClient, length: int
) -> None:
    project = await create_project(client, "n" * length)

    assert project["name"] == "n" * length


@pytest.mark.parametrize("name", ["", "n", " n ", "n" * 121, "   "])
async def test_a_project_name_outside_2_to_120_characters_is_rejected(
    client: AsyncClient, name: str
) -> None:
    response = await client.post("/projects", json={"name": name})

    assert_invalid(response, "name", location="body")
    assert (await client.get("/projects")).json()["total"] == 0


async def test_a_project_name_length_is_counted_after_trimming(
    client: AsyncClient,
) -> None:
    project = await create_project(client, "  " + "n" * 120 + "  ")

    assert project["name"] == "n" * 120


async def test_a_project_without_a_name_is_rejected(client: AsyncClient) -> None:
    response = await client.post("/projects", json={"description": "nameless"})

    assert_invalid(response, "name", location="body")


@pytest.mark.parametrize("duplicate", ["Roadmap", "roadmap", "ROADMAP", " RoadMap "])
async def test_a_duplicate_project_name_ignoring_case_is_a_conflict(
    client: AsyncClient, duplicate: str
) -> None:
    await create_project(client, "Roadmap")

    response = await client.post("/projects", json={"name": duplicate})

    assert_problem(response, 409)
    assert (await client.get("/projects")).json()["total"] == 1


async def test_concurrent_creates_with_the_same_name_make_exactly_one_project(
    client: AsyncClient,
) -> None:
    responses = await asyncio.gather(
        client.post("/projects", json={"name": "Roadmap"}),
        client.post("/projects", json={"name": "Roadmap"}),
    )

    assert sorted(r.status_code for r in responses) == [201, 409]
    conflict = next(r for r in responses if r.status_code == 409)
    assert_problem(conflict, 409)
    listing = (await client.get("/projects")).json()
    assert listing["total"] == 1
    assert [p["name"] for p in listing["items"]] == ["Roadmap"]


async def test_project_timestamps_are_iso_8601_in_utc(client: AsyncClient) -> None:
    project = await create_project(client)
    renamed = await patch(client, f"/projects/{project['id']}", name="Renamed")

    for body in (project, renamed):
        utc_timestamp(body["created_at"])
        utc_timestamp(body["updated_at"])


# --- reading ------------------------------------------------------------------


async def test_an_unknown_project_is_404(client: AsyncClient) -> None:
    response = await client.get("/projects/999")

    body = assert_problem(response, 404)
    assert "999" in body["detail"]


async def test_the_tasks_of_an_unknown_project_are_404(client: AsyncClient) -> None:
    response = await client.get("/projects/999/tasks")

    assert_problem(response, 404)


async def test_the_tasks_of_a_project_are_only_its_own(client: AsyncClient) -> None:
    mine = await create_project(client, "Mine")
    other = await create_project(client, "Other")
    first = await create_task(client, "first", project_id=mine["id"])
    await create_task(client, "elsewhere", project_id=other["id"])
    await create_task(client, "loose")
    second = await create_task(client, "second", project_id=mine["id"])

    response = await client.get(f"/projects/{mine['id']}/tasks")

    assert response.status_code == 200
    assert response.json() == {
        "items": [second, first],
        "total": 2,
        "limit": 20,
        "offset": 0,
        "next_cursor": None,
    }


async def test_a_project_without_tasks_lists_an_empty_page(
    client: AsyncClient,
) -> None:
    project = await create_project(client)

    response = await client.get(f"/projects/{project['id']}/tasks")

    assert response.json() == {
        "items": [],
        "total": 0,
        "limit": 20,
        "offset": 0,
        "next_cursor": None,
    }


# --- partial updates ----------------------------------------------------------


async def test_a_project_can_be_renamed(client: AsyncClient) -> None:
    project = await create_project(client, "Roadmap", description="words")

    renamed = await patch(client, f"/projects/{project['id']}", name="  Plans  ")

    assert renamed["name"] == "Plans"
    assert renamed["description"] == "words"
    assert renamed["archived"] is False
    assert renamed["created_at"] == project["created_at"]
    assert renamed["version"] == project["version"] + 1
    assert utc_timestamp(renamed["updated_at"]) > utc_timestamp(project["updated_at"])
    assert (await client.get(f"/projects/{project['id']}")).json() == renamed


async def test_renaming_a_project_onto_a_taken_name_ignoring_case_is_a_conflict(
    client: AsyncClient,
) -> None:
    await create_project(client, "Roadmap")
    project = await create_project(client, "Plans")

    response = await client.patch(
        f"/projects/{project['id']}", json={"name": "ROADMAP"}
    )

    assert_problem(response, 409)
    assert (await client.get(f"/projects/{project['id']}")).json() == project


async def test_a_project_can_change_the_case_of_its_own_name(
    client: AsyncClient,
) -> None:
    project = await create_project(client, "roadmap")

    renamed = await patch(client, f"/projects/{project['id']}", name="Roadmap")

    assert renamed["name"] == "Roadmap"
    assert renamed["version"] == project["version"] + 1


async def test_a_project_name_is_checked_on_rename_too(client: AsyncClient) -> None:
    project = await create_project(client)

    short = await client.patch(f"/projects/{project['id']}", json={"name": " n "})
    long = await client.patch(f"/projects/{project['id']}", json={"name": "n" * 121})
    ok = await patch(client, f"/projects/{project['id']}", name=" " + "n" * 120 + " ")

    assert_invalid(short, "name", location="body")
    assert_invalid(long, "name", location="body")
    assert ok["name"] == "n" * 120


async def test_a_project_can_be_archived_and_unarchived(client: AsyncClient) -> None:
    project = await create_project(client)

    archived = await patch(client, f"/projects/{project['id']}", archived=True)
    unarchived = await patch(client, f"/projects/{project['id']}", archived=False)

    assert archived["archived"] is True
    assert archived["version"] == project["version"] + 1
    assert unarchived["archived"] is False
    assert unarchived["version"] == project["version"] + 2


async def test_an_explicit_null_clears_a_project_description(
    client: AsyncClient,
) -> None:
    project = await create_project(client, description="words")

    cleared = await patch(client, f"/projects/{project['id']}", description=None)

    assert cleared["description"] is None
    assert cleared["name"] == project["name"]
    assert cleared["version"] == project["version"] + 1


async def test_a_project_patch_changes_only_the_fields_it_sends(
    client: AsyncClient,
) -> None:
    project = await create_project(client, "Roadmap", description="words")

    updated = await patch(client, f"/projects/{project['id']}", description="more")

    assert updated["description"] == "more"
    assert updated["name"] == "Roadmap"
    assert updated["archived"] is False


async def test_a_project_patch_that_changes_nothing_leaves_version_and_updated_at(
    client: AsyncClient, clock: TickingClock
) -> None:
    project = await create_project(client, "Roadmap", description="words")
    clock.advance(days=1)

    empty = await patch(client, f"/projects/{project['id']}")
    same = await patch(
        client,
        f"/projects/{project['id']}",
        name="Roadmap",
        description="words",
        archived=False,
    )

    assert empty == project
    assert same == project
    assert (await client.get(f"/projects/{project['id']}")).json() == project


async def test_patching_an_unknown_project_is_404(client: AsyncClient) -> None:
    response = await client.patch("/projects/999", json={"name": "Ghost"})

    assert_problem(response, 404)


# --- deleting -----------------------------------------------------------------


async def test_deleting_a_project_answers_204_with_no_body_and_then_it_is_gone(
    client: AsyncClient,
) -> None:
    project = await create_project(client)

    response = await client.delete(f"/projects/{project['id']}")

    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await client.get(f"/projects/{project['id']}"), 404)
    assert_problem(await client.get(f"/projects/{project['id']}/tasks"), 404)
    assert_problem(await client.delete(f"/projects/{project['id']}"), 404)


async def test_deleting_an_unknown_project_is_404(client: AsyncClient) -> None:
    response = await client.delete("/projects/999")

    assert_problem(response, 404)


async def test_a_project_with_tasks_cannot_be_deleted_and_says_how_many(
    client: AsyncClient,
) -> None:
    project = await create_project(client)
    await create_task(client, "one", project_id=project["id"])
    await create_task(client, "two", project_id=project["id"])

    response = await client.delete(f"/projects/{project['id']}")

    body = assert_problem(response, 409)
    assert "2 tasks" in body["detail"]
    assert (await client.get(f"/projects/{project['id']}")).json() == project


async def test_a_project_with_one_task_says_so_when_it_cannot_be_deleted(
    client: AsyncClient,
) -> None:
    project = await create_project(client)
    await create_task(client, project_id=project["id"])

    response = await client.delete(f"/projects/{project['id']}")

    body = assert_problem(response, 409)
    assert "1 task" in body["detail"]


async def test_an_archived_project_with_tasks_cannot_be_deleted_either(
    client: AsyncClient,
) -> None:
    project = await create_project(client)
    await create_task(client, project_id=project["id"])
    await patch(client, f"/projects/{project['id']}", archived=True)

    response = await client.delete(f"/projects/{project['id']}")

    assert_problem(response, 409)


async def test_a_project_can_be_deleted_once_its_tasks_are_gone(
    client: AsyncClient,
) -> None:
    project = await create_project(client)
    deleted = await create_task(client, project_id=project["id"])
    moved = await create_task(client, project_id=project["id"])
    await client.delete(f"/tasks/{deleted['id']}")
    await patch(client, f"/tasks/{moved['id']}", project_id=None)

    response = await client.delete(f"/projects/{project['id']}")

    assert response.status_code == 204
    assert (await client.get(f"/tasks/{moved['id']}")).json()["project_id"] is None


async def test_a_deleted_projects_name_can_be_used_again(client: AsyncClient) -> None:
    project = await create_project(client, "Roadmap")
    await client.delete(f"/projects/{project['id']}")

    again = await create_project(client, "roadmap")

    assert again["name"] == "roadmap"
