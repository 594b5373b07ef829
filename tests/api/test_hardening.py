"""Rate limits, body size limits, CORS and security headers, over HTTP.

Each test builds its own app (so its in-memory rate limit counts from zero) on
the in-memory adapter, with the settings it is about.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from httpx import ASGITransport, AsyncClient, Response

from entrypoints.container import build_container
from entrypoints.http.app import create_app
from entrypoints.settings import MEMORY_URL, Settings
from tests.api.helpers import assert_problem

ORIGIN = "https://app.example"
API_CSP = "default-src 'none'; frame-ancestors 'none'"


@asynccontextmanager
async def serve(
    *, raise_app_exceptions: bool = True, tasks: Any = None, **settings: Any
) -> AsyncIterator[AsyncClient]:
    """A client of a fresh app built from `settings` (auth off, in memory)."""
    container = build_container(
        Settings(database_url=MEMORY_URL, auth="disabled", **settings)
    )
    if tasks is not None:
        container.task_service.override(tasks)
    app = create_app(container)
    transport = ASGITransport(app, raise_app_exceptions=raise_app_exceptions)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=transport, base_url="http://taskhub") as client,
    ):
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def budget(response: Response) -> tuple[int, int, int]:
    """The RateLimit-Limit, -Remaining and -Reset of a response, checked sane."""
    limit, remaining, reset = (
        int(response.headers[f"RateLimit-{name}"])
        for name in ("Limit", "Remaining", "Reset")
    )
    assert 0 <= remaining <= limit
    assert reset >= 0
    return limit, remaining, reset


async def test_a_client_over_its_limit_gets_429_with_retry_after() -> None:
    async with serve(rate_limit="3/minute") as client:
        for _ in range(3):
            assert (await client.get("/tasks")).status_code == 200
        response = await client.get("/tasks")

    body = assert_problem(response, 429)
    assert body["title"] == "Too many requests"
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert budget(response) == (3, 0, retry_after)


async def test_a_refused_request_is_not_served() -> None:
    async with serve(rate_limit="1/minute") as client:
        await client.post("/tasks", json={"title": "First"})
        refused = await client.post("/tasks", json={"title": "Second"})
    assert_problem(refused, 429)


async def test_every_response_counts_down_the_remaining_budget() -> None:
    async with serve(rate_limit="10/minute") as client:
        responses = [
            await client.post("/tasks", json={"title": "A task"}),
            await client.get("/tasks"),
            await client.get("/tasks/999"),
            await client.post("/tasks", json={"title": ""}),
            await client.get("/no/such/route"),
            await client.delete("/tasks"),
        ]

    assert [r.status_code for r in responses] == [201, 200, 404, 422, 404, 405]
    budgets = [budget(r) for r in responses]
    assert [limit for limit, _, _ in budgets] == [10] * 6
    assert [remaining for _, remaining, _ in budgets] == [9, 8, 7, 6, 5, 4]
    assert all(1 <= reset <= 60 for _, _, reset in budgets)


async def test_each_token_has_its_own_budget_and_so_has_an_anonymous_client() -> None:
    async with serve(rate_limit="1/minute") as client:
        first_a = await client.get("/tasks", headers=bearer("token-a"))
        second_a = await client.get("/tasks", headers=bearer("token-a"))
        first_b = await client.get("/tasks", headers=bearer("token-b"))
        first_anonymous = await client.get("/tasks")
        second_anonymous = await client.get("/tasks")

    assert first_a.status_code == 200
    assert_problem(second_a, 429)
    assert first_b.status_code == 200
    assert first_anonymous.status_code == 200
    assert_problem(second_anonymous, 429)


async def test_the_budget_comes_back_once_the_window_has_passed() -> None:
    async with serve(rate_limit="2/second") as client:
        for _ in range(2):
            assert (await client.get("/tasks")).status_code == 200
        assert_problem(await client.get("/tasks"), 429)
        await asyncio.sleep(1.2)
        response = await client.get("/tasks")

    assert response.status_code == 200
    assert budget(response)[:2] == (2, 1)


async def test_an_empty_rate_limit_switches_limiting_off() -> None:
    async with serve(rate_limit="") as client:
        responses = [await client.get("/tasks") for _ in range(20)]

    assert {r.status_code for r in responses} == {200}
    assert not any("RateLimit-Limit" in r.headers for r in responses)


async def test_a_body_declared_over_the_limit_is_refused_and_nothing_is_created() -> (
    None
):
    async with serve(max_body_bytes=64, rate_limit="10/minute") as client:
        response = await client.post("/tasks", json={"title": "x" * 100})
        listed = await client.get("/tasks")

    assert "content-length" in response.request.headers
    body = assert_problem(response, 413)
    assert "64 bytes" in body["detail"]
    assert budget(response)[:2] == (10, 9)
    assert listed.json()["items"] == []


async def test_a_streamed_body_over_the_limit_is_refused_before_it_is_all_read() -> (
    None
):
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"title": "'
        for _ in range(100):
            sent += 1
            yield b"x" * 1024
        yield b'"}'

    async with serve(max_body_bytes=4096) as client:
        response = await client.post(
            "/tasks", content=chunks(), headers={"Content-Type": "application/json"}
        )
        listed = await client.get("/tasks")

    assert "content-length" not in response.request.headers
    assert_problem(response, 413)
    assert sent < 100
    assert listed.json()["items"] == []


async def test_any_route_refuses_a_body_over_the_limit_as_its_openapi_says() -> None:
    async with serve(max_body_bytes=64) as client:
        spec = (await client.get("/openapi.json")).json()
        answers = {
            (method.upper(), path): await client.request(
                method.upper(),
                path.replace("{task_id}", "1").replace("{project_id}", "1"),
                content=b"x" * 100,
            )
            for path, item in spec["paths"].items()
            for method in item
        }

    for (method, path), response in answers.items():
        assert_problem(response, 413)
        assert "413" in spec["paths"][path][method.lower()]["responses"], path


async def test_bodies_within_the_limit_are_served_streamed_or_not() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"title": '
        yield b'"Streamed"}'

    async with serve(max_body_bytes=64) as client:
        declared = await client.post("/tasks", json={"title": "Declared"})
        streamed = await client.post(
            "/tasks", content=chunks(), headers={"Content-Type": "application/json"}
        )

    assert declared.status_code == 201, declared.text
    assert streamed.status_code == 201, streamed.text
    assert streamed.json()["title"] == "Streamed"


def preflight(method: str = "PATCH") -> dict[str, str]:
    return {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, if-match",
    }


async def test_cors_is_off_unless_origins_are_configured() -> None:
    async with serve() as client:
        options = await client.options("/tasks/1", headers=preflight())
        get = await client.get("/tasks", headers={"Origin": ORIGIN})

    assert get.status_code == 200
    for response in (options, get):
        assert "Access-Control-Allow-Origin" not in response.headers


async def test_a_configured_origin_may_call_the_api_and_read_its_headers() -> None:
    async with serve(cors_origins=[ORIGIN]) as client:
        options = await client.options("/tasks/1", headers=preflight())
        get = await client.get("/tasks", headers={"Origin": ORIGIN})
        stranger = await client.get(
            "/tasks", headers={"Origin": "https://evil.example"}
        )

    assert options.status_code == 200
    assert options.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "PATCH" in options.headers["Access-Control-Allow-Methods"]
    allowed = options.headers["Access-Control-Allow-Headers"].lower()
    assert {"authorization", "if-match", "idempotency-key"} <= {
        header.strip() for header in allowed.split(",")
    }
    assert get.headers["Access-Control-Allow-Origin"] == ORIGIN
    exposed = {
        h.strip().lower()
        for h in get.headers["Access-Control-Expose-Headers"].split(",")
    }
    assert {"ratelimit-remaining", "retry-after", "location", "etag"} <= exposed
    assert "Access-Control-Allow-Origin" not in stranger.headers


async def test_a_browser_can_read_the_refusals_too() -> None:
    origin = {"Origin": ORIGIN}
    async with serve(
        cors_origins=[ORIGIN], rate_limit="1/minute", max_body_bytes=8
    ) as client:
        too_large = await client.post(
            "/tasks", json={"title": "Too long"}, headers=origin
        )
        too_many = await client.get("/tasks", headers=origin)

    assert_problem(too_large, 413)
    assert_problem(too_many, 429)
    for response in (too_large, too_many):
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


async def test_every_response_says_nosniff_and_api_responses_allow_no_content() -> None:
    async with serve(
        cors_origins=[ORIGIN], rate_limit="4/minute", max_body_bytes=8
    ) as client:
        responses = [
            await client.get("/tasks"),
            await client.get("/no/such/route"),
            await client.post("/tasks", json={"title": "Too long"}),
            await client.get("/openapi.json"),
            await client.get("/tasks"),
            await client.options("/tasks", headers=preflight("POST")),
        ]

    assert [r.status_code for r in responses] == [200, 404, 413, 200, 429, 200]
    for response in responses:
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Security-Policy"] == API_CSP


async def test_the_docs_pages_are_not_blocked_by_the_api_csp() -> None:
    async with serve() as client:
        pages = [
            await client.get(path)
            for path in ("/docs", "/docs/oauth2-redirect", "/redoc")
        ]

    for page in pages:
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert "Content-Security-Policy" not in page.headers


class BrokenTaskService:
    async def list(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the task service broke")


async def test_an_unexpected_error_still_carries_every_header() -> None:
    async with serve(
        cors_origins=[ORIGIN], raise_app_exceptions=False, tasks=BrokenTaskService()
    ) as client:
        response = await client.get("/tasks", headers={"Origin": ORIGIN})

    body = assert_problem(response, 500)
    assert "logged" in body["detail"]
    assert budget(response)[:2] == (600, 599)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == API_CSP
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


async def test_made_up_tokens_are_limited_by_address_not_each_given_a_budget() -> None:
    container = build_container(
        Settings(database_url=MEMORY_URL, first_token_file=None, rate_limit="3/minute")
    )
    app = create_app(container)

    def client_at(address: str, token: str) -> AsyncClient:
        transport = ASGITransport(app, client=(address, 1234))
        return AsyncClient(
            transport=transport, base_url="http://taskhub", headers=bearer(token)
        )

    async with app.router.lifespan_context(app):
        _, issued = await container.identity_service().create_user("mallory")
        guesses = []
        for n in range(4):
            async with client_at("10.0.0.1", f"taskhub_guess{n}") as client:
                guesses.append((await client.get("/tasks")).status_code)
        async with client_at("10.0.0.1", issued.secret) as client:
            same_address = await client.get("/tasks")
        async with client_at("10.0.0.2", issued.secret) as client:
            elsewhere = await client.get("/tasks")

    assert guesses == [401, 401, 401, 429]
    assert_problem(same_address, 429)
    assert int(same_address.headers["Retry-After"]) >= 1
    assert elsewhere.status_code == 200


async def test_valid_tokens_do_not_use_up_their_addresss_budget() -> None:
    container = build_container(
        Settings(database_url=MEMORY_URL, first_token_file=None, rate_limit="3/minute")
    )
    app = create_app(container)
    async with app.router.lifespan_context(app):
        _, issued = await container.identity_service().create_user("trent")
        transport = ASGITransport(app)
        async with AsyncClient(
            transport=transport,
            base_url="http://taskhub",
            headers=bearer(issued.secret),
        ) as client:
            with_token = [(await client.get("/tasks")).status_code for _ in range(3)]
        async with AsyncClient(
            transport=transport, base_url="http://taskhub"
        ) as client:
            anonymous = [(await client.get("/tasks")).status_code for _ in range(3)]
    assert with_token == [200, 200, 200]
    assert anonymous == [401, 401, 401]
