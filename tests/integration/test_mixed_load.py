"""A bounded mixed load on `taskhub serve --workers 2` over PostgreSQL, after which
every row is accounted for: no 5xx, no duplicate from a retried create, no lost
update.

The load is a fixed number of operations, not a duration, so it asks the same of
the service on a fast machine and a slow one; only the time it takes differs.
"""

import asyncio
import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from domain.values import Priority
from tests.databases import direct, fresh_postgres_database, postgres_server
from tests.served import (
    STARTUP_DEADLINE,
    Served,
    environment,
    log_problems,
    serve,
    taskhub,
)

WORKERS = 2

HOT_TASKS = 4  # the tasks every writer fights over
CREATE_KEYS = 150
CREATORS = 8
INCREMENTERS = 8
INCREMENTS_EACH = 25
BLIND_FIELDS = ("priority", "due_date", "done")
BLIND_WRITERS = 6  # between them they own each (hot task, field) pair once
BLIND_WRITES_EACH = 40
READERS = 4
READS_EACH = 60

# A writer that needs more tries than this is starved, which is a failure too.
MAX_TRIES = 200
# A retry keeps meeting "in progress" only while the first request runs, which
# the statement and pool timeouts (5 s each) bound well below this.
IN_PROGRESS_PATIENCE = 30.0
IN_PROGRESS_PAUSE = 0.02  # shorter than Retry-After, to race the first request
PRIORITIES = [p.value for p in Priority]
FAR_DATE = date(2030, 1, 1)


@dataclass(frozen=True)
class Server:
    base_url: str
    token: str
    database_url: str
    log: Path
    pid: int

    def worker_cpu_seconds(self) -> list[float]:
        """CPU seconds each worker process has used so far, where /proc tells."""
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        if not children.exists():
            return []
        seconds = []
        for child in children.read_text().split():
            try:
                if b"spawn_main" not in Path(f"/proc/{child}/cmdline").read_bytes():
                    continue  # not a worker (multiprocessing's resource tracker)
                stat = Path(f"/proc/{child}/stat").read_text()
            except OSError:  # it has just exited
                continue
            # The fields after the command's name start at the 3rd, state; the
            # 14th and 15th are user and system time, in clock ticks.
            after_name = stat.rsplit(")", 1)[1].split()
            ticks = int(after_name[11]) + int(after_name[12])
            seconds.append(ticks / os.sysconf("SC_CLK_TCK"))
        return seconds

    def problems(self, lines: int = 60) -> str:
        """The end of the server's log, without the access log's line per request."""
        return "\n".join(log_problems(self.log).splitlines()[-lines:])


def _wait_until_every_worker_serves(served: Served, token_file: Path) -> None:
    """Until every worker has started and the first user's token is written: one
    worker answering is not enough."""
    deadline = time.monotonic() + STARTUP_DEADLINE
    while True:
        log = served.log()
        started = log.count("Application startup complete")
        if started >= WORKERS and token_file.exists() and token_file.read_text():
            return
        if served.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"taskhub serve did not start:\n{log}")
        time.sleep(0.1)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """`taskhub serve` with two worker processes on a fresh PostgreSQL database."""
    with (
        postgres_server() as admin_url,
        fresh_postgres_database(admin_url, migrated=False) as database_url,
    ):
        token_file = tmp_path / "token"
        env = environment(database_url, first_token_file=str(token_file), rate_limit="")
        taskhub(env, "db", "upgrade")
        log = tmp_path / "serve.log"
        with serve(env, log, "--workers", str(WORKERS)) as served:
            _wait_until_every_worker_serves(served, token_file)
            token = token_file.read_text().strip()
            yield Server(served.base_url, token, database_url, log, served.process.pid)


