"""Bearer tokens over HTTP: who may ask, and what a refused request gives away."""

import asyncio
import dataclasses
import hashlib
import logging
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response

from adapters.sqlalchemy.tables import api_tokens
from entrypoints.container import Container, build_container
from entrypoints.http.app import create_app
from tests.api.helpers import Json, assert_problem, create_task
from tests.conftest import BACKENDS, test_settings
from tests.fakes import TickingClock

SQL_BACKENDS = [backend for backend in BACKENDS if backend != "memory"]

# Every operation of the API, each needing a token.
OPERATIONS = [
    ("POST", "/tasks"),
    ("GET", "/tasks"),
    ("GET", "/tasks/1"),
    ("PATCH", "/tasks/1"),
    ("DELETE", "/tasks/1"),
    ("POST", "/projects"),
    ("GET", "/projects"),
    ("GET", "/projects/1"),
    ("PATCH", "/projects/1"),
    ("DELETE", "/projects/1"),
    ("GET", "/projects/1/tasks"),
]

# Every way a request can fail to authenticate.
BAD_CREDENTIALS = [
    "no Authorization header",
    "a Basic scheme",
    "a valid token under the Basic scheme",
    "Bearer with nothing after it",
    "an unknown token",
    "a revoked token",
    "an expired token",
]
SENDING_A_TOKEN = [
    "a valid token under the Basic scheme",
    "an unknown token",
    "a revoked token",
    "an expired token",
]


@asynccontextmanager
async def http_client(
    app: FastAPI, token: str | None = None
) -> AsyncIterator[AsyncClient]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with AsyncClient(
        transport=ASGITransport(app), base_url="http://taskhub", headers=headers
    ) as client:
        yield client


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """A client of the same app that sends no token unless told to."""
    async with http_client(app) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unknown_token() -> str:
    """Shaped like a real token, but never issued."""
    return "taskhub_" + secrets.token_urlsafe(32)


async def bad_credentials(
    reason: str,
    *,
    container: Container,
    clock: TickingClock,
    anonymous: AsyncClient,
    token: str,
) -> tuple[dict[str, str], str | None]:
    """The headers of a request that fails for `reason`, and the token it sends.

    A revoked or expired token is shown to work before it is made to fail.
    """
    identity = container.identity_service()
    if reason == "no Authorization header":
        return {}, None
    if reason == "a Basic scheme":
        return {"Authorization": "Basic abc"}, None
    if reason == "a valid token under the Basic scheme":
        return {"Authorization": f"Basic {token}"}, token
    if reason == "Bearer with nothing after it":
        return {"Authorization": "Bearer"}, None
    if reason == "an unknown token":
        secret = unknown_token()
        return bearer(secret), secret
    if reason == "a revoked token":
        issued = await identity.issue_token("alice", "to revoke")
        assert (await anonymous.get("/tasks", headers=bearer(issued.secret))).is_success
        await identity.revoke_token(issued.record.prefix)
        return bearer(issued.secret), issued.secret
    assert reason == "an expired token"
    issued = await identity.issue_token(
        "alice", "short-lived", expires_in=timedelta(hours=1)
    )
    assert (await anonymous.get("/tasks", headers=bearer(issued.secret))).is_success
    clock.advance(hours=2)
    return bearer(issued.secret), issued.secret


def assert_unauthenticated(response: Response) -> Json:
    """A 401 problem that asks for a bearer token."""
    body = assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"
    return body


# --- refusing a request -------------------------------------------------------


@pytest.mark.parametrize("reason", BAD_CREDENTIALS)
async def test_a_request_without_a_valid_token_gets_a_401_problem_asking_for_bearer(
    anonymous: AsyncClient,
    container: Container,
    clock: TickingClock,
    token: str,
    reason: str,
) -> None:
    headers, _ = await bad_credentials(
        reason, container=container, clock=clock, anonymous=anonymous, token=token
    )

    response = await anonymous.get("/tasks", headers=headers)

    assert_unauthenticated(response)


@pytest.mark.parametrize(
    "path", ["/tasks?limit=0", "/projects?sort=nope", "/projects/1/tasks?done=maybe"]
)
async def test_a_listing_is_refused_for_its_missing_token_before_its_query_is_read(
    anonymous: AsyncClient, path: str
) -> None:
    response = await anonymous.get(path)

    assert_unauthenticated(response)


async def test_the_401_body_is_the_same_whatever_was_wrong_with_the_token(
    anonymous: AsyncClient, container: Container, clock: TickingClock, token: str
) -> None:
    bodies = {}
    for reason in BAD_CREDENTIALS:
        headers, _ = await bad_credentials(
            reason, container=container, clock=clock, anonymous=anonymous, token=token
        )
        bodies[reason] = assert_unauthenticated(
            await anonymous.get("/tasks", headers=headers)
        )

    first = bodies[BAD_CREDENTIALS[0]]
    assert bodies == dict.fromkeys(BAD_CREDENTIALS, first)


