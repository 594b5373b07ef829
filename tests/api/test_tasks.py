"""Creating, reading, changing and deleting tasks over HTTP."""

from datetime import date

import pytest
from httpx import AsyncClient

from tests.api.helpers import (
    archived_project,
    assert_invalid,
    assert_problem,
    create_project,
    create_task,
    patch,
    utc_timestamp,
)
from tests.fakes import TickingClock

# --- creating -----------------------------------------------------------------


async def test_a_created_task_is_answered_with_201_a_location_and_the_task(
    client: AsyncClient,
) -> None:
    response = await client.post("/tasks", json={"title": "Write tests"})

    assert response.status_code == 201
    task = response.json()
    assert response.headers["location"] == f"/tasks/{task['id']}"
    assert task["title"] == "Write tests"


async def test_a_created_task_can_be_read_back_at_its_location(
    client: AsyncClient,
) -> None:
    created = await client.post("/tasks", json={"title": "Write tests"})

    fetched = await client.get(created.headers["location"])

    assert fetched.status_code == 200
    assert fetched.json() == created.json()


async def test_a_new_task_has_defaults_for_every_optional_field(
    client: AsyncClient,
) -> None:
    task = await create_task(client, "Write tests")

    assert set(task) == {
        "id", "title", "description", "done", "completed_at", "priority",
        "due_date", "project_id", "created_at", "updated_at", "version",
    }  # fmt: skip
    assert task["description"] is None
    assert task["done"] is False
    assert task["completed_at"] is None
    assert task["priority"] == "normal"
    assert task["due_date"] is None
    assert task["project_id"] is None
    assert isinstance(task["id"], int)
    assert isinstance(task["version"], int)


async def test_a_task_is_created_with_every_field_it_is_given(
    client: AsyncClient,
) -> None:
    project = await create_project(client)

    task = await create_task(
        client,
        "Ship it",
        description="Before Friday",
        priority="urgent",
        due_date="2026-03-31",
        project_id=project["id"],
    )

    assert task["title"] == "Ship it"
    assert task["description"] == "Before Friday"
    assert task["priority"] == "urgent"
    assert task["due_date"] == "2026-03-31"
    assert task["project_id"] == project["id"]


async def test_created_tasks_get_distinct_ids(client: AsyncClient) -> None:
    first = await create_task(client, "one")
    second = await create_task(client, "two")

    assert first["id"] != second["id"]


@pytest.mark.parametrize("priority", ["low", "normal", "high", "urgent"])
async def test_every_priority_is_accepted(client: AsyncClient, priority: str) -> None:
    task = await create_task(client, priority=priority)

    assert task["priority"] == priority


async def test_a_title_is_stored_trimmed(client: AsyncClient) -> None:
    task = await create_task(client, "  x  ")

    assert task["title"] == "x"
    assert (await client.get(f"/tasks/{task['id']}")).json()["title"] == "x"


async def test_a_description_is_stored_trimmed(client: AsyncClient) -> None:
    task = await create_task(client, description="  some words \n")

    assert task["description"] == "some words"


async def test_a_title_of_200_characters_is_accepted(client: AsyncClient) -> None:
    task = await create_task(client, "t" * 200)

    assert task["title"] == "t" * 200


async def test_a_title_of_201_characters_is_rejected(client: AsyncClient) -> None:
    response = await client.post("/tasks", json={"title": "t" * 201})

    assert_invalid(response, "title", location="body")


async def test_a_title_length_is_counted_after_trimming(client: AsyncClient) -> None:
    task = await create_task(client, "   " + "t" * 200 + "   ")

    assert task["title"] == "t" * 200


async def test_a_description_holds_5000_characters_after_trimming_and_no_more(
    client: AsyncClient,
) -> None:
    task = await create_task(client, "Long", description=" " + "d" * 5000 + "\n")
    assert task["description"] == "d" * 5000

    response = await client.post(
        "/tasks", json={"title": "Long", "description": "d" * 5001}
    )
    assert_invalid(response, "description")


async def test_a_title_length_is_counted_in_characters_not_bytes(
    client: AsyncClient,
) -> None:
    task = await create_task(client, "é" * 200)

    assert task["title"] == "é" * 200


