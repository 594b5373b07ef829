"""Logs and metrics of a real `taskhub serve`: JSON access lines on stderr, and
metrics that add up over several worker processes."""

import json
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.served import (
    STARTUP_DEADLINE,
    Served,
    environment,
    free_port,
    serve,
    taskhub,
)

WORKERS = 2


def _environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    """A migrated SQLite file, a token file, no rate limit; private temp files."""
    env = environment(
        f"sqlite:///{tmp_path}/taskhub.db",
        first_token_file=str(tmp_path / "token"),
        rate_limit="",
        **settings,
    )
    env["TMPDIR"] = str(tmp_path)  # where `taskhub serve` makes its metrics dir
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    taskhub(env, "db", "upgrade")
    return env


def _wait_until_every_worker_serves(served: Served, workers: int) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE
    while served.log().count("Application startup complete") < workers:
        if served.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"taskhub serve did not start:\n{served.log()}")
        time.sleep(0.1)


def _get(url: str, **headers: str) -> httpx.Response:
    # A connection per request, so the kernel hands them to either worker.
    with httpx.Client(headers=headers) as http:
        return http.get(url)


def _requests_to(url: str, route: str) -> float:
    response = _get(url)
    assert response.status_code == 200, response.text
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "taskhub_http_requests_total"
        and sample.labels["route"] == route
    )


def test_served_with_json_logs_every_line_is_json_and_requests_get_access_lines(
    tmp_path: Path,
) -> None:
    env = _environment(tmp_path, log_format="json")
    log = tmp_path / "serve.log"
    with serve(env, log) as served:
        token = (tmp_path / "token").read_text().strip()
        sent = {"Authorization": f"Bearer {token}", "X-Request-ID": "json-lines-1"}
        assert _get(f"{served.base_url}/tasks/12?x=1", **sent).status_code == 404
        refused = _get(f"{served.base_url}/tasks", Authorization="Bearer nope")
        assert refused.status_code == 401
    text = log.read_text()
    lines: list[dict[str, Any]] = [json.loads(line) for line in text.splitlines()]
    assert any(line["event"] == "Application startup complete." for line in lines)
    access = [line for line in lines if line["logger"] == "taskhub.access"]
    [ours] = [line for line in access if line["request_id"] == "json-lines-1"]
    assert ours["route"] == "/tasks/{task_id}"
    assert (ours["method"], ours["status"]) == ("GET", 404)
    assert isinstance(ours["owner_id"], int)
    [other] = [line for line in access if line["status"] == 401]
    assert (other["route"], other["owner_id"]) == ("/tasks", None)
    assert not [line for line in lines if line["logger"] == "uvicorn.access"]
    assert token not in text


def test_two_workers_report_the_same_totals_whichever_of_them_is_scraped(
    tmp_path: Path,
) -> None:
    env = _environment(tmp_path)
    log = tmp_path / "serve.log"
    requests = 40
    with serve(env, log, "--workers", str(WORKERS)) as served:
        _wait_until_every_worker_serves(served, WORKERS)
        token = (tmp_path / "token").read_text().strip()
        for _ in range(requests):
            response = _get(f"{served.base_url}/tasks", Authorization=f"Bearer {token}")
            assert response.status_code == 200
        totals = [
            _requests_to(f"{served.base_url}/metrics", "/tasks") for _ in range(8)
        ]
        pool = _get(f"{served.base_url}/metrics").text
    assert totals == [requests] * 8, log.read_text()
    # Both workers' pools (SQLite: 5 connections each), not the scraped one's.
    assert "taskhub_db_pool_size 10.0" in pool, pool
    assert not list(tmp_path.glob("taskhub-metrics-*")), "metrics dir left behind"


def test_metrics_on_their_own_address_leave_the_api_port(tmp_path: Path) -> None:
    metrics_port = free_port()
    env = _environment(tmp_path, metrics_address=f"127.0.0.1:{metrics_port}")
    with serve(env, tmp_path / "serve.log") as served:
        token = (tmp_path / "token").read_text().strip()
        for _ in range(3):
            response = _get(f"{served.base_url}/tasks", Authorization=f"Bearer {token}")
            assert response.status_code == 200
        assert _get(f"{served.base_url}/metrics").status_code == 404
        assert _requests_to(f"http://127.0.0.1:{metrics_port}/metrics", "/tasks") == 3
        assert list(tmp_path.glob("taskhub-metrics-*"))
    assert not list(tmp_path.glob("taskhub-metrics-*")), "metrics dir left behind"
