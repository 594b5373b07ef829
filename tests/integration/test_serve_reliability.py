"""`taskhub serve` as real processes: concurrent writers, SIGTERM, its log."""

import asyncio
import json
import re
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from entrypoints.logs import ACCESS_LOGGER
from tests.databases import direct, fresh_postgres_database, postgres_server
from tests.served import EXIT_DEADLINE, Served, environment, start, taskhub

SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _environment(database_url: str, **settings: str) -> dict[str, str]:
    """The environment of a `taskhub` command: no rate limit, `settings` on top."""
    return environment(database_url, rate_limit="", **settings)


@contextmanager
def _serving(env: dict[str, str], *logs: Path) -> Iterator[list[Served]]:
    """One server per log file on the same settings, started side by side."""
    with ExitStack() as stack:
        servers = []
        for log in logs:
            servers.append(start(env, log))
            stack.callback(servers[-1].stop)
        for served in servers:
            served.wait_until_up()
        yield servers


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    """A SQLite file that `taskhub db upgrade` has migrated."""
    database = tmp_path / "taskhub.db"
    taskhub(_environment(f"sqlite:///{database}"), "db", "upgrade")
    return database


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token.strip()}"}


def _count(counter: Counter[int]) -> str:
    return ", ".join(f"{n} x {status}" for status, n in sorted(counter.items()))


# -- Two processes writing to one SQLite file ---------------------------------


async def _create_tasks(
    served: Served, token: str, prefix: str, count: int, concurrency: int
) -> list[tuple[str, httpx.Response]]:
    """POST `count` tasks, `concurrency` at a time; each title with its answer."""
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(
        base_url=served.base_url,
        headers=_bearer(token),
        limits=httpx.Limits(max_connections=concurrency),
        timeout=30,
    ) as http:

        async def create(title: str) -> tuple[str, httpx.Response]:
            async with gate:
                return title, await http.post("/tasks", json={"title": title})

        return await asyncio.gather(*(create(f"{prefix}-{i:03}") for i in range(count)))


async def _listed(served: Served, token: str) -> tuple[int, dict[int, str]]:
    """What `GET /tasks` lists, page by page: its total, and id -> title."""
    listed: dict[int, str] = {}
    offset, total = 0, 1
    async with httpx.AsyncClient(
        base_url=served.base_url, headers=_bearer(token), timeout=30
    ) as http:
        while offset < total:
            params = {"sort": "id", "limit": 100, "offset": offset}
            page = await http.get("/tasks", params=params)
            assert page.status_code == 200, page.text
            total = page.json()["total"]
            listed |= {task["id"]: task["title"] for task in page.json()["items"]}
            offset += 100
    return total, listed


@pytest.fixture
def loader_token(sqlite_file: Path) -> str:
    """A token of a user made on the command line, before any server starts."""
    env = _environment(f"sqlite:///{sqlite_file}")
    return taskhub(env, "users", "create", "loader").stdout


async def test_two_servers_on_one_sqlite_file_store_exactly_the_tasks_they_created(
    sqlite_file: Path, loader_token: str, tmp_path: Path
) -> None:
    database, token = sqlite_file, loader_token
    # No first-user token file: neither server may make a user of its own.
    env = _environment(f"sqlite:///{database}", first_token_file="")

    with _serving(env, tmp_path / "a.log", tmp_path / "b.log") as (a, b):
        per_server = await asyncio.gather(
            _create_tasks(a, token, "a", count=100, concurrency=16),
            _create_tasks(b, token, "b", count=100, concurrency=16),
        )
        answers = [answer for answers in per_server for answer in answers]
        statuses = Counter(response.status_code for _, response in answers)
        unexpected = [
            (response.status_code, response.text)
            for _, response in answers
            if response.status_code not in (201, 503)
        ]
        assert not unexpected, (_count(statuses), unexpected[:5], a.log(), b.log())
        for _, response in answers:
            if response.status_code == 503:
                assert "retry-after" in response.headers, response.text
        created = {
            response.json()["id"]: title
            for title, response in answers
            if response.status_code == 201
        }
        assert len(created) == statuses[201], "two tasks were given one id"
        assert statuses[201] > 0, _count(statuses)

        # Both servers list every task, the other one's included.
        for served in (a, b):
            listed = await _listed(served, token)
            assert listed == (len(created), created), _count(statuses)

    with closing(sqlite3.connect(database)) as connection:
        stored = dict(connection.execute("SELECT id, title FROM tasks").fetchall())
    assert stored == created, _count(statuses)