@dataclass
class Load:
    """Every answer the load got, and what the writers know they did."""

    server: Server
    statuses: Counter[int] = field(default_factory=Counter)
    in_progress_without_retry_after: int = 0
    # Idempotency key -> the final (non-409) answers to each of its POSTs.
    created: dict[str, list[httpx.Response]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # Hot task id -> increments that got 200; If-Match attempts that got 412.
    increments: Counter[int] = field(default_factory=Counter)
    stale: int = 0
    # Hot task id -> blind PATCHes that got 200.
    blind_writes: Counter[int] = field(default_factory=Counter)
    # Hot task id -> the version in each 200 PATCH answer.
    patched_versions: dict[int, list[int]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # (hot task id, field) -> the value its one writer wrote last.
    last_written: dict[tuple[int, str], Any] = field(default_factory=dict)
    reads: int = 0

    def client(self, *, keepalive: bool = True) -> httpx.AsyncClient:
        # Without keep-alive, each request is a new connection, which either
        # worker may accept: a retry then often reaches the other process.
        limits = httpx.Limits(max_keepalive_connections=None if keepalive else 0)
        return httpx.AsyncClient(
            base_url=self.server.base_url,
            headers={"Authorization": f"Bearer {self.server.token}"},
            limits=limits,
            timeout=30,
        )

    async def send(
        self, http: httpx.AsyncClient, method: str, url: str, *expected: int, **kw: Any
    ) -> httpx.Response:
        response = await http.request(method, url, **kw)
        self.statuses[response.status_code] += 1
        assert response.status_code in expected, (
            f"{method} {url}: {response.status_code} {response.text}"
        )
        return response

    def histogram(self) -> str:
        return ", ".join(f"{n} x {s}" for s, n in sorted(self.statuses.items()))


def _version(response: httpx.Response) -> int:
    etag = response.headers["ETag"]
    assert etag.startswith('"'), etag
    assert etag.endswith('"'), etag
    return int(etag.strip('"'))


# -- The four kinds of client -----------------------------------------------


async def _create(load: Load, http: httpx.AsyncClient, key: str, body: Any) -> None:
    """POST until the answer is not "still in progress", as a patient client does."""
    deadline = time.monotonic() + IN_PROGRESS_PATIENCE
    while time.monotonic() < deadline:
        response = await load.send(
            http,
            "POST",
            "/tasks",
            201,
            409,
            json=body,
            headers={"Idempotency-Key": key},
        )
        if response.status_code == 201:
            load.created[key].append(response)
            return
        if "Retry-After" not in response.headers:
            load.in_progress_without_retry_after += 1
        await asyncio.sleep(IN_PROGRESS_PAUSE)
    raise AssertionError(f"{key} was still in progress after {IN_PROGRESS_PATIENCE} s")


async def _creator(load: Load, keys: list[str], rng: random.Random) -> None:
    """Each key two or three times: side by side, after the first answered (a
    client whose response was lost), or both."""
    async with load.client(keepalive=False) as http:
        for key in keys:
            body = {
                "title": f"created {key}",
                "description": f"made with the key {key}",
                "priority": rng.choice(PRIORITIES),
                "due_date": (FAR_DATE + timedelta(days=rng.randrange(365))).isoformat(),
            }
            shape = rng.choice(["side by side", "retried", "both"])
            if shape == "side by side":
                copies = rng.choice([2, 3])
                await asyncio.gather(
                    *(_create(load, http, key, body) for _ in range(copies))
                )
            elif shape == "retried":
                for _ in range(rng.choice([2, 3])):
                    await _create(load, http, key, body)
            else:
                await asyncio.gather(*(_create(load, http, key, body) for _ in "ab"))
                await _create(load, http, key, body)


async def _incrementer(load: Load, hot: list[int], rng: random.Random) -> None:
    """Read-modify-write of the counter in a hot task's description, with If-Match."""
    async with load.client() as http:
        for _ in range(INCREMENTS_EACH):
            task_id = rng.choice(hot)
            for _ in range(MAX_TRIES):
                read = await load.send(http, "GET", f"/tasks/{task_id}", 200)
                count = int(read.json()["description"])
                written = await load.send(
                    http,
                    "PATCH",
                    f"/tasks/{task_id}",
                    200,
                    412,
                    json={"description": str(count + 1)},
                    headers={"If-Match": read.headers["ETag"]},
                )
                if written.status_code == 412:
                    load.stale += 1
                    continue
                task = written.json()
                assert task["description"] == str(count + 1)
                assert task["version"] == _version(read) + 1 == _version(written)
                load.increments[task_id] += 1
                load.patched_versions[task_id].append(task["version"])
                break
            else:
                raise AssertionError(f"no increment of {task_id} in {MAX_TRIES} tries")


def _next_value(name: str, last: Any, n: int) -> Any:
    """A value unlike `last`, so that every blind PATCH is a real change."""
    if name == "priority":
        return PRIORITIES[(PRIORITIES.index(last) + 1) % len(PRIORITIES)]
    if name == "due_date":
        return (FAR_DATE + timedelta(days=n)).isoformat()
    return not last


async def _blind_writer(load: Load, pairs: list[tuple[int, str]]) -> None:
    """PATCH one field of a hot task without If-Match; this client is the only
    writer of each of its (task, field) pairs, so it knows their current value."""
    seen: dict[int, int] = {}
    async with load.client() as http:
        for n in range(BLIND_WRITES_EACH):
            task_id, name = pairs[n % len(pairs)]
            value = _next_value(name, load.last_written[task_id, name], n)
            written = await load.send(
                http, "PATCH", f"/tasks/{task_id}", 200, json={name: value}
            )
            task = written.json()
            assert task[name] == value
            assert task["version"] > seen.get(task_id, 1)
            seen[task_id] = task["version"]
            load.last_written[task_id, name] = value
            load.blind_writes[task_id] += 1
            load.patched_versions[task_id].append(task["version"])


async def _reader(load: Load, hot: list[int], rng: random.Random) -> None:
    """GETs and lists. Nothing is deleted and each request starts after the last
    one answered, so what one client sees never goes back in time, whichever
    worker answers."""
    etags: dict[int, str] = {}
    versions: dict[int, int] = {}
    total = 0
    async with load.client() as http:
        for _ in range(READS_EACH):
            load.reads += 1
            if rng.random() < 0.5:
                task_id = rng.choice(hot)
                headers = {"If-None-Match": etags[task_id]} if task_id in etags else {}
                read = await load.send(
                    http, "GET", f"/tasks/{task_id}", 200, 304, headers=headers
                )
                if read.status_code == 304:
                    assert read.headers["ETag"] == etags[task_id]
                assert _version(read) >= versions.get(task_id, 1)
                etags[task_id], versions[task_id] = read.headers["ETag"], _version(read)
                continue
            params: dict[str, Any] = {
                "limit": 100,
                "sort": rng.choice(["-created_at", "title", "-updated_at"]),
            }
            if rng.random() < 0.3:
                params["done"] = rng.choice(["true", "false"])
            listing = await load.send(http, "GET", "/tasks", 200, params=params)
            if "done" not in params:
                assert listing.json()["total"] >= total
                total = listing.json()["total"]
            assert total <= HOT_TASKS + CREATE_KEYS


# -- What is there afterwards -----------------------------------------------


async def _all_tasks(load: Load) -> dict[int, Any]:
    """Every task, as `GET /tasks` lists them page by page."""
    listed: dict[int, Any] = {}
    async with load.client() as http:
        offset, total = 0, 1
        while offset < total:
            params = {"sort": "id", "limit": 100, "offset": offset}
            page = (await load.send(http, "GET", "/tasks", 200, params=params)).json()
            listed |= {task["id"]: task for task in page["items"]}
            total, offset = page["total"], offset + 100
    return listed


async def _rows(database_url: str) -> tuple[list[Any], list[Any]]:
    """The tasks and idempotency keys, straight from the database."""
    engine = create_async_engine(direct(database_url))
    try:
        async with engine.connect() as connection:
            tasks = await connection.execute(
                text(
                    "SELECT id, title, description, priority, due_date, done, version "
                    "FROM tasks"
                )
            )
            keys = await connection.execute(
                text("SELECT key, response_status FROM idempotency_keys")
            )
            return list(tasks.mappings()), list(keys.mappings())
    finally:
        await engine.dispose()


def _check_creates(load: Load, keys: list[str], tasks: dict[int, Any]) -> None:
    assert sorted(load.created) == sorted(keys)
    created_ids = set()
    for key, answers in load.created.items():
        first = [a for a in answers if a.headers.get("Idempotent-Replayed") != "true"]
        assert len(first) == 1, f"{key} was carried out {len(first)} times"
        original = first[0]
        for answer in answers:
            assert answer.content == original.content, key
            assert answer.headers["Location"] == original.headers["Location"], key
            assert answer.headers["ETag"] == original.headers["ETag"], key
        task = original.json()
        assert task["title"] == f"created {key}"
        assert tasks[task["id"]] == task  # never changed since it was created
        created_ids.add(task["id"])
    assert len(created_ids) == len(keys)


def _check_hot_task(load: Load, task: Any) -> None:
    task_id = task["id"]
    assert int(task["description"]) == load.increments[task_id], "lost increment"
    for name in BLIND_FIELDS:
        assert task[name] == load.last_written[task_id, name], f"lost {name}"
    # Every 200 PATCH changed something, so each one made exactly one version.
    changes = load.increments[task_id] + load.blind_writes[task_id]
    assert task["version"] == 1 + changes
    assert sorted(load.patched_versions[task_id]) == list(range(2, 2 + changes))


# -- The test -----------------------------------------------------------------


@pytest.mark.postgres
async def test_two_workers_under_mixed_load_account_for_every_row(
    server: Server,
) -> None:
    load = Load(server)
    rng = random.Random(20240601)
    async with load.client() as http:
        hot = []
        for i in range(HOT_TASKS):
            body = {"title": f"hot {i}", "description": "0"}
            hot.append((await load.send(http, "POST", "/tasks", 201, json=body)).json())
    hot_ids = [task["id"] for task in hot]
    for task in hot:
        for name in BLIND_FIELDS:
            load.last_written[task["id"], name] = task[name]
    pairs = [(task_id, name) for task_id in hot_ids for name in BLIND_FIELDS]
    keys = [f"mixed-load-{n:04}" for n in range(CREATE_KEYS)]

    cpu_before = server.worker_cpu_seconds()
    started = time.monotonic()
    try:
        async with asyncio.TaskGroup() as group:
            for i in range(CREATORS):
                group.create_task(
                    _creator(load, keys[i::CREATORS], random.Random(rng.random()))
                )
            for _ in range(INCREMENTERS):
                group.create_task(
                    _incrementer(load, hot_ids, random.Random(rng.random()))
                )
            for i in range(BLIND_WRITERS):
                group.create_task(_blind_writer(load, pairs[i::BLIND_WRITERS]))
            for _ in range(READERS):
                group.create_task(_reader(load, hot_ids, random.Random(rng.random())))
    except BaseException:
        print(f"The server's log ends:\n{server.problems()}")
        raise
    finally:
        elapsed = time.monotonic() - started
        requests = sum(load.statuses.values())
        print(
            f"\nmixed load on {WORKERS} workers: {requests} requests in "
            f"{elapsed:.1f} s ({requests / elapsed:.0f}/s); "
            f"{CREATE_KEYS} keys in {sum(map(len, load.created.values()))} creates, "
            f"{load.increments.total()} increments ({load.stale} stale tries), "
            f"{load.blind_writes.total()} blind writes, {load.reads} reads; "
            f"statuses: {load.histogram()}"
        )
        cpu_after = server.worker_cpu_seconds()
        if len(cpu_after) == len(cpu_before):
            used = [f"{a - b:.1f}" for a, b in zip(cpu_after, cpu_before, strict=True)]
            print(f"CPU seconds per worker during the load: {', '.join(used)}")

    assert not [s for s in load.statuses if s >= 500], load.histogram()
    assert load.in_progress_without_retry_after == 0
    assert load.increments.total() == INCREMENTERS * INCREMENTS_EACH
    assert load.blind_writes.total() == BLIND_WRITERS * BLIND_WRITES_EACH

    listed = await _all_tasks(load)
    assert len(listed) == CREATE_KEYS + HOT_TASKS
    assert len({task["title"] for task in listed.values()}) == len(listed)
    _check_creates(load, keys, listed)
    for task_id in hot_ids:
        _check_hot_task(load, listed[task_id])

    # The database holds what the API lists, and nothing more.
    rows, key_rows = await _rows(server.database_url)
    assert len(rows) == len(listed)
    for row in rows:
        task = listed[row["id"]]
        assert row["title"] == task["title"]
        assert row["description"] == task["description"]
        assert row["priority"] == Priority(task["priority"]).rank
        due = task["due_date"]
        assert row["due_date"] == (due and date.fromisoformat(due))
        assert row["done"] == task["done"]
        assert row["version"] == task["version"]
    assert sorted(row["key"] for row in key_rows) == sorted(keys)
    assert {row["response_status"] for row in key_rows} == {201}
