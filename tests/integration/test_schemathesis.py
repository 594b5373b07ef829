"""Schemathesis against the live OpenAPI document of a served taskhub.

`taskhub serve` runs as a user runs it, on SQLite and on PostgreSQL, and the
schemathesis CLI generates requests from the document the server itself serves,
authenticated with the first admin token. The run fails on any 5xx and on any
response the document does not promise: an undocumented status code or content
type, a body outside the response schema, a documented header missing.
"""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.databases import fresh_postgres_database, postgres_server

TASKHUB = str(Path(sys.executable).with_name("taskhub"))
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)
# Per operation and phase. Sized so one backend's run takes about a minute on
# two cores; the coverage phase's boundary values do not depend on it.
MAX_EXAMPLES = 30
# A fixed seed, so CI fails (or passes) the same way on every run and a failure
# reproduces locally with the same command.
SEED = 20240601
RUN_TIMEOUT = 300
CONFIG = """
# Answered with 401 or 429 throughout, a run would pass while testing nothing
# behind them; schemathesis warns then, and these warnings fail the run.
[warnings]
fail-on = ["missing_auth", "rate_limited"]

# The default markers include "key", which hides Idempotency-Key values from
# the curl reproductions; Authorization stays filtered (by name and by "auth").
[output.sanitization]
sensitive-markers = ["token", "secret", "password", "auth", "session", "credential"]
"""


@dataclass(frozen=True)
class Served:
    base_url: str
    token: str
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server_database_url(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/taskhub.db"
        return
    with (
        postgres_server() as server,
        fresh_postgres_database(server, migrated=False) as url,
    ):
        yield url


@pytest.fixture
def served(server_database_url: str, tmp_path: Path) -> Iterator[Served]:
    token_file = tmp_path / "token"
    env = {
        **os.environ,
        "TASKHUB_DATABASE_URL": server_database_url,
        "TASKHUB_FIRST_TOKEN_FILE": str(token_file),
        # A rate limit would answer most generated requests with 429.
        "TASKHUB_RATE_LIMIT": "",
    }
    subprocess.run([TASKHUB, "db", "upgrade"], env=env, check=True, timeout=60)
    port = _free_port()
    log = tmp_path / "server.log"
    # A file, not a pipe: nobody reads the access log while the run goes on, and
    # a full pipe would stall the server.
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [TASKHUB, "serve", "--port", str(port)],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base_url}/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(log.read_text()) from None
                time.sleep(0.1)
        yield Served(base_url, token_file.read_text().strip(), log)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _server_errors(log: Path) -> str:
    """The server's log without its access lines: tracebacks of any 5xx."""
    lines = log.read_text(errors="replace").splitlines()
    return "\n".join(line for line in lines if " uvicorn.access " not in line)


def test_every_response_to_generated_requests_is_one_the_openapi_document_promises(
    served: Served, tmp_path: Path
) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        SCHEMATHESIS,
        "--config-file",
        str(config),
        "run",
        f"{served.base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {served.token}",
        "--checks",
        ",".join(CHECKS),
        # Examples (none are in the document yet), boundary values (coverage),
        # random requests (fuzzing), and chains that follow the links inferred
        # from Location headers: POST, then GET, PATCH and DELETE what it made.
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        # Hypothesis would otherwise keep failing examples in a database and
        # replay them on the next run, so runs would differ.
        "--generation-database",
        "none",
        # One worker: the requests reach the server's one database in a fixed
        # order, so the seed reproduces the run's state as well as its inputs.
        "--workers",
        "1",
        # A hung request fails the run instead of stalling it until RUN_TIMEOUT.
        "--request-timeout",
        "10",
        "--no-color",
    ]
    try:
        # In tmp_path, the caches schemathesis and hypothesis keep in the working
        # directory (.schemathesis/, .hypothesis/) stay out of the work tree.
        run = subprocess.run(
            command,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
    except subprocess.TimeoutExpired as expired:
        output = expired.stdout or b""
        text = output.decode(errors="replace") if isinstance(output, bytes) else output
        pytest.fail(f"schemathesis ran over {RUN_TIMEOUT}s:\n{text}", pytrace=False)
    exit_code = run.returncode
    assert exit_code == 0, (
        f"schemathesis exited {exit_code}:\n{run.stdout}\n{run.stderr}\n"
        f"--- the server's log, access lines left out ---\n"
        f"{_server_errors(served.log)}"
    )