# -- SIGTERM while a write waits for a lock ----------------------------------


@dataclass
class Lock:
    """A lock that holds up a write to the task, taken outside the server."""

    wait_until_blocked: Callable[[], Awaitable[None]]
    release: Callable[[], Awaitable[None]]
    read_title: Callable[[], Awaitable[str]]


async def _drain_on_sigterm(
    served: Served,
    token: str,
    task_id: int,
    lock: Lock,
    patched: Callable[[], Awaitable[httpx.Response]],
) -> None:
    """SIGTERM while `patched` waits for `lock`: the server finishes it, then exits."""
    in_flight = asyncio.create_task(patched())
    try:
        await lock.wait_until_blocked()
        served.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)  # the server closes its listening socket at once

        # A new request is refused, or answered in full; never cut off.
        async with httpx.AsyncClient(
            base_url=served.base_url, headers=_bearer(token), timeout=10
        ) as http:
            try:
                late = await http.get(f"/tasks/{task_id}")
            except httpx.ConnectError:
                pass
            else:
                assert late.status_code == 200, late.text

        await asyncio.sleep(0.5)
        assert not in_flight.done(), f"the write ended under the lock: {in_flight}"
        assert served.process.poll() is None, f"exited mid-request:\n{served.log()}"
    except BaseException:
        await lock.release()
        in_flight.cancel()
        with suppress(BaseException):
            await in_flight
        raise
    await lock.release()
    response = await in_flight
    assert response.status_code == 200, (response.text, served.log())
    assert response.json()["title"] == "Drained"
    assert await lock.read_title() == "Drained"

    try:
        returncode = await asyncio.to_thread(served.process.wait, EXIT_DEADLINE)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {EXIT_DEADLINE} s after SIGTERM:\n{served.log()}")
    log = served.log()
    # uvicorn re-raises the SIGTERM it caught once it has shut down, so that the
    # parent sees the signal; what tells a clean stop apart is its last log line.
    assert returncode in (0, -signal.SIGTERM), (returncode, log)
    assert "Finished server process" in log, log
    assert "Traceback" not in log, log


async def _create_task(served: Served, token: str) -> int:
    async with httpx.AsyncClient(
        base_url=served.base_url, headers=_bearer(token)
    ) as http:
        created = await http.post("/tasks", json={"title": "Before SIGTERM"})
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def _patcher(
    served: Served, token: str, task_id: int, sent: asyncio.Event
) -> Callable[[], Awaitable[httpx.Response]]:
    async def noting_sent(event: str, info: Any) -> None:
        if event == "http11.send_request_body.complete":
            sent.set()

    async def patched() -> httpx.Response:
        async with httpx.AsyncClient(
            base_url=served.base_url, headers=_bearer(token), timeout=30
        ) as http:
            return await http.patch(
                f"/tasks/{task_id}",
                json={"title": "Drained"},
                extensions={"trace": noting_sent},
            )

    return patched


@pytest.mark.postgres
async def test_sigterm_lets_a_write_blocked_on_postgresql_finish_before_exit(
    tmp_path: Path,
) -> None:
    with postgres_server() as admin, fresh_postgres_database(admin) as url:
        token_file = tmp_path / "token"
        # The lock below must not outlast the statement timeout instead.
        env = _environment(
            url, first_token_file=str(token_file), database_statement_timeout="30"
        )
        engine = create_async_engine(direct(url))
        try:
            with _serving(env, tmp_path / "serve.log") as (served,):
                token = token_file.read_text()
                task_id = await _create_task(served, token)
                async with engine.connect() as holder, engine.connect() as observer:
                    await holder.execute(
                        text("SELECT id FROM tasks WHERE id = :id FOR UPDATE"),
                        {"id": task_id},
                    )

                    async def wait_until_blocked() -> None:
                        deadline = time.monotonic() + 15
                        while time.monotonic() < deadline:
                            waiting = await observer.scalar(
                                text(
                                    "SELECT count(*) FROM pg_stat_activity "
                                    "WHERE datname = current_database() "
                                    "AND wait_event_type = 'Lock'"
                                )
                            )
                            await observer.rollback()  # a fresh snapshot each time
                            if waiting:
                                return
                            await asyncio.sleep(0.05)
                        pytest.fail(f"the PATCH never waited:\n{served.log()}")

                    async def read_title() -> str:
                        title = await observer.scalar(
                            text("SELECT title FROM tasks WHERE id = :id"),
                            {"id": task_id},
                        )
                        await observer.rollback()
                        return str(title)

                    lock = Lock(wait_until_blocked, holder.rollback, read_title)
                    patched = _patcher(served, token, task_id, asyncio.Event())
                    await _drain_on_sigterm(served, token, task_id, lock, patched)
        finally:
            await engine.dispose()