@pytest.mark.parametrize("title", ["", "   ", "\t\n"])
async def test_a_blank_title_is_rejected(client: AsyncClient, title: str) -> None:
    response = await client.post("/tasks", json={"title": title})

    assert_invalid(response, "title", location="body")


async def test_a_task_without_a_title_is_rejected(client: AsyncClient) -> None:
    response = await client.post("/tasks", json={"priority": "high"})

    assert_invalid(response, "title", location="body")


async def test_a_task_naming_a_missing_project_is_rejected_naming_project_id(
    client: AsyncClient,
) -> None:
    response = await client.post("/tasks", json={"title": "x", "project_id": 999})

    assert_invalid(response, "project_id")
    assert (await client.get("/tasks")).json()["total"] == 0


async def test_an_archived_project_accepts_no_new_task(client: AsyncClient) -> None:
    project = await archived_project(client)

    response = await client.post(
        "/tasks", json={"title": "late", "project_id": project["id"]}
    )

    assert_problem(response, 409)
    assert (await client.get("/tasks")).json()["total"] == 0


async def test_an_unarchived_project_accepts_tasks_again(client: AsyncClient) -> None:
    project = await archived_project(client)
    await patch(client, f"/projects/{project['id']}", archived=False)

    task = await create_task(client, project_id=project["id"])

    assert task["project_id"] == project["id"]


async def test_a_due_date_is_a_plain_calendar_date(client: AsyncClient) -> None:
    task = await create_task(client, due_date="2026-02-28")

    assert task["due_date"] == "2026-02-28"
    assert date.fromisoformat(task["due_date"]) == date(2026, 2, 28)


@pytest.mark.parametrize("due_date", ["2026-02-30", "tomorrow", "28/02/2026", ""])
async def test_a_due_date_that_is_not_a_date_is_rejected(
    client: AsyncClient, due_date: str
) -> None:
    response = await client.post("/tasks", json={"title": "x", "due_date": due_date})

    assert_invalid(response, "due_date", location="body")


# --- timestamps ---------------------------------------------------------------


async def test_task_timestamps_are_iso_8601_in_utc(client: AsyncClient) -> None:
    task = await create_task(client)
    done = await patch(client, f"/tasks/{task['id']}", done=True)
    fetched = (await client.get(f"/tasks/{task['id']}")).json()

    for body in (task, done, fetched):
        utc_timestamp(body["created_at"])
        utc_timestamp(body["updated_at"])
    utc_timestamp(done["completed_at"])
    utc_timestamp(fetched["completed_at"])


async def test_task_timestamps_come_from_the_clock(
    client: AsyncClient, clock: TickingClock
) -> None:
    before = clock.current
    task = await create_task(client)
    after = clock.current

    assert before < utc_timestamp(task["created_at"]) <= after


# --- reading ------------------------------------------------------------------


async def test_an_unknown_task_is_404(client: AsyncClient) -> None:
    response = await client.get("/tasks/999")

    body = assert_problem(response, 404)
    assert "999" in body["detail"]


# --- partial updates ----------------------------------------------------------


async def test_a_patch_changes_only_the_fields_it_sends(client: AsyncClient) -> None:
    project = await create_project(client)
    task = await create_task(
        client,
        "Old title",
        description="words",
        priority="high",
        due_date="2026-05-01",
        project_id=project["id"],
    )

    updated = await patch(client, f"/tasks/{task['id']}", title="New title")

    assert updated["title"] == "New title"
    unchanged = {"id", "description", "done", "completed_at", "priority"}
    unchanged |= {"due_date", "project_id", "created_at"}
    assert {k: updated[k] for k in unchanged} == {k: task[k] for k in unchanged}
    assert (await client.get(f"/tasks/{task['id']}")).json() == updated


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "Renamed"),
        ("description", "More words"),
        ("priority", "low"),
        ("due_date", "2027-01-01"),
        ("done", True),
    ],
)
async def test_each_task_field_can_be_changed_on_its_own(
    client: AsyncClient, field: str, value: object
) -> None:
    task = await create_task(client, "Original", description="words")

    updated = await patch(client, f"/tasks/{task['id']}", **{field: value})

    assert updated[field] == value
    assert updated["version"] == task["version"] + 1
    assert utc_timestamp(updated["updated_at"]) > utc_timestamp(task["updated_at"])
    assert updated["created_at"] == task["created_at"]


