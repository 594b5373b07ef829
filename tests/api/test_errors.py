"""Every error is problem details, and bad input is rejected without side effects."""

import json
from typing import Any

import pytest
from httpx import AsyncClient

from tests.api.helpers import (
    INT64_MAX,
    Json,
    archived_project,
    assert_invalid,
    assert_problem,
    create_project,
    create_task,
)

ID_PATHS = [
    ("GET", "/tasks/{}", "task_id"),
    ("PATCH", "/tasks/{}", "task_id"),
    ("DELETE", "/tasks/{}", "task_id"),
    ("GET", "/projects/{}", "project_id"),
    ("PATCH", "/projects/{}", "project_id"),
    ("DELETE", "/projects/{}", "project_id"),
    ("GET", "/projects/{}/tasks", "project_id"),
]
JSON = "application/json"
BODY_ROUTES = [
    ("POST", "/tasks"),
    ("PATCH", "/tasks/1"),
    ("POST", "/projects"),
    ("PATCH", "/projects/1"),
]


def _body(path: str, field: str, value: object) -> Json:
    """A body for `path` that is valid but for `field`."""
    required = {"/tasks": {"title": "x"}, "/projects": {"name": "Fresh"}}
    return {**required.get(path, {}), field: value}


async def _seed(client: AsyncClient) -> tuple[Json, Json]:
    """Task 1 and project 1, so that the body routes above reach validation."""
    project = await create_project(client, "Seed", description="seed words")
    task = await create_task(client, "Seed", description="seed words")
    assert (task["id"], project["id"]) == (1, 1)
    return task, project


# --- routing ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/nope", "/tasks/1/comments", "/projects/1/tasks/1", "/"]
)
async def test_an_unknown_route_is_a_404_problem(
    client: AsyncClient, path: str
) -> None:
    response = await client.get(path)

    assert_problem(response, 404)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/tasks", {"GET", "POST"}),
        ("DELETE", "/tasks", {"GET", "POST"}),
        ("PUT", "/tasks/1", {"GET", "PATCH", "DELETE"}),
        ("POST", "/tasks/1", {"GET", "PATCH", "DELETE"}),
        ("PATCH", "/projects", {"GET", "POST"}),
        ("PUT", "/projects/1", {"GET", "PATCH", "DELETE"}),
        ("POST", "/projects/1/tasks", {"GET"}),
    ],
)
async def test_a_wrong_method_is_a_405_problem_that_allows_every_method_of_the_path(
    client: AsyncClient, method: str, path: str, allowed: set[str]
) -> None:
    response = await client.request(method, path, json={})

    assert_problem(response, 405)
    listed = {m.strip() for m in response.headers["allow"].split(",")}
    assert listed == allowed


# --- malformed bodies ---------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
async def test_malformed_json_is_a_400_problem(
    client: AsyncClient, method: str, path: str
) -> None:
    await _seed(client)

    for content in (b'{"title": ', b"{'title': 'x'}", b"not json", b'{"name": "x",}'):
        response = await client.request(
            method, path, content=content, headers={"content-type": JSON}
        )
        assert response.status_code == 400, (content, response.text)
        assert_problem(response, 400)


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
async def test_a_json_body_that_is_not_an_object_is_a_422_problem(
    client: AsyncClient, method: str, path: str
) -> None:
    await _seed(client)

    for content in (b"[]", b'"title"', b"42", b"null", b"true"):
        response = await client.request(
            method, path, content=content, headers={"content-type": JSON}
        )
        assert response.status_code == 422, (content, response.text)
        assert assert_problem(response, 422)["errors"]


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
async def test_a_missing_body_is_a_client_error_problem(
    client: AsyncClient, method: str, path: str
) -> None:
    await _seed(client)

    response = await client.request(method, path)

    assert response.status_code in (400, 422)
    assert_problem(response, response.status_code)


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
async def test_a_form_encoded_body_is_a_client_error_problem(
    client: AsyncClient, method: str, path: str
) -> None:
    await _seed(client)

    response = await client.request(method, path, data={"title": "x", "name": "xy"})

    assert response.status_code in (400, 415, 422)
    assert_problem(response, response.status_code)


# --- path parameters ----------------------------------------------------------


@pytest.mark.parametrize(("method", "template", "field"), ID_PATHS)
async def test_a_path_id_that_is_not_a_64_bit_integer_is_a_422_problem(
    client: AsyncClient, method: str, template: str, field: str
) -> None:
    for bad_id in ("abc", "1.5", "1e3", "0x10", "%20", "1" + "0" * 30):
        response = await client.request(method, template.format(bad_id), json={})
        assert response.status_code == 422, (bad_id, response.text)
        assert_invalid(response, field, location="path")


@pytest.mark.parametrize(("method", "template", "field"), ID_PATHS)
async def test_a_path_id_just_beyond_the_64_bit_range_is_a_422_problem(
    client: AsyncClient, method: str, template: str, field: str
) -> None:
    response = await client.request(method, template.format(INT64_MAX + 1), json={})

    assert_invalid(response, field, location="path")


