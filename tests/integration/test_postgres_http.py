"""An end-to-end HTTP flow on a real PostgreSQL, through the ASGI app."""

import asyncio

import pytest
from httpx import AsyncClient

pytestmark = pytest.mark.postgres


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url


async def test_the_whole_flow_of_projects_and_tasks(client: AsyncClient) -> None:
    project = (await client.post("/projects", json={"name": "Launch"})).json()
    created = await client.post(
        "/tasks",
        json={
            "title": "  Book the venue  ",
            "priority": "urgent",
            "due_date": "2026-12-24",
            "project_id": project["id"],
        },
    )
    assert created.status_code == 201
    task = created.json()
    assert task["title"] == "Book the venue"
    assert created.headers["location"] == f"/tasks/{task['id']}"

    done = await client.patch(f"/tasks/{task['id']}", json={"done": True})
    assert done.json()["completed_at"] is not None
    assert done.json()["version"] == 2

    listed = await client.get(
        f"/projects/{project['id']}/tasks", params={"q": "VENUE", "done": "true"}
    )
    assert [t["id"] for t in listed.json()["items"]] == [task["id"]]
    assert listed.json()["total"] == 1

    blocked = await client.delete(f"/projects/{project['id']}")
    assert blocked.status_code == 409
    assert "1 task" in blocked.json()["detail"]

    assert (await client.delete(f"/tasks/{task['id']}")).status_code == 204
    assert (await client.delete(f"/projects/{project['id']}")).status_code == 204
    assert (await client.get(f"/projects/{project['id']}")).status_code == 404


async def test_nul_characters_are_rejected_before_postgresql_sees_them(
    client: AsyncClient,
) -> None:
    response = await client.post("/tasks", json={"title": "a\u0000b"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "title"
    searched = await client.get("/tasks", params={"q": "a\u0000"})
    assert searched.status_code == 422


async def test_concurrent_creates_of_one_name_give_one_project_and_one_conflict(
    client: AsyncClient,
) -> None:
    responses = await asyncio.gather(
        *(client.post("/projects", json={"name": "Race"}) for _ in range(2)),
        *(client.post("/projects", json={"name": "race"}) for _ in range(2)),
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
    assert (await client.get("/projects")).json()["total"] == 1