async def test_a_task_can_be_moved_to_another_project(client: AsyncClient) -> None:
    first = await create_project(client, "First")
    second = await create_project(client, "Second")
    task = await create_task(client, project_id=first["id"])

    moved = await patch(client, f"/tasks/{task['id']}", project_id=second["id"])

    assert moved["project_id"] == second["id"]


@pytest.mark.parametrize("field", ["description", "due_date", "project_id"])
async def test_an_explicit_null_clears_a_nullable_task_field(
    client: AsyncClient, field: str
) -> None:
    project = await create_project(client)
    task = await create_task(
        client, description="words", due_date="2026-05-01", project_id=project["id"]
    )
    assert task[field] is not None

    cleared = await patch(client, f"/tasks/{task['id']}", **{field: None})

    assert cleared[field] is None
    assert cleared["version"] == task["version"] + 1
    assert (await client.get(f"/tasks/{task['id']}")).json()[field] is None


async def test_an_empty_patch_changes_nothing(client: AsyncClient) -> None:
    task = await create_task(client)
    before = await client.get(f"/tasks/{task['id']}")

    response = await client.patch(f"/tasks/{task['id']}", json={})

    assert response.status_code == 200
    assert response.json() == before.json()
    after = await client.get(f"/tasks/{task['id']}")
    assert after.content == before.content


async def test_a_patch_that_resends_the_current_values_leaves_version_and_updated_at(
    client: AsyncClient,
) -> None:
    project = await create_project(client)
    task = await create_task(
        client,
        "Same",
        description="words",
        priority="high",
        due_date="2026-05-01",
        project_id=project["id"],
    )

    response = await client.patch(
        f"/tasks/{task['id']}",
        json={
            "title": "Same",
            "description": "words",
            "priority": "high",
            "due_date": "2026-05-01",
            "project_id": project["id"],
            "done": False,
        },
    )

    assert response.status_code == 200
    assert response.json()["version"] == task["version"]
    assert response.json()["updated_at"] == task["updated_at"]
    assert (await client.get(f"/tasks/{task['id']}")).json() == task


async def test_a_title_that_only_differs_by_surrounding_spaces_is_no_change(
    client: AsyncClient,
) -> None:
    task = await create_task(client, "Same")

    updated = await patch(client, f"/tasks/{task['id']}", title="  Same  ")

    assert updated == task


async def test_clearing_an_already_empty_field_is_no_change(
    client: AsyncClient,
) -> None:
    task = await create_task(client)

    updated = await patch(
        client, f"/tasks/{task['id']}", description=None, due_date=None
    )

    assert updated == task


async def test_each_change_bumps_the_version_by_one(client: AsyncClient) -> None:
    task = await create_task(client)
    path = f"/tasks/{task['id']}"

    first = await patch(client, path, title="one")
    second = await patch(client, path, title="two", priority="high")
    third = await patch(client, path, done=True)

    assert [first["version"], second["version"], third["version"]] == [
        task["version"] + 1,
        task["version"] + 2,
        task["version"] + 3,
    ]


async def test_completing_a_task_records_when_it_was_completed(
    client: AsyncClient,
) -> None:
    task = await create_task(client)

    done = await patch(client, f"/tasks/{task['id']}", done=True)

    assert done["done"] is True
    assert done["completed_at"] is not None
    assert utc_timestamp(done["completed_at"]) > utc_timestamp(task["created_at"])


async def test_resending_done_true_keeps_the_original_completed_at(
    client: AsyncClient, clock: TickingClock
) -> None:
    task = await create_task(client)
    done = await patch(client, f"/tasks/{task['id']}", done=True)
    clock.advance(days=1)

    again = await patch(client, f"/tasks/{task['id']}", done=True)

    assert again["completed_at"] == done["completed_at"]
    assert again["version"] == done["version"]
    assert again["updated_at"] == done["updated_at"]