@pytest.mark.parametrize(("method", "template", "field"), ID_PATHS)
async def test_the_largest_64_bit_id_is_simply_not_found(
    client: AsyncClient, method: str, template: str, field: str
) -> None:
    response = await client.request(method, template.format(INT64_MAX), json={})

    assert_problem(response, 404)


@pytest.mark.parametrize(("method", "template", "field"), ID_PATHS)
async def test_a_path_id_below_one_is_a_client_error_problem(
    client: AsyncClient, method: str, template: str, field: str
) -> None:
    for bad_id in ("0", "-1"):
        response = await client.request(method, template.format(bad_id), json={})
        assert response.status_code in (404, 422), (bad_id, response.text)
        assert_problem(response, response.status_code)


# --- unknown and mistyped body fields -----------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/tasks", {"title": "x", "id": 5}),
        ("POST", "/tasks", {"title": "x", "created_at": "2026-01-01T00:00:00Z"}),
        ("POST", "/tasks", {"title": "x", "done": True}),
        ("POST", "/tasks", {"title": "x", "version": 3, "owner": "me"}),
        ("PATCH", "/tasks/1", {"id": 7}),
        ("PATCH", "/tasks/1", {"title": "x", "completed_at": None}),
        ("PATCH", "/tasks/1", {"version": 1}),
        ("POST", "/projects", {"name": "xy", "archived": True}),
        ("POST", "/projects", {"name": "xy", "id": 1}),
        ("PATCH", "/projects/1", {"id": 2}),
        ("PATCH", "/projects/1", {"name": "xy", "tasks": []}),
    ],
)
async def test_an_unknown_body_field_is_a_422_naming_it(
    client: AsyncClient, method: str, path: str, body: Json
) -> None:
    await _seed(client)
    unknown = set(body) - {"title", "name"}

    response = await client.request(method, path, json=body)

    assert_invalid(response, *unknown, location="body")


# Values of the wrong JSON type (or out of range) for each field of each body.
MISTYPED: dict[tuple[str, str], list[tuple[str, object]]] = {
    ("POST", "/tasks"): [
        ("title", 123),
        ("title", True),
        ("title", ["x"]),
        ("description", 5),
        ("priority", 1),
        ("priority", "critical"),
        ("due_date", 20260101),
        ("due_date", 1767225600),
        ("due_date", True),
        ("project_id", "1"),
        ("project_id", 1.5),
        ("project_id", True),
        ("project_id", INT64_MAX + 1),
        ("project_id", 0),
    ],
    ("PATCH", "/tasks/1"): [
        ("title", 5),
        ("done", "yes"),
        ("done", "true"),
        ("done", 1),
        ("done", 0),
        ("priority", 4),
        ("due_date", 20260101),
        ("project_id", "1"),
        ("project_id", INT64_MAX + 1),
    ],
    ("POST", "/projects"): [("name", 42), ("description", 1)],
    ("PATCH", "/projects/1"): [
        ("name", 42),
        ("description", False),
        ("archived", "yes"),
        ("archived", "true"),
        ("archived", 1),
    ],
}


@pytest.mark.parametrize(("method", "path"), list(MISTYPED))
async def test_json_types_are_strict(
    client: AsyncClient, method: str, path: str
) -> None:
    await _seed(client)
    before = await _snapshot(client)

    for field, value in MISTYPED[method, path]:
        response = await client.request(method, path, json=_body(path, field, value))
        assert response.status_code == 422, (field, value, response.text)
        assert_invalid(response, field, location="body")
    assert await _snapshot(client) == before


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("POST", "/tasks", "title"),
        ("POST", "/tasks", "description"),
        ("PATCH", "/tasks/1", "title"),
        ("PATCH", "/tasks/1", "description"),
        ("POST", "/projects", "name"),
        ("POST", "/projects", "description"),
        ("PATCH", "/projects/1", "name"),
        ("PATCH", "/projects/1", "description"),
    ],
)
async def test_text_with_a_nul_character_is_a_422_naming_the_field(
    client: AsyncClient, method: str, path: str, field: str
) -> None:
    await _seed(client)
    before = await _snapshot(client)

    for text in ("a\x00b", "\x00", "long enough\x00", " \x00 "):
        response = await client.request(method, path, json=_body(path, field, text))
        assert response.status_code == 422, (text, response.text)
        assert_invalid(response, field)
    assert await _snapshot(client) == before


