"""Idempotency-Key on POST /tasks and POST /projects, over HTTP on every backend.

A retry with the same key and body replays the first response; anything else
with the key is refused; a failed request gives its key back; keys belong to
their owner, lapse after 24 hours and are purged. The CLI's purge runs last.
"""

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from starlette.requests import Request

from adapters.sqlalchemy.tables import idempotency_keys
from application.idempotency import KEEP_FOR, LEASE, Claim
from application.ports import IdempotencyRecord, StoredResponse
from entrypoints.container import Container, build_container
from entrypoints.http.idempotency import fingerprint
from entrypoints.http.schemas import ProjectCreate, TaskCreate
from tests.api.helpers import assert_invalid, assert_problem, patch
from tests.conftest import test_settings
from tests.fakes import TickingClock
from tests.served import environment, taskhub
from tests.statement_audit import TEST_INSPECTION

REUSED = "urn:taskhub:problem:idempotency-key-reused"
CONFLICT = "urn:taskhub:problem:conflict"

Json = dict[str, Any]


@dataclass(frozen=True)
class Route:
    """A create route, a body for it, and a different body for it."""

    path: str
    body: Json
    restated: Json  # the same request, written out differently
    other_body: Json
    schema: type[TaskCreate] | type[ProjectCreate]


TASKS = Route(
    "/tasks",
    body={"title": "Write tests"},
    restated={"priority": "normal", "description": None, "title": "Write tests"},
    other_body={"title": "Write more tests"},
    schema=TaskCreate,
)
PROJECTS = Route(
    "/projects",
    body={"name": "Roadmap"},
    restated={"description": None, "name": "Roadmap"},
    other_body={"name": "Backlog"},
    schema=ProjectCreate,
)
ROUTES = [TASKS, PROJECTS]


async def post(
    client: AsyncClient, route: Route, key: str | None, body: Json | None = None
) -> Response:
    headers = {} if key is None else {"Idempotency-Key": key}
    return await client.post(route.path, json=body or route.body, headers=headers)


async def total(client: AsyncClient, route: Route) -> int:
    response = await client.get(route.path)
    assert response.status_code == 200, response.text
    count: int = response.json()["total"]
    return count


async def stored_keys(container: Container) -> int:
    """How many idempotency keys the backend holds, for every owner."""
    if container.config.backend() == "memory":
        return len(container.memory_store().idempotency)
    async with container.session_factory()() as session:
        statement = sa.select(sa.func.count()).select_from(idempotency_keys)
        statement = statement.execution_options(**TEST_INSPECTION)
        return int((await session.execute(statement)).scalar_one())


def route_fingerprint(route: Route, body: Json) -> str:
    """The fingerprint the route computes for `body`, as a dead worker had it."""
    scope = {"type": "http", "method": "POST", "path": route.path, "headers": []}
    return fingerprint(Request(scope), route.schema.model_validate(body))


async def user_client(app: FastAPI, container: Container, name: str) -> AsyncClient:
    identity = container.identity_service()
    await identity.ensure_user(name)
    issued = await identity.issue_token(name, "tests")
    return AsyncClient(
        transport=ASGITransport(app),
        base_url="http://taskhub",
        headers={"Authorization": f"Bearer {issued.secret}"},
    )


def assert_replay_of(replay: Response, first: Response) -> None:
    """`replay` is `first` again, byte for byte, marked as a replay."""
    assert replay.status_code == first.status_code == 201, replay.text
    assert replay.content == first.content
    for header in ("content-type", "location", "etag"):
        assert replay.headers[header] == first.headers[header], header
    assert replay.headers["idempotent-replayed"] == "true"


def assert_carried_out(response: Response) -> None:
    assert response.status_code == 201, response.text
    assert "idempotent-replayed" not in response.headers


# --- replaying ----------------------------------------------------------------


async def test_a_retry_with_the_same_key_replays_the_first_response_exactly(
    client: AsyncClient,
) -> None:
    for route in ROUTES:
        first = await post(client, route, f"replay-{route.path}")
        # The same request, written differently: key order, spacing, defaults.
        retry = await client.post(
            route.path,
            content=json.dumps(route.restated, indent=4).encode(),
            headers={
                "Idempotency-Key": f"replay-{route.path}",
                "Content-Type": "application/json",
            },
        )
        again = await post(client, route, f"replay-{route.path}")

        assert_carried_out(first)
        assert first.headers["location"] == f"{route.path}/{first.json()['id']}"
        assert_replay_of(retry, first)
        assert_replay_of(again, first)
        assert await total(client, route) == 1
        fetched = await client.get(first.headers["location"])
        assert fetched.json() == first.json()


