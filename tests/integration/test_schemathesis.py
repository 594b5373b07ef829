"""Schemathesis against the live OpenAPI document of a served taskhub.

`taskhub serve` runs as a user runs it, on SQLite and on PostgreSQL, and the
schemathesis CLI generates requests from the document the server itself serves,
authenticated with the first admin token. The run fails on any 5xx and on any
response the document does not promise: an undocumented status code or content
type, a body outside the response schema, a documented header missing.
"""

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.served import environment, log_problems, serve, taskhub

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
class Target:
    base_url: str
    token: str
    log: Path


@pytest.fixture
def target(server_database_url: str, tmp_path: Path) -> Iterator[Target]:
    token_file = tmp_path / "token"
    env = environment(
        server_database_url,
        first_token_file=str(token_file),
        # A rate limit would answer most generated requests with 429.
        rate_limit="",
    )
    taskhub(env, "db", "upgrade")
    with serve(env, tmp_path / "server.log") as served:
        yield Target(served.base_url, token_file.read_text().strip(), served.log_file)


def test_every_response_to_generated_requests_is_one_the_openapi_document_promises(
    target: Target, tmp_path: Path
) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        SCHEMATHESIS,
        "--config-file",
        str(config),
        "run",
        f"{target.base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {target.token}",
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
        f"{log_problems(target.log)}"
    )
