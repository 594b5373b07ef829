"""Small helpers shared by the HTTP tests: make resources, check problem details."""

from datetime import datetime, timedelta
from typing import Any

from httpx import AsyncClient, Response

PROBLEM_JSON = "application/problem+json"
INT64_MAX = 2**63 - 1

Json = dict[str, Any]


async def create_task(
    client: AsyncClient, title: str = "A task", **fields: Any
) -> Json:
    response = await client.post("/tasks", json={"title": title, **fields})
    assert response.status_code == 201, response.text
    body: Json = response.json()
    return body


async def create_project(
    client: AsyncClient, name: str = "Roadmap", **fields: Any
) -> Json:
    response = await client.post("/projects", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    body: Json = response.json()
    return body


async def patch(client: AsyncClient, path: str, **fields: Any) -> Json:
    response = await client.patch(path, json=fields)
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


async def archived_project(client: AsyncClient, name: str = "Old stuff") -> Json:
    project = await create_project(client, name)
    return await patch(client, f"/projects/{project['id']}", archived=True)


def ids(response: Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def assert_problem(response: Response, status: int) -> Json:
    """The response is RFC 9457 problem details with the given status."""
    assert response.status_code == status, response.text
    media_type = response.headers["content-type"].split(";")[0].strip()
    assert media_type == PROBLEM_JSON
    body: Json = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    for key in ("type", "title", "detail"):
        assert isinstance(body[key], str), key
        assert body[key], key
    # The request's own id, as on the response; the rest compares across requests.
    assert body.pop("request_id") == response.headers["X-Request-ID"]
    return body


def assert_invalid(
    response: Response, *fields: str, location: str | None = None
) -> Json:
    """A 422 problem whose `errors` name exactly `fields` (and only them)."""
    body = assert_problem(response, 422)
    errors = body.get("errors")
    assert isinstance(errors, list), body
    assert errors, body
    for error in errors:
        assert {"field", "location", "message", "type"} <= error.keys(), error
        assert isinstance(error["message"], str), error
        assert error["message"], error
        assert isinstance(error["type"], str), error
        if location is not None:
            assert error["location"] == location, error
    assert {error["field"] for error in errors} == set(fields), errors
    return body


def utc_timestamp(value: Any) -> datetime:
    """Parse an ISO 8601 timestamp and check that it carries a zero UTC offset."""
    assert isinstance(value, str), value
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    assert parsed.utcoffset() == timedelta(0), value
    return parsed