async def test_the_same_key_with_another_body_or_on_another_route_is_refused(
    client: AsyncClient,
) -> None:
    first = await post(client, TASKS, "shared")
    other_body = await post(client, TASKS, "shared", TASKS.other_body)
    other_route = await post(client, PROJECTS, "shared")
    retry = await post(client, TASKS, "shared")

    assert_carried_out(first)
    assert assert_problem(other_body, 422)["type"] == REUSED
    assert assert_problem(other_route, 422)["type"] == REUSED
    assert_replay_of(retry, first)  # the refusals left the key as it was
    assert await total(client, TASKS) == 1
    assert await total(client, PROJECTS) == 0


async def test_without_a_key_every_post_is_carried_out_again(
    client: AsyncClient, container: Container
) -> None:
    first_task = await post(client, TASKS, None)
    second_task = await post(client, TASKS, None)
    first_project = await post(client, PROJECTS, None)
    second_project = await post(client, PROJECTS, None)

    assert_carried_out(first_task)
    assert_carried_out(second_task)
    assert first_task.json()["id"] != second_task.json()["id"]
    assert await total(client, TASKS) == 2
    assert_carried_out(first_project)
    # Carried out again, so the name is taken now: nothing was replayed.
    assert_problem(second_project, 409)
    assert await total(client, PROJECTS) == 1
    assert await stored_keys(container) == 0


async def test_each_owner_has_keys_of_its_own(
    client: AsyncClient, app: FastAPI, container: Container
) -> None:
    async with await user_client(app, container, "bob") as bob:
        for route in ROUTES:
            key = f"mine-{route.path}"
            alices = await post(client, route, key)
            bobs = await post(bob, route, key)
            alices_retry = await post(client, route, key)
            bobs_retry = await post(bob, route, key)

            assert_carried_out(alices)
            assert_carried_out(bobs)
            assert bobs.json()["id"] != alices.json()["id"]
            assert_replay_of(alices_retry, alices)
            assert_replay_of(bobs_retry, bobs)
            assert await total(client, route) == 1
            assert await total(bob, route) == 1


# --- failures and invalid keys ------------------------------------------------


async def test_a_failed_request_gives_its_key_back_for_a_retry(
    client: AsyncClient, container: Container
) -> None:
    taken = await post(client, PROJECTS, None)
    project_failed = await post(client, PROJECTS, "project")
    project_failed_again = await post(client, PROJECTS, "project")
    archived = await patch(client, taken.headers["location"], archived=True)
    task_body = {**TASKS.body, "project_id": archived["id"]}
    task_failed = await post(client, TASKS, "task", task_body)
    nothing_held = await stored_keys(container)

    await patch(client, taken.headers["location"], name="Renamed", archived=False)
    project_created = await post(client, PROJECTS, "project")
    task_created = await post(client, TASKS, "task", task_body)

    name_taken = assert_problem(project_failed, 409)
    # Carried out again: the name is still taken (not "in progress", no replay).
    assert assert_problem(project_failed_again, 409)["detail"] == name_taken["detail"]
    assert "retry-after" not in project_failed_again.headers
    assert "idempotent-replayed" not in project_failed_again.headers
    assert_problem(task_failed, 409)  # the project is archived
    assert nothing_held == 0
    assert_carried_out(project_created)
    assert_carried_out(task_created)
    assert task_created.json()["project_id"] == archived["id"]
    assert await total(client, PROJECTS) == 2
    assert await total(client, TASKS) == 1
    assert await stored_keys(container) == 2


async def test_only_keys_of_1_to_255_visible_ascii_characters_are_accepted(
    client: AsyncClient, container: Container
) -> None:
    invalid = [b"", b"k" * 256, b"two words", "clé".encode()]
    for route in ROUTES:
        for key in invalid:
            response = await client.post(
                route.path, json=route.body, headers={b"Idempotency-Key": key}
            )
            assert_invalid(response, "Idempotency-Key", location="header")
        assert await total(client, route) == 0
    assert await stored_keys(container) == 0

    visible = "".join(chr(code) for code in range(ord("!"), ord("~") + 1)) * 3
    for start, route in enumerate(ROUTES):
        longest = visible[start : start + 255]  # every visible character is in it
        first = await post(client, route, longest)
        retry = await post(client, route, longest)

        assert_carried_out(first)
        assert_replay_of(retry, first)


# --- in progress, concurrency, lapsed leases ----------------------------------