async def test_sigterm_lets_a_write_blocked_on_sqlite_finish_before_exit(
    sqlite_file: Path, tmp_path: Path
) -> None:
    database = sqlite_file
    token_file = tmp_path / "token"
    env = _environment(f"sqlite:///{database}", first_token_file=str(token_file))
    with _serving(env, tmp_path / "serve.log") as (served,):
        token = token_file.read_text()
        task_id = await _create_task(served, token)
        sent = asyncio.Event()
        with closing(sqlite3.connect(database, isolation_level=None)) as holder:
            # The server waits out a write lock for its busy_timeout (5 s), so
            # the whole dance below stays well under that.
            holder.execute("BEGIN IMMEDIATE")

            async def wait_until_blocked() -> None:
                await asyncio.wait_for(sent.wait(), timeout=15)
                # SQLite shows no waiters: give the server time to take the
                # request in; it cannot answer before the lock is released.
                await asyncio.sleep(0.3)

            async def release() -> None:
                holder.execute("ROLLBACK")

            async def read_title() -> str:
                row = holder.execute(
                    "SELECT title FROM tasks WHERE id = ?", (task_id,)
                ).fetchone()
                return str(row[0])

            lock = Lock(wait_until_blocked, release, read_title)
            patched = _patcher(served, token, task_id, sent)
            await _drain_on_sigterm(served, token, task_id, lock, patched)


# -- X-Request-ID --------------------------------------------------------------


def _access_lines(
    log: str, request_id: str, route: str, status: int
) -> list[dict[str, Any]]:
    """The JSON access lines (stderr is no terminal) of one request id."""
    lines = [json.loads(line) for line in log.splitlines() if ACCESS_LOGGER in line]
    return [
        line
        for line in lines
        if (line["request_id"], line["route"], line["status"])
        == (request_id, route, status)
    ]


async def test_a_request_id_is_echoed_in_headers_and_problems_and_logged(
    sqlite_file: Path, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    env = _environment(f"sqlite:///{sqlite_file}", first_token_file=str(token_file))
    with _serving(env, tmp_path / "serve.log") as (served,):
        async with httpx.AsyncClient(
            base_url=served.base_url, headers=_bearer(token_file.read_text())
        ) as http:

            async def get(
                path: str, request_id: str | bytes | None, **headers: str
            ) -> httpx.Response:
                sent = {} if request_id is None else {"X-Request-ID": request_id}
                return await http.get(path, headers={**sent, **headers})

            ours = "test-abc.123"
            listing = await get("/tasks", ours)
            assert listing.status_code == 200
            assert listing.headers["x-request-id"] == ours
            missing = await get("/tasks/999999", ours)
            assert missing.status_code == 404
            assert missing.headers["x-request-id"] == ours
            assert missing.json()["request_id"] == ours
            refused = await get("/tasks", "refused-1", Authorization="Bearer nope")
            assert refused.status_code == 401
            assert refused.json()["request_id"] == "refused-1"

            for kept in ("a" * 128, "trace_1:2-3.4"):
                echoed = (await get("/tasks", kept)).headers["x-request-id"]
                assert echoed == kept

            replaced: list[str] = []
            for unsafe in (b"a" * 129, b"has space", "caf\u00e9".encode(), b""):
                response = await get("/tasks/999999", unsafe)
                echoed = response.headers["x-request-id"]
                assert SAFE_REQUEST_ID.fullmatch(echoed), (unsafe, echoed)
                assert echoed.encode() != unsafe
                assert response.json()["request_id"] == echoed
                replaced.append(echoed)

            generated = [
                (await get("/tasks", None)).headers["x-request-id"] for _ in range(2)
            ]
            assert all(SAFE_REQUEST_ID.fullmatch(g) for g in generated), generated
            assert generated[0] != generated[1]
            assert len(set(replaced + generated)) == len(replaced + generated)

    log = served.log()
    assert _access_lines(log, ours, "/tasks", 200), log
    assert _access_lines(log, ours, "/tasks/{task_id}", 404), log
    assert _access_lines(log, "refused-1", "/tasks", 401), log
    for echoed in replaced:
        assert _access_lines(log, echoed, "/tasks/{task_id}", 404), log
    for echoed in generated:
        assert _access_lines(log, echoed, "/tasks", 200), log