async def test_resending_done_true_with_another_change_keeps_completed_at(
    client: AsyncClient, clock: TickingClock
) -> None:
    task = await create_task(client)
    done = await patch(client, f"/tasks/{task['id']}", done=True)
    clock.advance(days=1)

    again = await patch(client, f"/tasks/{task['id']}", done=True, title="Renamed")

    assert again["completed_at"] == done["completed_at"]
    assert again["version"] == done["version"] + 1


async def test_reopening_a_task_clears_completed_at(client: AsyncClient) -> None:
    task = await create_task(client)
    await patch(client, f"/tasks/{task['id']}", done=True)

    reopened = await patch(client, f"/tasks/{task['id']}", done=False)

    assert reopened["done"] is False
    assert reopened["completed_at"] is None
    assert (await client.get(f"/tasks/{task['id']}")).json()["completed_at"] is None


async def test_completing_a_reopened_task_records_a_new_completed_at(
    client: AsyncClient, clock: TickingClock
) -> None:
    task = await create_task(client)
    first = await patch(client, f"/tasks/{task['id']}", done=True)
    await patch(client, f"/tasks/{task['id']}", done=False)
    clock.advance(hours=1)

    second = await patch(client, f"/tasks/{task['id']}", done=True)

    assert utc_timestamp(second["completed_at"]) > utc_timestamp(first["completed_at"])


async def test_patching_an_unknown_task_is_404(client: AsyncClient) -> None:
    response = await client.patch("/tasks/999", json={"title": "x"})

    assert_problem(response, 404)


async def test_a_patch_title_is_trimmed_and_checked_after_trimming(
    client: AsyncClient,
) -> None:
    task = await create_task(client)

    ok = await patch(client, f"/tasks/{task['id']}", title=" " + "t" * 200 + " ")
    too_long = await client.patch(f"/tasks/{task['id']}", json={"title": "t" * 201})
    blank = await client.patch(f"/tasks/{task['id']}", json={"title": "   "})

    assert ok["title"] == "t" * 200
    assert_invalid(too_long, "title", location="body")
    assert_invalid(blank, "title", location="body")


async def test_moving_a_task_into_an_archived_project_is_a_conflict(
    client: AsyncClient,
) -> None:
    project = await archived_project(client)
    task = await create_task(client)

    response = await client.patch(
        f"/tasks/{task['id']}", json={"project_id": project["id"]}
    )

    assert_problem(response, 409)
    assert (await client.get(f"/tasks/{task['id']}")).json() == task


async def test_moving_a_task_into_a_missing_project_is_rejected_naming_project_id(
    client: AsyncClient,
) -> None:
    task = await create_task(client)

    response = await client.patch(f"/tasks/{task['id']}", json={"project_id": 999})

    assert_invalid(response, "project_id")
    assert (await client.get(f"/tasks/{task['id']}")).json() == task


async def test_a_task_already_in_an_archived_project_can_still_be_edited(
    client: AsyncClient,
) -> None:
    project = await create_project(client)
    task = await create_task(client, project_id=project["id"])
    await patch(client, f"/projects/{project['id']}", archived=True)

    updated = await patch(client, f"/tasks/{task['id']}", title="Still here")

    assert updated["title"] == "Still here"
    assert updated["project_id"] == project["id"]


# --- deleting -----------------------------------------------------------------


async def test_deleting_a_task_answers_204_with_no_body_and_then_it_is_gone(
    client: AsyncClient,
) -> None:
    task = await create_task(client)

    response = await client.delete(f"/tasks/{task['id']}")

    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await client.get(f"/tasks/{task['id']}"), 404)
    assert_problem(await client.patch(f"/tasks/{task['id']}", json={}), 404)
    assert_problem(await client.delete(f"/tasks/{task['id']}"), 404)


async def test_deleting_an_unknown_task_is_404(client: AsyncClient) -> None:
    response = await client.delete("/tasks/999")

    assert_problem(response, 404)


async def test_deleting_a_task_leaves_the_others(client: AsyncClient) -> None:
    keep = await create_task(client, "keep")
    drop = await create_task(client, "drop")

    await client.delete(f"/tasks/{drop['id']}")

    assert (await client.get(f"/tasks/{keep['id']}")).json() == keep
    listing = (await client.get("/tasks")).json()
    assert [item["id"] for item in listing["items"]] == [keep["id"]]
    assert listing["total"] == 1
