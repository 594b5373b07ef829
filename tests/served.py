"""`taskhub` as a user runs it: CLI commands, and `taskhub serve` in a subprocess.

A served process writes stdout and stderr to a log file, never to a pipe: nobody
reads a pipe while a test runs, and a full one would stall the server.
"""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from entrypoints.logs import ACCESS_LOGGER

TASKHUB = str(Path(sys.executable).with_name("taskhub"))
STARTUP_DEADLINE = 30.0  # seconds; a bound on failure, not a timing requirement
EXIT_DEADLINE = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(database_url: str, **settings: str) -> dict[str, str]:
    """The environment of a `taskhub` command: ours, the database, `settings`."""
    env = {**os.environ, "TASKHUB_DATABASE_URL": database_url}
    return env | {f"TASKHUB_{name.upper()}": value for name, value in settings.items()}


def taskhub(
    env: dict[str, str], *args: str, check: bool = True, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a `taskhub` command to completion, its output captured as text."""
    done = subprocess.run(
        [TASKHUB, *args], env=env, capture_output=True, text=True, timeout=60, cwd=cwd
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"taskhub {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
        )
    return done


@dataclass(frozen=True)
class Served:
    """One `taskhub serve` process, its output going to `log_file`."""

    base_url: str
    process: "subprocess.Popen[bytes]"
    log_file: Path

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def wait_until_up(self) -> None:
        """Until the server answers, or fail with its log if it dies or never does."""
        deadline = time.monotonic() + STARTUP_DEADLINE
        while True:
            try:
                httpx.get(f"{self.base_url}/healthz", timeout=1)
                return
            except httpx.TransportError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    message = f"taskhub serve did not start:\n{self.log()}"
                    raise RuntimeError(message) from None
                time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM, unless it has exited; a server that will not exit fails."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=EXIT_DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def start(env: dict[str, str], log: Path, *args: str) -> Served:
    """`taskhub serve` on a free port, with `args`; not waited for."""
    port = free_port()
    return start_command([TASKHUB, "serve", "--port", str(port), *args], env, log, port)


def start_command(
    command: list[str], env: dict[str, str], log: Path, port: int
) -> Served:
    """`command`, a server that will listen on 127.0.0.1:`port`; not waited for."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return Served(f"http://127.0.0.1:{port}", process, log)


@contextmanager
def serve(env: dict[str, str], log: Path, *args: str) -> Iterator[Served]:
    """`taskhub serve` with `args`, answering, until the end of the block."""
    served = start(env, log, *args)
    try:
        served.wait_until_up()
        yield served
    finally:
        served.stop()


def log_problems(log: Path) -> str:
    """A server's log without its access lines: warnings, errors, tracebacks."""
    lines = log.read_text(errors="replace").splitlines()
    return "\n".join(line for line in lines if ACCESS_LOGGER not in line)