@pytest.mark.parametrize("reason", SENDING_A_TOKEN)
async def test_the_response_to_a_bad_token_never_contains_the_token(
    anonymous: AsyncClient,
    container: Container,
    clock: TickingClock,
    token: str,
    reason: str,
) -> None:
    headers, secret = await bad_credentials(
        reason, container=container, clock=clock, anonymous=anonymous, token=token
    )
    assert secret is not None

    response = await anonymous.post("/tasks", json={"title": "x"}, headers=headers)

    assert_unauthenticated(response)
    assert secret not in response.text
    for name, value in response.headers.multi_items():
        assert secret not in name
        assert secret not in value


async def test_every_operation_requires_a_token(anonymous: AsyncClient) -> None:
    expected = assert_unauthenticated(await anonymous.get("/tasks"))

    for method, path in OPERATIONS:
        json = {"title": "x", "name": "xy"} if method in ("POST", "PATCH") else None
        response = await anonymous.request(method, path, json=json)

        assert assert_unauthenticated(response) == expected, (method, path)


async def test_a_refused_request_changes_nothing(
    client: AsyncClient, anonymous: AsyncClient
) -> None:
    task = await create_task(client, "Keep me")
    before = (await client.get("/tasks")).content

    await anonymous.post("/tasks", json={"title": "Sneaky"})
    await anonymous.patch(f"/tasks/{task['id']}", json={"title": "Changed"})
    await anonymous.delete(f"/tasks/{task['id']}")
    await anonymous.post("/projects", json={"name": "Sneaky"})

    assert (await client.get("/tasks")).content == before
    assert (await client.get("/projects")).json()["total"] == 0


# --- revocation and expiry ----------------------------------------------------


async def test_a_revoked_token_is_refused_on_the_very_next_request(
    anonymous: AsyncClient, container: Container, owner_id: int
) -> None:
    identity = container.identity_service()
    issued = await identity.issue_token("alice", "laptop")
    assert (
        await anonymous.get("/tasks", headers=bearer(issued.secret))
    ).status_code == 200

    await identity.revoke_token(issued.record.prefix)

    assert_unauthenticated(await anonymous.get("/tasks", headers=bearer(issued.secret)))


async def test_requests_side_by_side_each_act_for_their_own_token(
    anonymous: AsyncClient, client: AsyncClient, container: Container, owner_id: int
) -> None:
    # Their tokens are looked up together (application.identity._TokenReads).
    alices = (await create_task(client, "Alice's"))["id"]
    identity = container.identity_service()
    await identity.ensure_user("bob")
    bob = bearer((await identity.issue_token("bob", "laptop")).secret)
    bobs = (await anonymous.post("/tasks", json={"title": "Bob's"}, headers=bob)).json()
    alice = {"Authorization": client.headers["Authorization"]}
    asked = [
        (alice, alices, 200),
        (bob, alices, 404),
        (bob, bobs["id"], 200),
        (alice, bobs["id"], 404),
        (bearer(unknown_token()), alices, 401),
    ] * 8

    responses = await asyncio.gather(
        *(anonymous.get(f"/tasks/{task}", headers=who) for who, task, _ in asked)
    )

    assert [r.status_code for r in responses] == [status for *_, status in asked]
    titles = [r.json()["title"] for r in responses if r.status_code == 200]
    assert titles == ["Alice's", "Bob's"] * 8


async def test_revoking_one_token_leaves_the_users_other_tokens_working(
    client: AsyncClient, container: Container, owner_id: int
) -> None:
    issued = await container.identity_service().issue_token("alice", "laptop")

    await container.identity_service().revoke_token(issued.record.prefix)

    assert (await client.get("/tasks")).status_code == 200


async def test_an_expiring_token_works_until_it_expires_and_not_a_request_longer(
    anonymous: AsyncClient, container: Container, clock: TickingClock, owner_id: int
) -> None:
    issued = await container.identity_service().issue_token(
        "alice", "short-lived", expires_in=timedelta(hours=1)
    )
    headers = bearer(issued.secret)
    clock.advance(minutes=59)
    assert (await anonymous.get("/tasks", headers=headers)).status_code == 200

    clock.advance(minutes=2)

    assert_unauthenticated(await anonymous.get("/tasks", headers=headers))


# --- what is stored and listed ------------------------------------------------


@pytest.mark.parametrize("database_url", SQL_BACKENDS, indirect=True)
async def test_the_database_holds_the_tokens_hash_and_never_the_token(
    app: FastAPI, client: AsyncClient, container: Container, token: str
) -> None:
    _, issued = await container.identity_service().create_user(
        "hash-" + secrets.token_hex(4)
    )
    # Using the tokens writes their rows again (last_used_at).
    assert (await client.get("/tasks")).status_code == 200
    async with http_client(app, issued.secret) as other:
        assert (await other.get("/tasks")).status_code == 200

    async with container.engine().connect() as connection:
        rows = (await connection.execute(sa.select(api_tokens))).all()

    for secret in (token, issued.secret):
        for row in rows:
            for column, value in row._mapping.items():
                assert secret not in str(value), column
        digest = hashlib.sha256(secret.encode()).hexdigest()
        assert digest in {row.secret_hash for row in rows}


