"""Two `taskhub serve` instances on one PostgreSQL database, straight or through
a PgBouncer in transaction mode: how many server connections they hold, and
what they serve, under a short Python-driven load. The numbers in
docs/scaling.md come from this script.

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/scaling.py [--seconds 8] [--clients 32]

It reuses the test helpers (a fresh database, `taskhub serve` subprocesses,
a PgBouncer of its own) and drops everything it made.
"""

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.databases import fresh_postgres_database
from tests.pgbouncer import POOLER, pgbouncer
from tests.served import environment, serve, taskhub

TASKS = 200


async def _load(
    bases: list[str], token: str, seconds: float, clients: int
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(headers=headers, timeout=30) as http:
        ids = []
        for n in range(TASKS):
            created = await http.post(f"{bases[n % 2]}/tasks", json={"title": f"t{n}"})
            ids.append(created.json()["id"])
        deadline = time.monotonic() + seconds

        async def client(n: int) -> None:
            nonlocal errors
            rng = random.Random(n)
            base = bases[n % len(bases)]
            while time.monotonic() < deadline:
                pick = rng.random()
                task = f"{base}/tasks/{rng.choice(ids)}"
                started = time.perf_counter()
                if pick < 0.7:
                    answer = await http.get(task)
                elif pick < 0.9:
                    answer = await http.get(f"{base}/tasks", params={"limit": 20})
                else:
                    answer = await http.patch(task, json={"title": f"x{rng.random()}"})
                latencies.append(time.perf_counter() - started)
                errors += answer.status_code >= 500

        started = time.monotonic()
        await asyncio.gather(*(client(n) for n in range(clients)))
        elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "req_per_s": round(len(latencies) / elapsed),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
        "5xx": errors,
    }


async def _peak_connections(direct_url: str, stop: asyncio.Event) -> int:
    """The most backends connected to the database at once, sampled."""
    database = direct_url.rsplit("/", 1)[1]
    dsn = direct_url.replace("postgresql+asyncpg", "postgresql")
    connection = await asyncpg.connect(dsn.rsplit("/", 1)[0] + "/postgres")
    peak = 0
    try:
        while not stop.is_set():
            count = await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", database
            )
            peak = max(peak, count)
            await asyncio.sleep(0.1)
    finally:
        await connection.close()
    return peak


async def _measure(
    bases: list[str], token: str, direct_url: str, seconds: float, clients: int
) -> dict[str, Any]:
    stop = asyncio.Event()
    sampler = asyncio.create_task(_peak_connections(direct_url, stop))
    result = await _load(bases, token, seconds, clients)
    stop.set()
    result["peak_server_connections"] = await sampler
    return result


def run(
    server: str, seconds: float, clients: int, pool_size: int, bouncer_pool: int
) -> list[dict[str, Any]]:
    results = []
    for through in ("direct", "pgbouncer"):
        with ExitStack() as stack:
            direct_url = stack.enter_context(fresh_postgres_database(server))
            url, settings = direct_url, {}
            if through == "pgbouncer":
                bouncer = stack.enter_context(
                    pgbouncer(direct_url, pool_size=bouncer_pool)
                )
                url, settings = bouncer.url_for(direct_url), {"database_pooler": POOLER}
            env = environment(
                url,
                first_token_file="",
                rate_limit="",
                log_level="warning",
                database_pool_size=str(pool_size),
                **settings,
            )
            token = taskhub(env, "users", "create", "bench").stdout.strip()
            logs = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            bases = [
                stack.enter_context(serve(env, logs / f"{n}.log")).base_url
                for n in range(2)
            ]
            result = asyncio.run(_measure(bases, token, direct_url, seconds, clients))
            results.append(
                {
                    "through": through,
                    "instances": 2,
                    "pool_size_per_instance": pool_size,
                    "pgbouncer_default_pool_size": (
                        bouncer_pool if through == "pgbouncer" else None
                    ),
                    "clients": clients,
                    "seconds": seconds,
                    **result,
                }
            )
    return results


async def _unit_latency(url: str, pooler: str, units: int) -> dict[str, Any]:
    """Median time of one read-only and one writing unit of work, in sequence:
    what the pooler setting costs per unit, away from HTTP."""
    import sqlalchemy as sa

    from entrypoints.container import build_container
    from entrypoints.settings import Settings

    container = build_container(
        Settings(database_url=url, database_pooler=pooler, database_pool_size=1)
    )
    reads, writes = [], []
    statement = sa.select(sa.func.count()).select_from(sa.text("users"))
    try:
        for _ in range(units):
            started = time.perf_counter()
            async with container.read_session_factory()() as session:
                await session.execute(statement)
            reads.append(time.perf_counter() - started)
            started = time.perf_counter()
            async with container.session_factory()() as session:
                await session.execute(sa.text("UPDATE users SET name = name"))
                await session.commit()
            writes.append(time.perf_counter() - started)
    finally:
        await container.engine().dispose()
    return {
        "read_unit_ms": round(statistics.median(reads) * 1000, 2),
        "write_unit_ms": round(statistics.median(writes) * 1000, 2),
    }


def units(server: str, count: int, bouncer_pool: int) -> list[dict[str, Any]]:
    results = []
    with ExitStack() as stack:
        direct_url = stack.enter_context(fresh_postgres_database(server))
        bouncer = stack.enter_context(pgbouncer(direct_url, pool_size=bouncer_pool))
        for through, url, pooler in (
            ("direct", direct_url, "none"),
            ("direct", direct_url, POOLER),
            ("pgbouncer", bouncer.url_for(direct_url), POOLER),
        ):
            result = asyncio.run(_unit_latency(url, pooler, count))
            results.append({"through": through, "pooler": pooler, **result})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--bouncer-pool", type=int, default=4)
    parser.add_argument(
        "--units", type=int, default=0, help="time N units of work in sequence instead"
    )
    args = parser.parse_args()
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        sys.exit("Set TEST_DATABASE_URL to a PostgreSQL server (admin URL).")
    server = server.replace("postgresql://", "postgresql+asyncpg://", 1)
    if args.units:
        for result in units(server, args.units, args.bouncer_pool):
            print(json.dumps(result))
        return
    for result in run(
        server, args.seconds, args.clients, args.pool_size, args.bouncer_pool
    ):
        print(json.dumps(result))


if __name__ == "__main__":
    main()
