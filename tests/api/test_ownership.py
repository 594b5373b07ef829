"""Each owner's tasks and projects are invisible to everyone else.

Alice and Bob each hold the same shapes of data. Whatever Bob asks about Alice's
rows, he gets exactly the answer he gets for an id that does not exist; Alice's
data stays byte for byte as it was; and the same request on Bob's own rows works.
"""

import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response

from entrypoints.container import Container
from tests.api.helpers import create_project, create_task, patch

MISSING = 2**62

TASK_SORTS = ["id", "created_at", "updated_at", "due_date", "priority", "title"]
PROJECT_SORTS = ["id", "name", "created_at", "updated_at"]


@dataclass(frozen=True)
class World:
    """One owner's data: a project with a task, an empty and an archived project."""

    task: int
    project: int
    spare: int
    archived: int
    title: str
    name: str


NOWHERE = World(
    task=MISSING,
    project=MISSING,
    spare=MISSING,
    archived=MISSING,
    title="Nobody has a task called this",
    name="Nobody has a project called this",
)


@asynccontextmanager
async def http_client(app: FastAPI, token: str) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(
        transport=ASGITransport(app),
        base_url="http://taskhub",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        yield client


async def new_user_token(container: Container, name: str) -> str:
    """A token of the user `name`, whether or not an earlier test made the user
    (PostgreSQL keeps its users between tests)."""
    identity = container.identity_service()
    await identity.ensure_user(name)
    issued = await identity.issue_token(name, "tests-" + secrets.token_hex(4))
    return issued.secret


@pytest.fixture
async def bob(app: FastAPI, container: Container) -> AsyncIterator[AsyncClient]:
    async with http_client(app, await new_user_token(container, "bob")) as client:
        yield client


@pytest.fixture
async def carol(app: FastAPI, container: Container) -> AsyncIterator[AsyncClient]:
    """A user who owns nothing."""
    async with http_client(app, await new_user_token(container, "carol")) as client:
        yield client


async def build_world(client: AsyncClient, title: str, name: str) -> World:
    project = await create_project(client, name, description="Mine")
    task = await create_task(
        client, title, project_id=project["id"], priority="high", due_date="2030-01-31"
    )
    await create_task(client, f"{title}, loose", description="No project")
    spare = await create_project(client, f"{name} spare")
    archived = await create_project(client, f"{name} attic")
    await patch(client, f"/projects/{archived['id']}", archived=True)
    return World(
        task=task["id"],
        project=project["id"],
        spare=spare["id"],
        archived=archived["id"],
        title=title,
        name=name,
    )


@pytest.fixture
async def alices(client: AsyncClient) -> World:
    return await build_world(client, "Quarterly report", "Apollo")


@pytest.fixture
async def bobs(bob: AsyncClient, alices: World) -> World:
    return await build_world(bob, "Water the plants", "Garden")


async def snapshot(client: AsyncClient, world: World) -> list[tuple[str, int, bytes]]:
    """Everything the owner can read of their data, as raw responses."""
    paths = [
        f"/tasks/{world.task}",
        f"/projects/{world.project}",
        f"/projects/{world.spare}",
        f"/projects/{world.archived}",
        f"/projects/{world.project}/tasks",
        "/tasks?sort=id&limit=100",
        "/projects?sort=id&limit=100",
    ]
    taken = []
    for path in paths:
        response = await client.get(path)
        assert response.status_code == 200, (path, response.text)
        taken.append((path, response.status_code, response.content))
    return taken


def without_id(value: Any, entity_id: int) -> Any:
    """`value` with the number `entity_id` in its text replaced by a marker."""
    if isinstance(value, str):
        return re.sub(rf"(?<!\d){entity_id}(?!\d)", "{id}", value)
    if isinstance(value, list):
        return [without_id(item, entity_id) for item in value]
    if isinstance(value, dict):
        return {key: without_id(item, entity_id) for key, item in value.items()}
    return value


def answer(response: Response, *ids: int) -> tuple[int, str, Any]:
    """What a response says, with the given ids masked."""
    body: Any = response.json() if response.content else None
    if isinstance(body, dict) and "request_id" in body:  # each request's own
        assert body.pop("request_id") == response.headers["X-Request-ID"]
    for entity_id in ids:
        body = without_id(body, entity_id)
    media_type = response.headers.get("content-type", "").split(";")[0]
    return response.status_code, media_type, body


# --- one request at a time ----------------------------------------------------

Send = Callable[[AsyncClient, World, World], Awaitable[Response]]


@dataclass(frozen=True)
class Probe:
    """A request about `target`'s rows, sent by someone whose own rows are `own`,
    and the status it gets when `target` is the sender's own data."""

    send: Send
    own_status: int


PROBES: dict[str, Probe] = {
    "GET a task": Probe(lambda c, t, o: c.get(f"/tasks/{t.task}"), 200),
    "PATCH a task": Probe(
        lambda c, t, o: c.patch(f"/tasks/{t.task}", json={"title": "Bob's now"}),
        200,
    ),
    "PATCH a task's done": Probe(
        lambda c, t, o: c.patch(f"/tasks/{t.task}", json={"done": True}), 200
    ),
    "PATCH a task into another project of its owner": Probe(
        lambda c, t, o: c.patch(f"/tasks/{t.task}", json={"project_id": t.spare}),
        200,
    ),
    "DELETE a task": Probe(lambda c, t, o: c.delete(f"/tasks/{t.task}"), 204),
    "GET a project": Probe(lambda c, t, o: c.get(f"/projects/{t.project}"), 200),
    "PATCH a project's name": Probe(
        lambda c, t, o: c.patch(f"/projects/{t.project}", json={"name": "Bob's now"}),
        200,
    ),
    "PATCH a project to archived": Probe(
        lambda c, t, o: c.patch(f"/projects/{t.project}", json={"archived": True}),
        200,
    ),
    "PATCH an archived project back": Probe(
        lambda c, t, o: c.patch(f"/projects/{t.archived}", json={"archived": False}),
        200,
    ),
    "DELETE an empty project": Probe(
        lambda c, t, o: c.delete(f"/projects/{t.spare}"), 204
    ),
    "DELETE a project with tasks": Probe(
        lambda c, t, o: c.delete(f"/projects/{t.project}"), 409
    ),
    "GET a project's tasks": Probe(
        lambda c, t, o: c.get(f"/projects/{t.project}/tasks"), 200
    ),
    "GET a project's tasks, filtered and sorted": Probe(
        lambda c, t, o: c.get(
            f"/projects/{t.project}/tasks",
            params={"done": "false", "sort": "title", "limit": 1, "offset": 0},
        ),
        200,
    ),
    "POST a task into a project": Probe(
        lambda c, t, o: c.post(
            "/tasks", json={"title": "New", "project_id": t.project}
        ),
        201,
    ),
    "POST a task into an archived project": Probe(
        lambda c, t, o: c.post(
            "/tasks", json={"title": "New", "project_id": t.archived}
        ),
        409,
    ),
    "PATCH one's own task into a project": Probe(
        lambda c, t, o: c.patch(f"/tasks/{o.task}", json={"project_id": t.spare}),
        200,
    ),
    "PATCH one's own task into an archived project": Probe(
        lambda c, t, o: c.patch(f"/tasks/{o.task}", json={"project_id": t.archived}),
        409,
    ),
    "GET tasks filtered by project": Probe(
        lambda c, t, o: c.get("/tasks", params={"project_id": t.project}), 200
    ),
    "GET tasks searched by title": Probe(
        lambda c, t, o: c.get("/tasks", params={"q": t.title}), 200
    ),
    "GET project tasks searched by title": Probe(
        lambda c, t, o: c.get(f"/projects/{t.project}/tasks", params={"q": t.title}),
        200,
    ),
    "GET projects searched by name": Probe(
        lambda c, t, o: c.get("/projects", params={"q": t.name}), 200
    ),
}
LISTINGS = {
    "GET tasks filtered by project",
    "GET tasks searched by title",
    "GET projects searched by name",
}


@pytest.mark.parametrize("probe", PROBES)
async def test_another_owners_rows_answer_exactly_like_rows_that_do_not_exist(
    client: AsyncClient, bob: AsyncClient, alices: World, bobs: World, probe: str
) -> None:
    send, own_status = PROBES[probe].send, PROBES[probe].own_status
    before = await snapshot(client, alices)

    on_alices = await send(bob, alices, bobs)
    on_nothing = await send(bob, NOWHERE, bobs)
    on_his_own = await send(bob, bobs, bobs)

    ids = (alices.task, alices.project, alices.spare, alices.archived)
    assert answer(on_alices, *ids) == answer(on_nothing, MISSING), on_alices.text
    if probe in LISTINGS:
        assert on_alices.json()["items"] == []
        assert on_alices.json()["total"] == 0
    # The same request on Bob's own rows works: nothing is refused wholesale.
    assert on_his_own.status_code == own_status, on_his_own.text
    if probe in LISTINGS:
        assert on_his_own.json()["items"]
    assert await snapshot(client, alices) == before


# --- listings -----------------------------------------------------------------


async def all_pages(client: AsyncClient, path: str, sort: str) -> list[int]:
    """The ids on pages of one, walking until an empty page, checking totals."""
    everything = await client.get(path, params={"sort": sort, "limit": 100})
    assert everything.status_code == 200, everything.text
    total = everything.json()["total"]
    assert total == len(everything.json()["items"])
    walked = []
    for offset in range(total + 1):
        page = await client.get(
            path, params={"sort": sort, "limit": 1, "offset": offset}
        )
        assert page.status_code == 200, page.text
        assert page.json()["total"] == total, (sort, offset)
        walked += [item["id"] for item in page.json()["items"]]
    assert walked == [item["id"] for item in everything.json()["items"]], sort
    return walked


async def own_ids(client: AsyncClient, path: str) -> set[int]:
    response = await client.get(path, params={"sort": "id", "limit": 100})
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


async def test_every_sort_and_page_of_tasks_shows_only_the_callers_tasks(
    client: AsyncClient,
    bob: AsyncClient,
    carol: AsyncClient,
    alices: World,
    bobs: World,
) -> None:
    before = await snapshot(client, alices)
    alice_tasks = await own_ids(client, "/tasks")
    assert len(alice_tasks) == 2

    for sort in TASK_SORTS + [f"-{sort}" for sort in TASK_SORTS]:
        bob_tasks = await all_pages(bob, "/tasks", sort)
        assert len(bob_tasks) == 2, sort
        assert not set(bob_tasks) & alice_tasks, sort
        assert await all_pages(carol, "/tasks", sort) == [], sort
        assert bobs.task in bob_tasks

    assert await snapshot(client, alices) == before


async def test_every_sort_and_page_of_projects_shows_only_the_callers_projects(
    client: AsyncClient,
    bob: AsyncClient,
    carol: AsyncClient,
    alices: World,
    bobs: World,
) -> None:
    before = await snapshot(client, alices)
    alice_projects = await own_ids(client, "/projects")
    assert len(alice_projects) == 3

    for sort in PROJECT_SORTS + [f"-{sort}" for sort in PROJECT_SORTS]:
        bob_projects = await all_pages(bob, "/projects", sort)
        assert set(bob_projects) == {bobs.project, bobs.spare, bobs.archived}, sort
        assert await all_pages(carol, "/projects", sort) == [], sort

    assert await snapshot(client, alices) == before


@pytest.mark.parametrize(
    "query",
    [
        {"done": "false"},
        {"priority": "high"},
        {"due_after": "2000-01-01"},
        {"due_before": "2100-01-01"},
        {"q": "e"},
    ],
    ids=lambda query: "&".join(f"{k}={v}" for k, v in query.items()),
)
async def test_filtered_task_listings_show_only_the_callers_tasks(
    client: AsyncClient,
    bob: AsyncClient,
    carol: AsyncClient,
    alices: World,
    bobs: World,
    query: dict[str, str],
) -> None:
    alice_tasks = await own_ids(client, "/tasks")

    bobs_page = await bob.get("/tasks", params=query)
    carols_page = await carol.get("/tasks", params=query)

    assert bobs_page.status_code == 200
    bob_tasks = {item["id"] for item in bobs_page.json()["items"]}
    assert bob_tasks
    assert not bob_tasks & alice_tasks
    assert bobs_page.json()["total"] == len(bob_tasks)
    assert carols_page.status_code == 200
    assert carols_page.json()["items"] == []
    assert carols_page.json()["total"] == 0


# --- names --------------------------------------------------------------------


async def test_two_owners_may_each_have_a_project_of_the_same_name(
    client: AsyncClient, bob: AsyncClient
) -> None:
    alices = await client.post("/projects", json={"name": "Roadmap"})
    bobs = await bob.post("/projects", json={"name": "Roadmap"})

    assert alices.status_code == 201
    assert bobs.status_code == 201
    assert alices.json()["id"] != bobs.json()["id"]
    assert (
        await client.get(f"/projects/{alices.json()['id']}")
    ).json() == alices.json()
    assert (await bob.get(f"/projects/{bobs.json()['id']}")).json() == bobs.json()
    assert [p["id"] for p in (await bob.get("/projects")).json()["items"]] == [
        bobs.json()["id"]
    ]


async def test_another_owners_project_name_cannot_be_detected_through_a_conflict(
    client: AsyncClient, bob: AsyncClient
) -> None:
    await create_project(client, "Roadmap")
    await create_project(client, "Backlog")
    before = (await client.get("/projects", params={"sort": "id"})).content
    other = await create_project(bob, "Other")

    created = await bob.post("/projects", json={"name": "roadmap"})
    renamed = await bob.patch(f"/projects/{other['id']}", json={"name": "BACKLOG"})

    assert created.status_code == 201
    assert created.json()["name"] == "roadmap"
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "BACKLOG"
    assert (await client.get("/projects", params={"sort": "id"})).content == before


async def test_an_owners_own_project_names_still_clash(
    client: AsyncClient, bob: AsyncClient
) -> None:
    await create_project(client, "Roadmap")
    await create_project(bob, "Roadmap")

    again = await bob.post("/projects", json={"name": "ROADMAP"})

    assert again.status_code == 409
    assert again.json()["status"] == 409