async def test_twenty_concurrent_posts_with_one_key_create_one_resource(
    client: AsyncClient, database_url: str
) -> None:
    # A real pool: the retries must overlap the first request for real.
    must_overlap = database_url.startswith("postgresql")
    for route in ROUTES:
        # On a machine busy with other tests, a race may come out without any
        # overlap; a few rounds, each with its own key, make one that overlaps.
        for round_ in range(1, 6):
            key = f"race-{route.path}-{round_}"
            # A body of its own each round: a project's name must be unique.
            body = {field: f"{value} {round_}" for field, value in route.body.items()}
            responses = await asyncio.gather(
                *(post(client, route, key, body) for _ in range(20))
            )

            assert await total(client, route) == round_
            created = [r for r in responses if r.status_code == 201]
            busy = [r for r in responses if r.status_code == 409]
            assert len(created) + len(busy) == 20, [r.status_code for r in responses]
            assert created
            originals = [r for r in created if "idempotent-replayed" not in r.headers]
            assert len(originals) == 1
            for replay in created:
                assert replay.content == originals[0].content
            for response in busy:
                assert assert_problem(response, 409)["type"] == CONFLICT
                assert response.headers["retry-after"] == "1"
            retry = await post(client, route, key, body)
            assert_replay_of(retry, originals[0])
            if busy or not must_overlap:
                break
        if must_overlap:
            assert busy, "no request overlapped the first one in five rounds"


async def test_a_key_whose_worker_died_is_taken_over_once_its_lease_lapses(
    client: AsyncClient, container: Container, owner_id: int, clock: TickingClock
) -> None:
    idempotency = container.idempotency_service()
    for route in ROUTES:
        key = f"orphan-{route.path}"
        dead = await idempotency.begin(
            owner_id, key, route_fingerprint(route, route.body)
        )
        assert isinstance(dead, Claim)  # and its worker never finishes

        running = await post(client, route, key)
        clock.advance(seconds=LEASE.total_seconds() / 2)
        still_running = await post(client, route, key)
        clock.advance(seconds=LEASE.total_seconds() / 2)
        taken_over = await post(client, route, key)
        # The dead worker wakes up late: its claim is no longer worth anything.
        await idempotency.finish(dead, StoredResponse(500, (), b"too late"))
        await idempotency.abandon(dead)
        retry = await post(client, route, key)

        for busy in (running, still_running):
            assert assert_problem(busy, 409)["type"] == CONFLICT
            assert busy.headers["retry-after"] == "1"
        assert_carried_out(taken_over)
        assert_replay_of(retry, taken_over)
        assert await total(client, route) == 1


# --- expiry and purging -------------------------------------------------------


async def test_a_key_counts_as_new_after_24_hours(
    client: AsyncClient, clock: TickingClock
) -> None:
    for route in ROUTES:
        first = await post(client, route, f"day-{route.path}")
        # Gone, so that carrying the request out again can succeed.
        assert (await client.delete(first.headers["location"])).status_code == 204
        clock.advance(hours=23)
        within_a_day = await post(client, route, f"day-{route.path}")
        clock.advance(hours=1)
        after_a_day = await post(client, route, f"day-{route.path}")
        retry = await post(client, route, f"day-{route.path}")

        assert_replay_of(within_a_day, first)
        assert_carried_out(after_a_day)
        assert after_a_day.json()["id"] != first.json()["id"]
        assert_replay_of(retry, after_a_day)
        assert await total(client, route) == 1


async def test_purge_forgets_the_expired_keys_only(
    client: AsyncClient, container: Container, clock: TickingClock
) -> None:
    for route in ROUTES:
        assert_carried_out(await post(client, route, f"old-{route.path}"))
    clock.advance(hours=23)
    recent = await post(client, TASKS, "recent")
    clock.advance(hours=1)

    purged = await container.idempotency_service().purge()

    assert purged == 2
    assert await stored_keys(container) == 1
    assert_replay_of(await post(client, TASKS, "recent"), recent)
    assert await container.idempotency_service().purge() == 0


async def test_claiming_a_key_purges_expired_keys_now_and_then(
    client: AsyncClient, container: Container, clock: TickingClock
) -> None:
    assert_carried_out(await post(client, TASKS, "old"))
    clock.advance(seconds=KEEP_FOR.total_seconds())

    assert_carried_out(await post(client, TASKS, "new"))

    assert await stored_keys(container) == 1  # "old" went as "new" was claimed


# --- the CLI ------------------------------------------------------------------


async def test_the_cli_purges_the_expired_keys_of_a_database(sqlite_url: str) -> None:
    container = build_container(test_settings(sqlite_url))
    now = datetime.now(UTC)
    try:
        owner = await container.identity_service().ensure_user("alice")
        store = container.idempotency_store()
        for key, created_at in [("expired", now - timedelta(hours=25)), ("live", now)]:
            await store.insert(
                IdempotencyRecord(
                    owner_id=owner,
                    key=key,
                    claim=key,
                    fingerprint="f" * 64,
                    created_at=created_at,
                    expires_at=created_at + KEEP_FOR,
                    locked_until=created_at + LEASE,
                )
            )
        await container.engine().dispose()

        env = environment(sqlite_url)
        purge = await asyncio.to_thread(taskhub, env, "idempotency-keys", "purge")

        assert purge.stdout == "Purged 1 expired idempotency key(s).\n"
        async with container.session_factory()() as session:
            keys = await session.scalars(sa.select(idempotency_keys.c.key))
            assert list(keys) == ["live"]
    finally:
        await container.engine().dispose()
