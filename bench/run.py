#!/usr/bin/env python3
"""taskhub's benchmark: taskhub and its yardsticks under wrk, side by side.

Starts each server as one uvicorn worker pinned to core 0 (`taskset -c 0`), seeds
the same number of tasks into each, and drives every scenario with wrk pinned to
core 1, interleaved (for each round, for each scenario, for each server) so that
noise from the machine spreads over all servers alike. Prints a table per
database and table size, and writes everything to a JSON file and a PNG chart.

Not a test: nothing here asserts a time. `--smoke` only checks that the harness
works (every scenario served requests, without errors).

Standard library only; matplotlib, when importable, draws the chart. See
bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
WRK_DIR = BENCH / "wrk"
DEFAULT_PEERS = ROOT.parent / "shared" / "bench-peers"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"

SERVER_CORE = "0"
LOAD_CORE = "1"
PAGE = 20
# Rate limits on, counted for every request, but far above what one worker can
# serve, so nothing is refused: the cost of counting is what gets measured.
PROD_RATE_LIMIT = "10000000/minute"
LOCAL_USER = "local"  # the implicit user of TASKHUB_AUTH=disabled

# scenario -> its wrk script in bench/wrk/
SCENARIOS: dict[str, str] = {
    "get_one": "get_one.lua",
    "list_first": "path.lua",
    "list_deep": "path.lua",
    "list_cursor": "path.lua",
    "search": "path.lua",
    "create": "create.lua",
    "patch": "patch.lua",
}
TASKHUB_ONLY = {"list_cursor", "search"}
TASKHUB = "taskhub"
TASKHUB_PROD = "taskhub-prod"
TUTORIAL = "seed_tutorial"
FLOOR = "floor"
PEERS = (TUTORIAL, FLOOR)


class Interrupted(Exception):
    """SIGTERM, turned into an exception so every clean-up below runs."""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- setup


@dataclass
class Config:
    dbs: list[str]
    sizes: list[int]
    scenarios: list[str]
    peers: bool
    duration: float
    warmup: float
    rounds: int
    connections: int
    timeout: int
    out: Path
    smoke: bool
    pg_url: str
    peers_dir: Path
    taskhub_bin: Path
    peers_python: Path | None
    keep_logs: bool
    seed: int


def parse_args(argv: list[str] | None = None) -> Config:
    p = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Benchmark taskhub against its yardsticks with wrk.",
    )
    p.add_argument(
        "--db", default="sqlite,postgres", help="sqlite,postgres (default both)"
    )
    p.add_argument(
        "--sizes", default="10000", help="tasks seeded per server, comma separated"
    )
    p.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma separated, from {','.join(SCENARIOS)} (default all)",
    )
    p.add_argument(
        "--peers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the yardsticks (default on)",
    )
    p.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    p.add_argument(
        "--warmup",
        type=float,
        default=2,
        help="seconds of unrecorded load per scenario and server first",
    )
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections")
    p.add_argument(
        "--timeout", type=int, default=10, help="wrk request timeout, seconds"
    )
    p.add_argument(
        "--out", type=Path, help="JSON file (default bench/results/<time>.json)"
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="seconds-long harness check: SQLite, taskhub only, tiny seed; "
        "fails unless every scenario served requests without errors",
    )
    p.add_argument("--peers-dir", type=Path, default=DEFAULT_PEERS)
    p.add_argument(
        "--taskhub",
        type=Path,
        default=ROOT / ".venv" / "bin" / "taskhub",
        help="the taskhub command (default .venv/bin/taskhub)",
    )
    p.add_argument(
        "--peers-python",
        type=Path,
        help="python with the yardsticks' requirements (default: this one)",
    )
    p.add_argument("--keep-logs", action="store_true", help="keep the servers' logs")
    p.add_argument("--seed", type=int, default=1, help="seed of the generated tasks")
    a = p.parse_args(argv)

    if a.smoke:
        a.db, a.sizes, a.peers = "sqlite", "200", False
        a.duration, a.warmup, a.rounds, a.connections = 1, 0, 1, 4
    dbs = [d.strip() for d in a.db.split(",") if d.strip()]
    for d in dbs:
        if d not in ("sqlite", "postgres"):
            p.error(f"--db: unknown database {d!r}")
    scenarios = [s.strip() for s in a.scenarios.split(",") if s.strip()]
    for s in scenarios:
        if s not in SCENARIOS:
            p.error(f"--scenarios: unknown scenario {s!r}")
    sizes = [int(s.replace("_", "")) for s in a.sizes.split(",") if s.strip()]
    if any(s < 2 * PAGE for s in sizes):
        p.error(f"--sizes: at least {2 * PAGE} tasks")
    if a.out is None:
        if a.smoke:
            a.out = Path(tempfile.mkdtemp(prefix="taskhub-bench-smoke-")) / "smoke.json"
        else:
            a.out = BENCH / "results" / time.strftime("%Y%m%d-%H%M%S.json")
    return Config(
        dbs=dbs,
        sizes=sizes,
        scenarios=scenarios,
        peers=a.peers,
        duration=a.duration,
        warmup=a.warmup,
        rounds=a.rounds,
        connections=a.connections,
        timeout=a.timeout,
        out=a.out,
        smoke=a.smoke,
        pg_url=os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG),
        peers_dir=a.peers_dir.resolve(),
        # absolute(), not resolve(): a venv's python is a symlink to the system's.
        taskhub_bin=a.taskhub.absolute(),
        peers_python=(a.peers_python or Path(sys.executable)).absolute(),
        keep_logs=a.keep_logs,
        seed=a.seed,
    )


def preflight(cfg: Config) -> None:
    """Fail early, saying what to install, rather than halfway through a run."""
    problems = []
    if shutil.which("wrk") is None:
        problems.append("wrk is missing: apt-get install wrk")
    if shutil.which("taskset") is None:
        problems.append("taskset is missing: apt-get install util-linux")
    if "postgres" in cfg.dbs and shutil.which("psql") is None:
        problems.append(
            "psql is missing (PostgreSQL runs): apt-get install postgresql-client"
        )
    if not cfg.taskhub_bin.exists():
        problems.append(f"{cfg.taskhub_bin} is missing: make install")
    elif subprocess.run(
        [str(cfg.taskhub_bin), "tasks", "load", "--help"], capture_output=True
    ).returncode:
        problems.append(f"{cfg.taskhub_bin} has no `tasks load` to seed with")
    if cfg.peers:
        if not (cfg.peers_dir / "floor" / "app.py").exists():
            problems.append(
                f"no yardsticks at {cfg.peers_dir} (--peers-dir, or --no-peers)"
            )
        probe = subprocess.run(
            [
                str(cfg.peers_python),
                "-c",
                "import fastapi, uvicorn, sqlalchemy, orjson, asyncpg",
            ],
            capture_output=True,
        )
        if probe.returncode != 0:
            problems.append(
                f"{cfg.peers_python} lacks the yardsticks' requirements "
                "(make bench builds .bench-venv with them; or --no-peers)"
            )
    if (os.cpu_count() or 1) < 2:
        problems.append("needs 2 cores: the server on core 0, wrk on core 1")
    if problems:
        raise SystemExit("bench: cannot run:\n  " + "\n  ".join(problems))
    if "postgres" in cfg.dbs:
        free = int(
            psql(
                cfg.pg_url,
                "SELECT current_setting('max_connections')::int - count(*) "
                "FROM pg_stat_activity",
                fetch=True,
            )
        )
        # Pools at their fullest: taskhub 2 x (10 + 10 overflow), seed_tutorial
        # 5 + 10, floor 16, and a psql.
        needed = 40 + (31 if cfg.peers else 0) + 1
        if free < needed:
            log(
                f"warning: PostgreSQL has {free} free connections, the servers may "
                f"open {needed}: expect 'too many clients' 503s (max_connections)"
            )


# --------------------------------------------------------------------------- databases


def psql(url: str, sql: str, *, fetch: bool = False) -> str:
    result = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", url, "-c", sql],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"psql failed: {sql[:80]}...\n{result.stderr.strip()}")
    return result.stdout.strip() if fetch else ""


def redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(
        netloc=parts.netloc.replace(":" + parts.password + "@", ":***@")
    ).geturl()


def with_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def with_driver(url: str, driver: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme.split('+')[0]}+{driver}://{rest}"


@dataclass
class Databases:
    """One database per server family, made for this run and removed after it."""

    kind: str
    workdir: Path
    pg_url: str
    suffix: str = field(default_factory=lambda: secrets.token_hex(3))
    created: list[str] = field(default_factory=list)

    def url(self, family: str) -> str:
        """A plain URL (no driver) for `family`: taskhub, seed, floor."""
        if self.kind == "sqlite":
            return f"sqlite:///{self.workdir / (family + '.db')}"
        name = f"bench_{family}_{self.suffix}"
        if name not in self.created:
            psql(self.pg_url, f'CREATE DATABASE "{name}"')
            self.created.append(name)
        return with_database(self.pg_url, name)

    def clone(self, family: str, into: str) -> str:
        """A copy of `family`'s database, as `into`; its plain URL."""
        source = self.url(family)
        if self.kind == "sqlite":
            target = self.workdir / (into + ".db")
            with (
                contextlib.closing(sqlite3.connect(source.split(":///", 1)[1])) as src,
                contextlib.closing(sqlite3.connect(target)) as dst,
            ):
                src.backup(dst)
            return f"sqlite:///{target}"
        name = f"bench_{into}_{self.suffix}"
        psql(
            self.pg_url,
            f'CREATE DATABASE "{name}" TEMPLATE "bench_{family}_{self.suffix}"',
        )
        self.created.append(name)
        return with_database(self.pg_url, name)

    def drop(self) -> None:
        for name in reversed(self.created):
            try:
                psql(self.pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except RuntimeError as error:
                log(f"could not drop {name}: {error}")
        self.created.clear()


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(
    method: str,
    url: str,
    body: Any = None,
    token: str | None = None,
    timeout: float = 30,
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw)
        except ValueError:
            return error.code, raw.decode(errors="replace")


@dataclass
class Server:
    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    ready_path: str
    logfile: Path
    token: str | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        argv = [
            "taskset",
            "-c",
            SERVER_CORE,
            *[a.format(port=self.port) for a in self.argv],
        ]
        env = {**os.environ, **self.env}
        with open(self.logfile, "ab") as out:
            # A session of its own: Ctrl-C reaches run.py, which stops it in order.
            self.process = subprocess.Popen(
                argv,
                cwd=self.cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited at start-up:\n{self.log_tail()}"
                )
            try:
                status, _ = http(
                    "GET", self.base + self.ready_path, token=self.token, timeout=2
                )
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(
            f"{self.name} was not ready in {timeout:.0f} s:\n{self.log_tail()}"
        )

    def worker_pid(self) -> int:
        """The serving process: the deepest descendant, should uvicorn ever fork."""
        assert self.process is not None
        pid = self.process.pid
        while True:
            children = _children(pid)
            if not children:
                return pid
            pid = children[0]

    def wait_idle(self, limit: float = 10) -> float:
        """Wait until the worker stops working off the last run's requests (the
        ones wrk gave up on at the end), so they do not eat into the next run."""
        started = time.monotonic()
        pid = self.worker_pid()
        ticks = _cpu_ticks(pid)
        while time.monotonic() - started < limit:
            time.sleep(0.2)
            now = _cpu_ticks(pid)
            if now - ticks <= 2:  # under 10 % of a core
                break
            ticks = now
        return time.monotonic() - started

    def memory(self) -> dict[str, int]:
        """VmHWM (peak resident set) and VmRSS of the worker, in KiB."""
        pid = self.worker_pid()
        found = {"pid": pid}
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    found[key] = int(value.split()[0])
        return found

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(
                self.logfile.read_text(errors="replace").splitlines()[-lines:]
            )
        except OSError:
            return "(no log)"


def _cpu_ticks(pid: int) -> int:
    """User and system time of `pid`, in clock ticks (1/100 s)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


# --------------------------------------------------------------------------- seeding


def load_tasks(cfg: Config, env: dict[str, str], count: int) -> None:
    """generate_tasks.py | taskhub tasks load --user local -"""
    generate = subprocess.Popen(
        [
            *(str(cfg.taskhub_bin.parent / "python"), str(BENCH / "generate_tasks.py")),
            *("--count", str(count), "--seed", str(cfg.seed)),
        ],
        stdout=subprocess.PIPE,
    )
    load = subprocess.run(
        # A fresh database, used by nothing else yet: build its indexes once.
        [
            *(str(cfg.taskhub_bin), "tasks", "load", "--rebuild-indexes"),
            *("--user", LOCAL_USER, "-"),
        ],
        stdin=generate.stdout,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    assert generate.stdout is not None
    generate.stdout.close()
    if generate.wait() != 0 or load.returncode != 0:
        raise RuntimeError(f"seeding taskhub with the loader failed:\n{load.stderr}")


def seed_peer(kind: str, url: str, count: int) -> None:
    """Insert `count` rows straight into a yardstick's table (made at its start)."""
    if kind == "postgres":
        psql(
            url,
            "INSERT INTO tasks (title, done) "
            f"SELECT 'Task ' || g, g % 4 = 0 FROM generate_series(1, {count}) AS g",
        )
        return
    path = url.split(":///", 1)[1]
    with contextlib.closing(sqlite3.connect(path)) as db:
        # The peers leave SQLite in its rollback-journal default; taskhub turns on
        # WAL. WAL is stored in the file, so this gives the peers the same footing.
        db.execute("PRAGMA journal_mode = WAL")
        with db:
            db.executemany(
                "INSERT INTO tasks (title, done) VALUES (?, ?)",
                ((f"Task {i}", i % 4 == 0) for i in range(1, count + 1)),
            )


# --------------------------------------------------------------------------- one stack


@dataclass
class Target:
    """What the scenarios need to know about one seeded server."""

    server: Server
    lo: int
    hi: int
    deep_offset: int
    search_term: str | None = None
    cursor_path: str | None = None


@dataclass
class Stack:
    cfg: Config
    kind: str
    size: int
    workdir: Path
    servers: list[Server] = field(default_factory=list)
    targets: dict[str, Target] = field(default_factory=dict)
    dbs: Databases | None = None
    seed_info: dict[str, Any] = field(default_factory=dict)

    def __enter__(self) -> Stack:
        try:
            self._build()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self.servers:
            server.stop()
        if self.dbs is not None:
            self.dbs.drop()

    def _build(self) -> None:
        cfg = self.cfg
        self.dbs = dbs = Databases(self.kind, self.workdir, cfg.pg_url)
        # Each taskhub configuration gets a database of its own, cloned after
        # seeding: on one SQLite file, the writes a run leaves in flight would wait
        # on (and fail behind) the next run's writes from the other server.
        url = dbs.url("taskhub")
        log(f"{self.kind}: migrating taskhub's database")
        self._taskhub_cli(url, "db", "upgrade")
        # The production server acts for `local` too, through a token, so both
        # configurations serve the same rows.
        token = self._taskhub_cli(url, "users", "create", LOCAL_USER).splitlines()[-1]
        log(f"{self.kind}: seeding {self.size} tasks into taskhub")
        started = time.monotonic()
        method = self._seed_taskhub(url)
        self.seed_info[TASKHUB] = {
            "method": method,
            "seconds": round(time.monotonic() - started, 2),
        }
        if self.kind == "postgres":
            # What autovacuum would soon do after a bulk load: statistics and a
            # visibility map (the peers' tables get the same below).
            psql(url, "VACUUM ANALYZE")
        prod_url = dbs.clone("taskhub", "taskhub_prod")
        self.servers.append(self._taskhub_server(TASKHUB, url))
        self.servers.append(self._taskhub_server(TASKHUB_PROD, prod_url, token))
        if cfg.peers:
            self.servers.append(self._peer_server(TUTORIAL, "seed"))
            self.servers.append(self._peer_server(FLOOR, "floor"))
        for server in self.servers:
            server.start()
        for server in self.servers:
            server.wait_ready()
        for server in self.servers:
            if server.name in PEERS:
                family = "seed" if server.name == TUTORIAL else "floor"
                started = time.monotonic()
                seed_peer(self.kind, dbs.url(family), self.size)
                if self.kind == "postgres":
                    psql(dbs.url(family), "VACUUM ANALYZE")
                self.seed_info[server.name] = {
                    "method": "SQL INSERT",
                    "seconds": round(time.monotonic() - started, 2),
                }
        for server in self.servers:
            self.targets[server.name] = self._target(server)
        log(f"{self.kind}: {len(self.servers)} servers up and seeded: {self.seed_info}")

    def _taskhub_env(self, url: str) -> dict[str, str]:
        return {
            "TASKHUB_DATABASE_URL": url,
            "TASKHUB_LOG_LEVEL": "warning",
            "TASKHUB_FIRST_TOKEN_FILE": "",
        }

    def _taskhub_cli(self, url: str, *args: str) -> str:
        done = subprocess.run(
            [str(self.cfg.taskhub_bin), *args],
            env={**os.environ, **self._taskhub_env(url)},
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"taskhub {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout.strip()

    def _taskhub_server(self, name: str, url: str, token: str | None = None) -> Server:
        if token is None:
            config = {"TASKHUB_AUTH": "disabled", "TASKHUB_RATE_LIMIT": ""}
        else:
            config = {"TASKHUB_AUTH": "required", "TASKHUB_RATE_LIMIT": PROD_RATE_LIMIT}
        return Server(
            name,
            [
                str(self.cfg.taskhub_bin),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
            ],
            {**self._taskhub_env(url), **config},
            ROOT,
            "/readyz",
            self.workdir / f"{name}.log",
            token=token,
        )

    def _peer_server(self, name: str, family: str) -> Server:
        assert self.dbs is not None
        folder = self.cfg.peers_dir / ("seed_tutorial" if name == TUTORIAL else "floor")
        app = "app.main:app" if name == TUTORIAL else "app:app"
        driver = "aiosqlite" if self.kind == "sqlite" else "asyncpg"
        return Server(
            name,
            [
                *(str(self.cfg.peers_python), "-m", "uvicorn", app),
                *("--host", "127.0.0.1", "--port", "{port}"),
                *("--no-access-log", "--log-level", "warning"),
            ],
            {"DATABASE_URL": with_driver(self.dbs.url(family), driver)},
            folder,
            "/tasks?limit=1",
            self.workdir / f"{name}.log",
        )

    def _seed_taskhub(self, url: str) -> str:
        """`size` tasks for the user `local`, through the bulk loader."""
        load_tasks(self.cfg, self._taskhub_env(url), self.size)
        return "taskhub tasks load"

    def _target(self, server: Server) -> Target:
        # The deep page starts 90 % in: at 1,000,000 tasks, 900,000 rows deep.
        deep = int(self.size * 0.9)
        if server.name in PEERS:
            _, newest = http("GET", f"{server.base}/tasks?limit=1")
            _, oldest = http(
                "GET", f"{server.base}/tasks?limit=1&offset={self.size - 1}"
            )
            return Target(server, oldest[0]["id"], newest[0]["id"], deep)
        token = server.token
        _, first = http("GET", f"{server.base}/tasks?sort=id&limit=1", token=token)
        _, last = http("GET", f"{server.base}/tasks?sort=-id&limit=1", token=token)
        lo, hi = first["items"][0]["id"], last["items"][0]["id"]
        _, middle = http("GET", f"{server.base}/tasks/{(lo + hi) // 2}", token=token)
        words = sorted(middle["title"].split(), key=len, reverse=True)
        term = words[0].strip("#.,").lower()[:6] or "task"
        target = Target(server, lo, hi, deep, search_term=term)
        target.cursor_path = self._cursor_path(server, deep)
        return target

    def _cursor_path(self, server: Server, deep: int) -> str | None:
        """A cursor for the page that starts `deep` rows in (the one list_deep
        reads by offset), once taskhub has cursors."""
        status, page = http(
            "GET", f"{server.base}/tasks?limit={PAGE}", token=server.token
        )
        if status != 200 or "next_cursor" not in page:
            return None
        status, page = http(
            "GET",
            f"{server.base}/tasks?limit={PAGE}&offset={deep - PAGE}",
            token=server.token,
        )
        cursor = page.get("next_cursor") if status == 200 else None
        if cursor is None:
            # Offsets and cursors do not mix: walk there, a hundred at a time.
            seen, cursor = 0, None
            while seen < deep:
                query = "limit=100" + (
                    f"&cursor={urllib.parse.quote(cursor)}" if cursor else ""
                )
                status, page = http(
                    "GET", f"{server.base}/tasks?{query}", token=server.token
                )
                if status != 200 or not page.get("next_cursor"):
                    return None
                seen += len(page["items"])
                cursor = page["next_cursor"]
        return f"/tasks?limit={PAGE}&cursor={urllib.parse.quote(cursor)}"


# --------------------------------------------------------------------------- wrk


def scenario_args(scenario: str, target: Target) -> list[str] | None:
    """wrk script arguments for `scenario` on `target`; None if it cannot run it."""
    peer = target.server.name in PEERS
    if peer and scenario in TASKHUB_ONLY:
        return None
    args = [f"lo={target.lo}", f"hi={target.hi}"]
    if target.server.token:
        args.append(f"token={target.server.token}")
    if scenario == "list_first":
        args.append(f"path=/tasks?limit={PAGE}")
    elif scenario == "list_deep":
        args.append(f"path=/tasks?limit={PAGE}&offset={target.deep_offset}")
    elif scenario == "list_cursor":
        if target.cursor_path is None:
            return None
        args.append(f"path={target.cursor_path}")
    elif scenario == "search":
        args.append(
            f"path=/tasks?limit={PAGE}&q={urllib.parse.quote(target.search_term or '')}"
        )
    return args


def run_wrk(
    cfg: Config, scenario: str, target: Target, seconds: float
) -> dict[str, Any]:
    args = scenario_args(scenario, target)
    assert args is not None
    argv = [
        "taskset",
        "-c",
        LOAD_CORE,
        "wrk",
        "-t1",
        f"-c{cfg.connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={cfg.timeout}s",
        "-s",
        str(WRK_DIR / SCENARIOS[scenario]),
        target.server.base,
        "--",
        *args,
    ]
    result = subprocess.run(argv, capture_output=True, text=True)
    line = next(
        (ln for ln in result.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None
    )
    if result.returncode != 0 or line is None:
        raise RuntimeError(
            f"wrk failed ({scenario} on {target.server.name}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    seconds_run = raw["duration_us"] / 1e6
    e = raw["errors"]
    socket_errors = e["connect"] + e["read"] + e["write"] + e["timeout"]
    non_2xx = sum(n for s, n in raw["statuses"].items() if not 200 <= int(s) < 300)
    return {
        "requests": raw["requests"],
        # Requests still unanswered when the run ended (normally up to one per
        # connection); many more means the server stalled.
        "unanswered": max(0, raw["sent"] - raw["requests"]),
        "seconds": round(seconds_run, 3),
        "rps": raw["requests"] / seconds_run if seconds_run else 0.0,
        "p50_ms": raw["latency_us"]["p50"] / 1000,
        "p90_ms": raw["latency_us"]["p90"] / 1000,
        "p99_ms": raw["latency_us"]["p99"] / 1000,
        "max_ms": raw["latency_us"]["max"] / 1000,
        "errors": socket_errors + max(non_2xx, e["status"]),
        "socket_errors": e,
        "statuses": raw["statuses"],
    }


def drive(cfg: Config, stack: Stack) -> list[dict[str, Any]]:
    """Every scenario on every server, interleaved: round, scenario, server;
    each round starts each scenario with the next server, so that no server
    always comes first (right after another scenario) or last."""
    names = list(stack.targets)

    def plan_for(round_: int) -> list[tuple[str, str]]:
        turn = (round_ - 1) % len(names)
        order = names[turn:] + names[:turn]
        return [
            (scenario, name)
            for scenario in cfg.scenarios
            for name in order
            if scenario_args(scenario, stack.targets[name]) is not None
        ]

    plan = plan_for(1)
    skipped = [s for s in cfg.scenarios if not any(p[0] == s for p in plan)]
    if skipped:
        log(f"skipped (no server can run them yet): {', '.join(skipped)}")
    if cfg.warmup > 0:
        log(f"warm-up: {cfg.warmup:g} s per scenario and server")
        for scenario, name in plan:
            run_wrk(cfg, scenario, stack.targets[name], cfg.warmup)
            stack.targets[name].server.wait_idle()
    runs = []
    for round_ in range(1, cfg.rounds + 1):
        log(f"{stack.kind} {stack.size}: round {round_}/{cfg.rounds}")
        for scenario, name in plan_for(round_):
            result = run_wrk(cfg, scenario, stack.targets[name], cfg.duration)
            settle = stack.targets[name].server.wait_idle()
            runs.append(
                {
                    **{"round": round_, "scenario": scenario, "server": name},
                    **result,
                    "settle_s": round(settle, 2),
                }
            )
            bad = {
                s: n for s, n in result["statuses"].items() if not 200 <= int(s) < 300
            }
            note = f"  non-2xx {bad}" if bad else ""
            if result["requests"] == 0 or result["unanswered"] > 2 * cfg.connections:
                note += (
                    f"  STALLED: {result['unanswered']} requests unanswered at the end"
                )
            log(
                f"  {scenario:<12} {name:<14} {result['rps']:>9.0f} req/s  "
                f"p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:8.2f} ms{note}"
            )
    return runs


# --------------------------------------------------------------------------- summary


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Medians over rounds per scenario and server, and taskhub's ratios."""
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for run in runs:
        cell = summary.setdefault(run["scenario"], {}).setdefault(
            run["server"],
            {"rps": [], "p50_ms": [], "p99_ms": [], "errors": 0, "requests": 0},
        )
        for key in ("rps", "p50_ms", "p99_ms"):
            cell[key].append(run[key])
        cell["errors"] += run["errors"]
        cell["requests"] += run["requests"]
    for cells in summary.values():
        for cell in cells.values():
            for key in ("rps", "p50_ms", "p99_ms"):
                cell[key] = statistics.median(cell[key])
        for name in (TASKHUB, TASKHUB_PROD):
            if name not in cells:
                continue
            ratios = {}
            for peer in PEERS:
                if peer in cells and cells[peer]["rps"] and cells[peer]["p99_ms"]:
                    ratios[peer] = {
                        "rps": cells[name]["rps"] / cells[peer]["rps"],
                        "p99": cells[name]["p99_ms"] / cells[peer]["p99_ms"],
                    }
            if name == TASKHUB_PROD and TASKHUB in cells and cells[TASKHUB]["rps"]:
                ratios[TASKHUB] = {
                    "rps": cells[name]["rps"] / cells[TASKHUB]["rps"],
                    "p99": cells[name]["p99_ms"] / cells[TASKHUB]["p99_ms"],
                }
            cells[name]["ratios"] = ratios
    return summary


def print_group(group: dict[str, Any], out: Any = sys.stdout) -> None:
    title = f"{group['db']}, {group['size']:,} tasks per server"
    print(f"\n== {title} ==", file=out)
    header = (
        f"{'scenario':<12} {'server':<14} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>9} "
        f"{'errors':>7}  {'rps/tut':>7} {'p99/tut':>7} {'rps/flr':>7} {'p99/flr':>7} "
        f"{'rps/auth-off':>12}"
    )
    print(header, file=out)
    print("-" * len(header), file=out)

    def ratio(cell: dict[str, Any], peer: str, key: str) -> str:
        value = cell.get("ratios", {}).get(peer, {}).get(key)
        return "" if value is None else f"{value:.2f}x"

    for scenario, cells in group["summary"].items():
        for name, cell in cells.items():
            print(
                f"{scenario:<12} {name:<14} {cell['rps']:>9.0f} {cell['p50_ms']:>8.2f} "
                f"{cell['p99_ms']:>9.2f} {cell['errors']:>7}  "
                f"{ratio(cell, TUTORIAL, 'rps'):>7} {ratio(cell, TUTORIAL, 'p99'):>7} "
                f"{ratio(cell, FLOOR, 'rps'):>7} {ratio(cell, FLOOR, 'p99'):>7} "
                f"{ratio(cell, TASKHUB, 'rps'):>12}",
                file=out,
            )
    for run in group["runs"]:
        if run["requests"] == 0 or run["unanswered"] > 2 * group["connections"]:
            print(
                f"round {run['round']}, {run['scenario']} on {run['server']}: stalled, "
                f"{run['requests']} answered and {run['unanswered']} unanswered",
                file=out,
            )
    print(
        "peak memory (VmHWM of the worker): "
        + ", ".join(
            f"{name} {m['VmHWM'] / 1024:.0f} MiB" for name, m in group["memory"].items()
        ),
        file=out,
    )
    tut = group["memory"].get(TUTORIAL, {}).get("VmHWM")
    if tut:
        print(
            "  relative to seed_tutorial: "
            + ", ".join(
                f"{name} {group['memory'][name]['VmHWM'] / tut:.2f}x"
                for name in (TASKHUB, TASKHUB_PROD)
                if name in group["memory"]
            ),
            file=out,
        )


# --------------------------------------------------------------------------- chart


def _log_axis(axis: Any) -> None:
    """A log scale labelled with plain numbers (10, 20, 50, not 10^1)."""
    import matplotlib.ticker

    axis.axes.set_yscale("log")
    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.4g}")
    axis.set_major_formatter(plain)
    axis.set_minor_locator(matplotlib.ticker.LogLocator(subs=(2.0, 5.0)))
    axis.set_minor_formatter(plain)
    axis.set_tick_params(which="minor", labelsize=7)


def chart(result: dict[str, Any], png: Path) -> list[Path]:
    """Bars of req/s and p99 per scenario and server, one row per database and size;
    and, with several sizes, taskhub's latency against table size."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        log("matplotlib is not installed: no chart (make bench installs it)")
        return []
    groups = result["groups"]
    written = []
    fig, axes = plt.subplots(
        len(groups), 2, figsize=(15, 4.2 * len(groups)), squeeze=False
    )
    colors = {
        TASKHUB: "#1f77b4",
        TASKHUB_PROD: "#6baed6",
        TUTORIAL: "#d62728",
        FLOOR: "#7f7f7f",
    }
    for row, group in zip(axes, groups, strict=True):
        scenarios = list(group["summary"])
        servers = [
            s
            for s in (TASKHUB, TASKHUB_PROD, TUTORIAL, FLOOR)
            if any(s in group["summary"][sc] for sc in scenarios)
        ]
        width = 0.8 / max(1, len(servers))
        for ax, key, label in (
            (row[0], "rps", "requests/s (higher is better, log)"),
            (row[1], "p99_ms", "p99 latency, ms (lower is better, log)"),
        ):
            for i, server in enumerate(servers):
                xs = [
                    j + (i - (len(servers) - 1) / 2) * width
                    for j, sc in enumerate(scenarios)
                    if server in group["summary"][sc]
                ]
                ys = [
                    group["summary"][sc][server][key]
                    for sc in scenarios
                    if server in group["summary"][sc]
                ]
                bars = ax.bar(xs, ys, width, label=server, color=colors[server])
                labels = [f"{y:,.0f}" if y >= 10 else f"{y:.2g}" for y in ys]
                ax.bar_label(bars, labels=labels, fontsize=6, padding=1)
            ax.set_xticks(
                range(len(scenarios)), [s.replace("_", " ") for s in scenarios]
            )
            ax.set_title(
                f"{group['db']}, {group['size']:,} tasks: {label}", fontsize=10
            )
            ax.grid(axis="y", alpha=0.3)
            _log_axis(ax.yaxis)
        row[0].legend(fontsize=8)
    fig.suptitle(
        f"taskhub benchmark {result['started_at']}  "
        f"({result['inputs']['connections']} connections, "
        f"{result['inputs']['duration']:g} s x {result['inputs']['rounds']} rounds, "
        "medians)",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)
    written.append(png)

    dbs = sorted({g["db"] for g in groups})
    if len({g["size"] for g in groups}) > 1:
        fig, axes = plt.subplots(
            1, len(dbs), figsize=(7.5 * len(dbs), 4.5), squeeze=False
        )
        for ax, db in zip(axes[0], dbs, strict=True):
            mine = sorted((g for g in groups if g["db"] == db), key=lambda g: g["size"])
            scenarios = list(dict.fromkeys(s for g in mine for s in g["summary"]))
            for sc in scenarios:
                pts = [
                    (g["size"], g["summary"][sc][TASKHUB])
                    for g in mine
                    if TASKHUB in g["summary"].get(sc, {})
                ]
                if not pts:
                    continue
                (line,) = ax.plot(
                    [p[0] for p in pts],
                    [p[1]["p50_ms"] for p in pts],
                    marker="o",
                    label=f"{sc} p50",
                )
                ax.plot(
                    [p[0] for p in pts],
                    [p[1]["p99_ms"] for p in pts],
                    marker="x",
                    linestyle="--",
                    color=line.get_color(),
                    alpha=0.6,
                )
            sizes = [g["size"] for g in mine]
            ax.set_xscale("log")
            ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            _log_axis(ax.yaxis)
            ax.set_xlabel("tasks in the table (one owner)")
            ax.set_ylabel("latency, ms (p50 solid, p99 dashed)")
            ax.set_title(
                f"taskhub (auth off) on {db}: latency against table size", fontsize=10
            )
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=8)
        fig.tight_layout()
        sizes_png = png.with_name(png.stem + "-sizes.png")
        fig.savefig(sizes_png, dpi=90)
        plt.close(fig)
        written.append(sizes_png)
    return written


# --------------------------------------------------------------------------- main


def versions(cfg: Config) -> dict[str, Any]:
    found: dict[str, Any] = {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "kernel": platform.release(),
    }
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    found["wrk"] = (wrk.stdout or wrk.stderr).splitlines()[0].split(" [")[0]
    if "postgres" in cfg.dbs:
        found["postgresql"] = psql(cfg.pg_url, "SHOW server_version", fetch=True)
    return found


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        r = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return r.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def smoke_check(result: dict[str, Any], cfg: Config) -> list[str]:
    """The harness works: every scenario ran on each taskhub, without errors."""
    problems = []
    for group in result["groups"]:
        for scenario in cfg.scenarios:
            cells = group["summary"].get(scenario, {})
            if scenario == "list_cursor" and not cells:
                continue  # until taskhub has cursors
            for name in (TASKHUB, TASKHUB_PROD):
                cell = cells.get(name)
                if cell is None:
                    problems.append(f"{scenario} did not run on {name}")
                elif cell["requests"] == 0 or cell["errors"]:
                    problems.append(
                        f"{scenario} on {name}: {cell['requests']} requests, "
                        f"{cell['errors']} errors"
                    )
    return problems


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    preflight(cfg)

    def on_term(signum: int, frame: object) -> None:
        raise Interrupted()

    signal.signal(signal.SIGTERM, on_term)
    # Also when started in the background, where SIGINT comes in ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    result: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "inputs": {
            "dbs": cfg.dbs,
            "sizes": cfg.sizes,
            "scenarios": cfg.scenarios,
            "peers": cfg.peers,
            "duration": cfg.duration,
            "warmup": cfg.warmup,
            "rounds": cfg.rounds,
            "connections": cfg.connections,
            "timeout": cfg.timeout,
            "smoke": cfg.smoke,
            "page": PAGE,
            "prod_rate_limit": PROD_RATE_LIMIT,
            "server_core": SERVER_CORE,
            "load_core": LOAD_CORE,
            "seed": cfg.seed,
            "pg_url": redact(cfg.pg_url) if "postgres" in cfg.dbs else None,
        },
        "versions": versions(cfg),
        "git": git_state(),
        "machine": {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()},
        "groups": [],
    }
    log(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="taskhub-bench-") as tmp:
        try:
            for kind in cfg.dbs:
                for size in cfg.sizes:
                    workdir = Path(tmp) / f"{kind}-{size}"
                    workdir.mkdir()
                    with Stack(cfg, kind, size, workdir) as stack:
                        runs = drive(cfg, stack)
                        memory = {s.name: s.memory() for s in stack.servers}
                        targets = {
                            name: {
                                "lo": t.lo,
                                "hi": t.hi,
                                "deep_offset": t.deep_offset,
                                "search_term": t.search_term,
                                "cursor": t.cursor_path,
                            }
                            for name, t in stack.targets.items()
                        }
                        if cfg.keep_logs:
                            cfg.out.parent.mkdir(parents=True, exist_ok=True)
                            for server in stack.servers:
                                shutil.copy(
                                    server.logfile,
                                    cfg.out.with_name(
                                        f"{cfg.out.stem}-{kind}-{size}-{server.name}.log"
                                    ),
                                )
                        group = {
                            "db": kind,
                            "size": size,
                            "connections": cfg.connections,
                            "seed": stack.seed_info,
                            "targets": targets,
                            "memory": memory,
                            "summary": summarise(runs),
                            "runs": runs,
                        }
                        warnings = _server_warnings(stack)
                        if warnings:
                            group["server_log_errors"] = warnings
                    result["groups"].append(group)
                    save(result, cfg.out)  # so far: an interrupted run keeps these
                    print_group(group)
                    for name, lines in group.get("server_log_errors", {}).items():
                        print(
                            f"  {name} logged {len(lines)} error line(s), "
                            f"e.g.: {lines[0]}"
                        )
        except (KeyboardInterrupt, Interrupted):
            log("interrupted: servers stopped, databases dropped")
            if result["groups"]:
                log(f"the finished groups are in {cfg.out}")
            return 130
    result["machine"]["loadavg_end"] = os.getloadavg()
    result["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    log(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    result["complete"] = True
    save(result, cfg.out)
    print(f"\nresults: {cfg.out}")
    for png in chart(result, cfg.out.with_suffix(".png")):
        print(f"chart:   {png}")
    if cfg.smoke:
        problems = smoke_check(json.loads(cfg.out.read_text()), cfg)
        if problems:
            print("bench smoke: FAILED\n  " + "\n  ".join(problems), file=sys.stderr)
            return 1
        print("bench smoke: every scenario served requests without errors")
        if cfg.out.parent.name.startswith("taskhub-bench-smoke-"):
            shutil.rmtree(cfg.out.parent)  # kept above, when the check fails
    return 0


def save(result: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"complete": False, **result}, indent=1) + "\n")


def _server_warnings(stack: Stack) -> dict[str, list[str]]:
    """ERROR and Traceback lines the servers logged: worth a look, not a failure."""
    found = {}
    for server in stack.servers:
        lines = [
            ln
            for ln in server.log_tail(100_000).splitlines()
            if "ERROR" in ln or "Traceback" in ln or "CRITICAL" in ln
        ]
        if lines:
            found[server.name] = lines[:20]
    return found


if __name__ == "__main__":
    sys.exit(main())
