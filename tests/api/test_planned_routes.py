"""Task and project routes solve their parameters by a plan made at start-up
(entrypoints.http.planned): a valid request skips FastAPI's solving, and every
request is answered exactly as FastAPI's own handler answers it."""

from typing import Any

import fastapi.routing
import pytest
from fastapi.routing import request_response
from httpx import ASGITransport, AsyncClient, Response

from entrypoints.container import build_container
from entrypoints.http.app import create_app
from entrypoints.http.planned import PlannedRoute
from tests.conftest import test_settings
from tests.fakes import TickingClock

JSON = {"content-type": "application/json"}


def _spy_on_solving(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests whose parameters FastAPI's handler solved."""
    paths: list[str] = []
    solve = fastapi.routing.solve_dependencies

    async def counted(**kwargs: Any) -> Any:
        paths.append(kwargs["request"].url.path)
        return await solve(**kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    return paths


@pytest.fixture
def solved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return _spy_on_solving(monkeypatch)


@pytest.mark.parametrize("database_url", ["memory"], indirect=True)
async def test_valid_requests_are_answered_by_the_plan(
    client: AsyncClient, solved: list[str]
) -> None:
    task = await client.post("/tasks", json={"title": "Plan"})
    keyed = await client.post(
        "/tasks", json={"title": "Keyed"}, headers={"Idempotency-Key": "k-1"}
    )
    project = await client.post("/projects", json={"name": "Roadmap"})
    responses = [
        task,
        keyed,
        project,
        await client.get("/tasks/1"),
        await client.get("/tasks", params={"limit": 1}),
        await client.patch("/tasks/1", json={"done": True}),
        await client.get("/projects/1"),
        await client.get("/projects"),
        await client.get("/projects/1/tasks"),
        await client.patch("/projects/1", json={"name": "Plan B"}),
        await client.delete("/tasks/2"),
        await client.delete("/projects/1"),
    ]
    assert [r.status_code for r in responses] == [201] * 3 + [200] * 7 + [204] * 2
    assert solved == []

    # An invalid request is FastAPI's to answer.
    invalid = await client.get("/tasks/abc")
    assert invalid.status_code == 422
    assert solved == ["/tasks/abc"]


# Requests (method, path, headers, body) whose answers must not depend on the
# plan: valid ones, and every kind of invalid one, each route's.
SCRIPT: list[tuple[str, str, dict[str, str], bytes | None]] = [
    ("POST", "/tasks", JSON, b'{"title": "First"}'),
    ("POST", "/tasks", JSON, b'{"title": "Second", "priority": "high"}'),
    ("POST", "/tasks", {**JSON, "Idempotency-Key": "abc"}, b'{"title": "Keyed"}'),
    ("POST", "/tasks", {**JSON, "Idempotency-Key": "abc"}, b'{"title": "Keyed"}'),
    ("POST", "/tasks", {**JSON, "Idempotency-Key": "abc"}, b'{"title": "Other"}'),
    ("POST", "/tasks", {**JSON, "Idempotency-Key": "a b"}, b'{"title": "x"}'),
    ("POST", "/tasks", {**JSON, "Idempotency-Key": ""}, b'{"title": "x"}'),
    ("POST", "/tasks", {**JSON, "Idempotency-Key": "a b"}, b'{"title": 5}'),
    ("POST", "/tasks", JSON, b'{"title": ""}'),
    ("POST", "/tasks", JSON, b'{"title": "x", "extra": 1}'),
    ("POST", "/tasks", JSON, b'{"title": "x", "due_date": "soon"}'),
    ("POST", "/tasks", JSON, b"{bad json"),
    ("POST", "/tasks", JSON, b"null"),
    ("POST", "/tasks", JSON, b"[]"),
    ("POST", "/tasks", JSON, b""),
    ("POST", "/tasks", {}, b'{"title": "No type"}'),
    ("POST", "/tasks", {"content-type": "text/plain"}, b'{"title": "Text"}'),
    (
        "POST",
        "/tasks",
        {"content-type": "application/json; charset=utf-8"},
        b'{"title": "Charset"}',
    ),
    ("POST", "/tasks", {"content-type": "application/merge+json"}, b'{"title": "M"}'),
    ("GET", "/tasks/1", {}, None),
    ("GET", "/tasks/1", {"If-None-Match": '"1"'}, None),
    ("GET", "/tasks/1", {"If-None-Match": "garbage"}, None),
    ("GET", "/tasks/abc", {}, None),
    ("GET", "/tasks/0", {}, None),
    ("GET", "/tasks/-1", {}, None),
    ("GET", "/tasks/1.5", {}, None),
    ("GET", "/tasks/99999999999999999999", {}, None),
    ("GET", "/tasks/999", {}, None),
    ("GET", "/tasks", {}, None),
    ("GET", "/tasks?limit=0", {}, None),
    ("GET", "/tasks?done=maybe&limit=2", {}, None),
    ("GET", "/tasks?sort=-priority&limit=2", {}, None),
    ("PATCH", "/tasks/1", JSON, b'{"done": true}'),
    ("PATCH", "/tasks/1", {**JSON, "If-Match": '"1"'}, b'{"done": false}'),
    ("PATCH", "/tasks/1", {**JSON, "If-Match": '"2"'}, b'{"done": false}'),
    ("PATCH", "/tasks/1", JSON, b'{"title": null}'),
    ("PATCH", "/tasks/1", JSON, b'{"priority": "urgent"}'),
    ("PATCH", "/tasks/abc", JSON, b'{"done": true}'),
    ("PATCH", "/tasks/abc", JSON, b"{bad"),
    ("PATCH", "/tasks/999", JSON, b'{"done": true}'),
    ("PATCH", "/tasks/1", {}, b'{"done": true}'),
    ("DELETE", "/tasks/2", {"If-Match": '"9"'}, None),
    ("DELETE", "/tasks/2", {}, None),
    ("DELETE", "/tasks/2", {}, None),
    ("DELETE", "/tasks/x", {}, None),
    ("POST", "/projects", JSON, b'{"name": "Roadmap"}'),
    ("POST", "/projects", JSON, b'{"name": ""}'),
    ("POST", "/projects", {**JSON, "Idempotency-Key": "p"}, b'{"name": "Keyed"}'),
    ("GET", "/projects/1", {}, None),
    ("GET", "/projects/0", {}, None),
    ("GET", "/projects", {}, None),
    ("GET", "/projects?archived=perhaps", {}, None),
    ("GET", "/projects/1/tasks", {}, None),
    ("GET", "/projects/1/tasks?limit=0", {}, None),
    ("GET", "/projects/9/tasks", {}, None),
    ("PATCH", "/projects/1", JSON, b'{"archived": true}'),
    ("PATCH", "/projects/1", JSON, b'{"archived": "yes please"}'),
    ("PATCH", "/tasks/1", JSON, b'{"project_id": 1}'),
    ("DELETE", "/projects/1", {}, None),
    ("DELETE", "/projects/2", {"If-Match": '"1"'}, None),
    ("DELETE", "/projects/0", {}, None),
]

# What differs between two requests answered alike.
_PER_REQUEST = ("x-request-id", "date", "ratelimit-reset", "content-length")


def _answer(response: Response) -> tuple[int, dict[str, str], Any]:
    headers = {
        k: v for k, v in response.headers.items() if k.lower() not in _PER_REQUEST
    }
    body: Any = response.content
    if response.headers.get("content-type", "").endswith("json"):
        body = response.json()
        if isinstance(body, dict):
            body.pop("request_id", None)
    return response.status_code, headers, body


async def _answers(
    token: str | None, plan: bool, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[tuple[int, dict[str, str], Any]], list[str]]:
    """Each request's answer, on a fresh app whose routes run by their plans
    or (`plan` false) by FastAPI's own handlers; and the paths FastAPI solved."""
    with monkeypatch.context() as patched:
        solved = _spy_on_solving(patched)
        container = build_container(
            test_settings("memory://", cursor_secret="the same for both apps")
        )
        container.clock.override(TickingClock())
        app = create_app(container)
        if not plan:
            for route in app.router.routes:
                if isinstance(route, PlannedRoute) and route.plan is not None:
                    fastapis = request_response(route.plan.fallback)
                    patched.setattr(route, "app", fastapis)
        answers = []
        async with app.router.lifespan_context(app):
            issued = await container.identity_service().create_user("alice")
            headers = {"Authorization": f"Bearer {token or issued[1].secret}"}
            async with AsyncClient(
                transport=ASGITransport(app), base_url="http://taskhub"
            ) as client:
                for method, path, extra, body in SCRIPT:
                    response = await client.request(
                        method, path, headers={**headers, **extra}, content=body
                    )
                    answers.append(_answer(response))
        return answers, list(solved)


@pytest.mark.parametrize("token", [None, "taskhub_not-a-token"], ids=["own", "bad"])
async def test_every_request_is_answered_as_fastapi_answers_it(
    token: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    planned_answers, planned_solved = await _answers(token, True, monkeypatch)
    fastapis, fastapi_solved = await _answers(token, False, monkeypatch)
    # FastAPI's handlers solved every request that had a JSON body or none
    # (a body that is not JSON is refused first); the plans left it only some.
    assert fastapi_solved == [
        path.split("?")[0]
        for (_, path, _, _), (status, _, _) in zip(SCRIPT, fastapis, strict=True)
        if status != 400
    ]
    assert len(planned_solved) < len(fastapi_solved)
    for request, mine, theirs in zip(SCRIPT, planned_answers, fastapis, strict=True):
        assert mine == theirs, request
    statuses = {status for status, _, _ in planned_answers}
    if token is None:  # the script reaches every kind of answer
        assert {200, 201, 204, 304, 400, 404, 409, 412, 422} <= statuses
    else:  # FastAPI decodes a JSON body before it asks for the token
        assert statuses == {400, 401}
