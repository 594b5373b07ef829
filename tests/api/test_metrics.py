"""GET /metrics: Prometheus counts by route template, in flight, the pool."""

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient
from prometheus_client.parser import text_string_to_metric_families

from entrypoints.container import Container, build_container
from entrypoints.http.app import create_app
from entrypoints.settings import MEMORY_URL
from tests.api.helpers import create_task
from tests.conftest import test_settings, url_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(exposition: str) -> Samples:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def value(scrape: Samples, name: str, **labels: str) -> float:
    return scrape.get((name, frozenset(labels.items())), 0.0)


async def scrape(http: AsyncClient) -> Samples:
    response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@asynccontextmanager
async def serving(database_url: str, **settings: Any) -> AsyncIterator[AsyncClient]:
    """An anonymous client of a fresh app (auth off) built from `settings`."""
    container = build_container(
        test_settings(database_url, auth="disabled", **settings)
    )
    app = create_app(container)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app), base_url="http://taskhub") as http,
    ):
        yield http
    if container.engine.initialized:
        await container.engine().dispose()


async def test_requests_are_counted_and_timed_by_method_route_template_and_status(
    client: AsyncClient,
) -> None:
    task = await create_task(client)
    labels = {"method": "GET", "route": "/tasks/{task_id}", "status": "200"}
    before = await scrape(client)
    for _ in range(3):
        assert (await client.get(f"/tasks/{task['id']}")).status_code == 200
    assert (await client.get("/tasks/999999")).status_code == 404
    assert (await client.get("/no/such/path")).status_code == 404
    after = await scrape(client)

    requests = "taskhub_http_requests_total"
    assert value(before, requests, **labels) == 0
    assert value(after, requests, **labels) == 3
    assert value(after, requests, **{**labels, "status": "404"}) == 1
    unmatched = {"method": "GET", "route": "<unmatched>", "status": "404"}
    assert value(after, requests, **unmatched) == 1
    assert value(after, requests, method="POST", route="/tasks", status="201") == 1
    # Every series is named by a template: no raw path made it into a label.
    routes = {dict(key[1]).get("route") for key in after if key[0] == requests}
    assert not any(str(route).startswith(("/tasks/9", "/no")) for route in routes)

    histogram = "taskhub_http_request_duration_seconds"
    assert value(after, f"{histogram}_count", **labels) == 3
    assert value(after, f"{histogram}_bucket", **labels, le="+Inf") == 3
    assert value(before, f"{histogram}_bucket", **labels, le="+Inf") == 0
    assert value(after, f"{histogram}_sum", **labels) > 0
    buckets = [
        value(after, f"{histogram}_bucket", **labels, le=le)
        for le in ("0.001", "0.01", "0.1", "1.0", "10.0", "+Inf")
    ]
    assert buckets == sorted(buckets)


async def test_the_in_flight_gauge_counts_the_requests_being_served(
    database_url: str,
) -> None:
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        await release.wait()
        yield b'{"title": "Slow"}'

    gauge = "taskhub_http_requests_in_flight"
    async with serving(database_url) as http:
        assert value(await scrape(http), gauge) == 1  # the scrape itself
        slow = asyncio.create_task(
            http.post(
                "/tasks",
                content=slow_body(),
                headers={"content-type": "application/json"},
            )
        )
        for _ in range(100):  # until the slow request is in
            if value(await scrape(http), gauge) == 2:
                break
            await asyncio.sleep(0.01)
        assert value(await scrape(http), gauge) == 2
        release.set()
        assert (await slow).status_code == 201
        assert value(await scrape(http), gauge) == 1


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sql_url(request: pytest.FixtureRequest) -> str:
    return url_for(request.param, request)


async def test_the_pool_gauges_show_its_size_and_the_connections_in_use(
    sql_url: str,
) -> None:
    container = build_container(
        test_settings(sql_url, auth="disabled", database_pool_size=3)
    )
    app = create_app(container)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app), base_url="http://taskhub") as http,
    ):
        assert (await http.get("/tasks")).status_code == 200
        idle = await scrape(http)
        async with container.engine().connect():
            busy = await scrape(http)
    await container.engine().dispose()
    size = 3 if sql_url.startswith("postgresql") else 5  # SQLite: a fixed 5
    assert value(idle, "taskhub_db_pool_size") == size
    assert value(idle, "taskhub_db_pool_checked_out") == 0
    assert value(busy, "taskhub_db_pool_checked_out") == 1


async def test_metrics_need_no_token_and_no_budget(container: Container) -> None:
    app = create_app(
        build_container(
            test_settings(str(container.config.database_url()), rate_limit="2/minute")
        )
    )
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app), base_url="http://taskhub") as http,
    ):
        assert (await http.get("/tasks")).status_code == 401
        for _ in range(5):
            await scrape(http)


@pytest.mark.parametrize(
    "settings",
    [{"metrics": False}, {"metrics_address": "127.0.0.1:9464"}],
    ids=["metrics off", "metrics on their own address"],
)
async def test_the_api_port_serves_no_metrics_when_told_not_to(
    settings: dict[str, Any],
) -> None:
    async with serving(MEMORY_URL, **settings) as http:
        assert (await http.get("/tasks")).status_code == 200
        assert (await http.get("/metrics")).status_code == 404


def test_metrics_off_leave_a_worker_without_prometheus_client() -> None:
    code = (
        "import sys\n"
        "from entrypoints.container import build_container\n"
        "from entrypoints.http.app import create_app\n"
        "from entrypoints.settings import Settings\n"
        "create_app(build_container(Settings(database_url='memory://', metrics=M)))\n"
        "print(any(m.startswith('prometheus_client') for m in sys.modules))\n"
    )
    loaded = {
        switch: subprocess.run(
            [sys.executable, "-c", code.replace("M", switch)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for switch in ("False", "True")
    }
    assert loaded == {"False": "False", "True": "True"}