@pytest.mark.parametrize(
    ("path", "field"),
    [("/tasks", "title"), ("/tasks", "description"), ("/projects", "name")],
)
async def test_text_with_a_lone_surrogate_is_a_client_error(
    client: AsyncClient, path: str, field: str
) -> None:
    # json.dumps writes the lone surrogate as the escape \ud800: valid JSON text.
    content = json.dumps(_body(path, field, "a\ud800b")).encode()

    response = await client.post(path, content=content, headers={"content-type": JSON})

    assert response.status_code in (400, 422)
    assert_problem(response, response.status_code)
    assert (await client.get(path)).json()["total"] == 0


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/tasks/1", "title"),
        ("/tasks/1", "done"),
        ("/tasks/1", "priority"),
        ("/projects/1", "name"),
        ("/projects/1", "archived"),
    ],
)
async def test_an_explicit_null_on_a_non_nullable_field_is_a_422_naming_it(
    client: AsyncClient, path: str, field: str
) -> None:
    await _seed(client)
    before = await _snapshot(client)

    response = await client.patch(path, json={field: None})

    assert_invalid(response, field, location="body")
    assert await _snapshot(client) == before


async def test_every_bad_field_is_named_at_once(client: AsyncClient) -> None:
    response = await client.post(
        "/tasks",
        json={
            "title": "",
            "priority": "bogus",
            "due_date": "someday",
            "project_id": "1",
            "extra": 1,
        },
    )

    body = assert_invalid(
        response, "title", "priority", "due_date", "project_id", "extra"
    )
    for field in ("title", "priority", "due_date", "project_id", "extra"):
        assert field in body["detail"]


async def test_a_validation_error_says_why_in_each_entry(client: AsyncClient) -> None:
    response = await client.post("/tasks", json={"title": "t" * 201})

    body = assert_invalid(response, "title", location="body")
    [error] = body["errors"]
    assert error["location"] == "body"
    assert error["message"]
    assert error["type"]


# --- bad input changes nothing ------------------------------------------------


async def _snapshot(client: AsyncClient) -> list[bytes]:
    """Everything a client can see, byte for byte."""
    paths = ["/tasks?limit=100", "/projects?limit=100", "/tasks/1", "/projects/1"]
    return [(await client.get(path)).content for path in paths]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"title": "Changed", "priority": "bogus"}, 422),
        ({"title": "Changed", "done": "yes"}, 422),
        ({"title": "Changed", "description": "a\x00b"}, 422),
        ({"description": "Changed", "title": None}, 422),
        ({"title": "Changed", "id": 2}, 422),
        ({"title": "Changed", "project_id": 999}, 422),
        ({"title": "Changed", "done": True, "project_id": "archived"}, 409),
        ({"title": "t" * 201, "done": True}, 422),
    ],
)
async def test_a_rejected_task_patch_changes_nothing(
    client: AsyncClient, body: Json, status: int
) -> None:
    await _seed(client)
    archived = await archived_project(client)
    if body.get("project_id") == "archived":
        body = {**body, "project_id": archived["id"]}
    before = await _snapshot(client)

    response = await client.patch("/tasks/1", json=body)

    assert_problem(response, status)
    assert await _snapshot(client) == before


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"description": "Changed", "name": "TAKEN"}, 409),
        ({"description": "Changed", "archived": "yes"}, 422),
        ({"description": "Changed", "name": "x"}, 422),
        ({"name": "Changed", "description": "a\x00b"}, 422),
        ({"name": "Changed", "archived": None}, 422),
        ({"name": "Changed", "version": 5}, 422),
    ],
)
async def test_a_rejected_project_patch_changes_nothing(
    client: AsyncClient, body: Json, status: int
) -> None:
    await _seed(client)
    await create_project(client, "Taken")
    before = await _snapshot(client)

    response = await client.patch("/projects/1", json=body)

    assert_problem(response, status)
    assert await _snapshot(client) == before


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/tasks", {"title": ""}, 422),
        ("/tasks", {"title": "New", "project_id": 999}, 422),
        ("/tasks", {"title": "New", "project_id": "archived"}, 409),
        ("/tasks", {"title": "New", "id": 1}, 422),
        ("/projects", {"name": "seed"}, 409),
        ("/projects", {"name": "New", "description": "\x00"}, 422),
    ],
)
async def test_a_rejected_create_creates_nothing(
    client: AsyncClient, path: str, body: dict[str, Any], status: int
) -> None:
    await _seed(client)
    archived = await archived_project(client)
    if body.get("project_id") == "archived":
        body = {**body, "project_id": archived["id"]}
    before = await _snapshot(client)

    response = await client.post(path, json=body)

    assert_problem(response, status)
    assert await _snapshot(client) == before


async def test_a_rejected_delete_changes_nothing(client: AsyncClient) -> None:
    project = await create_project(client)
    await create_task(client, project_id=project["id"])
    before = await _snapshot(client)

    response = await client.delete(f"/projects/{project['id']}")

    assert_problem(response, 409)
    assert await _snapshot(client) == before


async def test_malformed_json_changes_nothing(client: AsyncClient) -> None:
    await _seed(client)
    before = await _snapshot(client)

    response = await client.patch(
        "/tasks/1",
        content=b'{"title": "Changed"',
        headers={"content-type": JSON},
    )

    assert_problem(response, 400)
    assert await _snapshot(client) == before