async def test_a_tokens_last_use_is_recorded_and_shown_in_its_listing(
    anonymous: AsyncClient, container: Container, clock: TickingClock, owner_id: int
) -> None:
    identity = container.identity_service()
    issued = await identity.issue_token("alice", "laptop")
    (listed,) = [
        t
        for t in await identity.list_tokens("alice")
        if t.prefix == issued.record.prefix
    ]
    assert listed.last_used_at is None

    before = clock.current
    assert (await anonymous.get("/tasks", headers=bearer(issued.secret))).is_success
    after = clock.current

    (listed,) = [
        t
        for t in await identity.list_tokens("alice")
        if t.prefix == issued.record.prefix
    ]
    assert listed.last_used_at is not None
    assert before < listed.last_used_at <= after


async def test_a_token_listing_never_contains_the_secret(
    client: AsyncClient, container: Container, token: str
) -> None:
    identity = container.identity_service()
    user, first = await identity.create_user("list-" + secrets.token_hex(4))
    second = await identity.issue_token(user.name, "ci", timedelta(days=30))
    assert (await client.get("/tasks")).is_success

    for owner, secrets_ in (
        ("alice", [token]),
        (user.name, [first.secret, second.secret]),
    ):
        listing = await identity.list_tokens(owner)
        assert len(listing) >= len(secrets_)
        for record in listing:
            for field in dataclasses.fields(record):
                value = str(getattr(record, field.name))
                for secret in secrets_:
                    assert secret not in value, field.name


# --- the OpenAPI document -----------------------------------------------------


@pytest.mark.parametrize("database_url", ["memory"], indirect=True)
async def test_the_openapi_document_declares_bearer_auth_on_every_operation(
    anonymous: AsyncClient,
) -> None:
    response = await anonymous.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()

    schemes = document["components"]["securitySchemes"]
    bearer_schemes = {
        name
        for name, scheme in schemes.items()
        if scheme["type"] == "http" and scheme["scheme"].lower() == "bearer"
    }
    assert bearer_schemes
    operations = [
        (method, path, operation)
        for path, item in document["paths"].items()
        if path.startswith(("/tasks", "/projects"))
        for method, operation in item.items()
    ]
    documented = {
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for method, path, _ in operations
    }
    assert documented == set(OPERATIONS)
    for method, path, operation in operations:
        required = {name for option in operation["security"] for name in option}
        assert required & bearer_schemes, (method, path)
        assert "401" in operation["responses"], (method, path)


@pytest.mark.parametrize("database_url", ["memory"], indirect=True)
async def test_the_docs_and_the_openapi_document_need_no_token(
    anonymous: AsyncClient,
) -> None:
    assert (await anonymous.get("/openapi.json")).status_code == 200
    docs = await anonymous.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


# --- auth disabled ------------------------------------------------------------


async def test_with_auth_disabled_requests_need_no_token_and_all_act_as_one_user(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(build_container(test_settings(database_url, auth="disabled")))

    with caplog.at_level(logging.WARNING):
        async with app.router.lifespan_context(app):
            logged = [r for r in caplog.records if r.levelno == logging.WARNING]
            async with http_client(app) as first, http_client(app) as second:
                task = await create_task(first, "Demo task")
                project = await second.post("/projects", json={"name": "Demo"})
                listed = await second.get("/tasks")
                fetched = await first.get(f"/projects/{project.json()['id']}")

    assert any("TASKHUB_AUTH=disabled" in r.getMessage() for r in logged)
    assert project.status_code == 201
    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()["items"]] == [task["id"]]
    assert fetched.status_code == 200
    assert fetched.json() == project.json()


async def test_with_auth_required_no_warning_about_disabled_auth_is_logged(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(build_container(test_settings(database_url)))

    with caplog.at_level(logging.WARNING):
        async with app.router.lifespan_context(app), http_client(app) as client:
            response = await client.get("/tasks")

    assert_unauthenticated(response)
    assert not [r for r in caplog.records if "disabled" in r.getMessage()]


async def test_no_log_line_ever_contains_a_token(
    app: FastAPI, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    unknown = "taskhub_" + "x" * 43
    caplog.set_level(logging.DEBUG)
    transport = ASGITransport(app)
    for secret in (token, unknown):
        headers = {"Authorization": f"Bearer {secret}"}
        async with AsyncClient(
            transport=transport, base_url="http://taskhub", headers=headers
        ) as http:
            await http.post("/tasks", json={"title": "logged?"})
            await http.get("/tasks", params={"q": "x"})
    assert caplog.records, "expected the requests to log something"
    assert token not in caplog.text
    assert unknown not in caplog.text
