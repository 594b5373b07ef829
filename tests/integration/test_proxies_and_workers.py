"""`taskhub serve` behind a reverse proxy and on several worker processes, in a
subprocess over real HTTP.

This machine is both the "proxy" and the client: requests come from 127.0.0.1,
so trusting 127.0.0.1 stands for trusting the proxy.
"""

import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.served import STARTUP_DEADLINE, Served, environment, serve, taskhub

RATE = 2  # requests per minute per client address, so a third one is refused


@pytest.fixture
def proxied(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    """A server without auth (so clients count by address) trusting `param`."""
    env = environment(
        "memory://",
        auth="disabled",
        rate_limit=f"{RATE}/minute",
        first_token_file="",
        forwarded_allow_ips=request.param,
    )
    with serve(env, tmp_path / "serve.log") as served:
        yield served


def from_address(server: Served, address: str, path: str = "/tasks") -> httpx.Response:
    headers = {"X-Forwarded-For": address, "X-Forwarded-Proto": "https"}
    return httpx.get(server.base_url + path, headers=headers)


@pytest.mark.parametrize(
    "proxied", ["127.0.0.1", "10.0.0.0/8,127.0.0.1"], indirect=True
)
def test_a_trusted_proxy_names_the_client_each_budget_is_counted_against(
    proxied: Served,
) -> None:
    first = [from_address(proxied, "203.0.113.7").status_code for _ in range(RATE)]
    assert first == [200] * RATE
    assert from_address(proxied, "203.0.113.7").status_code == 429
    other = from_address(proxied, "203.0.113.8")
    assert other.status_code == 200
    assert other.headers["RateLimit-Remaining"] == str(RATE - 1)


@pytest.mark.parametrize("proxied", ["", "10.0.0.1"], indirect=True)
def test_forwarded_headers_from_an_untrusted_client_are_ignored(
    proxied: Served,
) -> None:
    first = [from_address(proxied, f"203.0.113.{n}").status_code for n in range(RATE)]
    assert first == [200] * RATE
    # A fresh made-up address buys no fresh budget: all count as 127.0.0.1.
    assert from_address(proxied, "198.51.100.1").status_code == 429


@pytest.mark.parametrize(
    ("proxied", "scheme"), [("127.0.0.1", "https"), ("", "http")], indirect=["proxied"]
)
def test_generated_absolute_urls_take_the_scheme_only_from_a_trusted_proxy(
    proxied: Served, scheme: str
) -> None:
    # The one absolute URL the service makes: the redirect to a path without
    # its trailing slash.
    answer = from_address(proxied, "203.0.113.9", "/tasks/")
    assert answer.status_code == 307
    assert answer.headers["location"].startswith(f"{scheme}://")
    assert answer.headers["location"].endswith("/tasks")


def process_tag(answer: httpx.Response) -> str:
    """The random per-process prefix of a generated request id (entrypoints.logs):
    which worker answered, without telling anyone its pid."""
    return answer.headers["x-request-id"].split("-")[0]


@pytest.fixture
def two_workers(
    server_database_url: str, tmp_path: Path
) -> Iterator[tuple[Served, str]]:
    token_file = tmp_path / "token"
    env = environment(server_database_url, first_token_file=str(token_file))
    taskhub(env, "db", "upgrade")
    with serve(env, tmp_path / "serve.log", "--workers", "2") as served:
        yield served, token_file.read_text().strip()


def test_two_workers_are_two_processes_that_both_answer(
    two_workers: tuple[Served, str],
) -> None:
    served, _ = two_workers
    tags: set[str] = set()
    deadline = time.monotonic() + STARTUP_DEADLINE
    # A connection per request, several at once, so that both workers accept.
    with ThreadPoolExecutor(max_workers=8) as pool:
        while len(tags) < 2 and time.monotonic() < deadline:
            answers = pool.map(
                lambda _: httpx.get(served.base_url + "/healthz"), range(16)
            )
            tags |= {process_tag(answer) for answer in answers}
    assert len(tags) == 2, served.log()
    # uvicorn's own word for it (not served to clients): two worker pids.
    pids = set(re.findall(r"Started server process \[(\d+)\]", served.log()))
    assert len(pids) == 2
    assert str(served.process.pid) not in pids


def answered_by_the_other_worker(
    send: Callable[[], httpx.Response], origin: httpx.Response
) -> httpx.Response:
    """`send()` (a request that may be repeated) until a worker other than the one
    that gave `origin` answers it; a few at once, on fresh connections, so that
    both workers accept."""
    deadline = time.monotonic() + STARTUP_DEADLINE
    with ThreadPoolExecutor(max_workers=4) as pool:
        while time.monotonic() < deadline:
            for answer in pool.map(lambda _: send(), range(4)):
                if process_tag(answer) != process_tag(origin):
                    return answer
    raise AssertionError("the other worker never answered")


def test_two_workers_serve_one_consistent_api(two_workers: tuple[Served, str]) -> None:
    served, token = two_workers
    headers = {"Authorization": f"Bearer {token}"}

    def call(
        method: str, path: str, key: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        # A fresh connection each time: consecutive calls reach either worker.
        extra = {"Idempotency-Key": key} if key else {}
        return httpx.request(
            method, served.base_url + path, headers=headers | extra, **kwargs
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        created = list(
            pool.map(
                lambda n: call("POST", "/tasks", json={"title": f"t{n}"}), range(20)
            )
        )
    assert [answer.status_code for answer in created] == [201] * 20
    ids = sorted(answer.json()["id"] for answer in created)
    listing = call("GET", "/tasks", params={"limit": 100})
    assert sorted(task["id"] for task in listing.json()["items"]) == ids

    # A cursor signed by one worker is honoured by the other.
    first = call("GET", "/tasks", params={"limit": 3, "sort": "id"})
    cursor = first.json()["next_cursor"]
    second = answered_by_the_other_worker(
        lambda: call(
            "GET", "/tasks", params={"limit": 3, "sort": "id", "cursor": cursor}
        ),
        first,
    )
    assert second.status_code == 200, second.text
    assert [task["id"] for task in second.json()["items"]] == ids[3:6]

    # An Idempotency-Key stored by one worker is replayed by the other.
    once = call("POST", "/projects", "k1", json={"name": "Once"})
    assert once.status_code == 201
    again = answered_by_the_other_worker(
        lambda: call("POST", "/projects", "k1", json={"name": "Once"}), once
    )
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == once.json()
    assert call("GET", "/projects").json()["total"] == 1
