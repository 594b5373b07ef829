"""A PostgreSQL cluster of a test's own, which the test may stop and start again.

The shared server (TEST_DATABASE_URL) must never go down under other tests, so
outage tests run their own cluster: initdb into a temporary directory, listening
on 127.0.0.1 at a free port and on a unix socket in that directory, trust
authentication, and durability switched off for speed. The PostgreSQL server
binaries come from PATH or /usr/lib/postgresql/<version>/bin; without them the
tests skip, unless TASKHUB_REQUIRE_POSTGRES=1 makes that an error. As root, the
binaries run as the `postgres` user, since initdb and postgres refuse root.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, NoReturn

import pytest

from tests.databases import postgres_required
from tests.served import free_port

ShutdownMode = Literal["smart", "fast", "immediate"]

# fsync=off is safe here: the data only has to survive the server's processes,
# not the machine. synchronous_commit stays on, or an immediate shutdown would
# lose the last commits, as if the service had lost data.
_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "50",
    "shared_buffers": "16MB",
}


class ThrowawayPostgres:
    """One initialised cluster in `directory`, started and stopped on demand."""

    def __init__(self, bin_dir: Path, directory: Path, run_as: list[str]) -> None:
        self._bin_dir = bin_dir
        self._run_as = run_as
        self.directory = directory
        self.data = directory / "data"
        self.log = directory / "postgres.log"
        self.port = free_port()  # kept across restarts: clients keep their URL
        self.running = False

    @property
    def url(self) -> str:
        """A plain URL of the cluster's `postgres` database, as a user writes it."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def initdb(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions",
        )  # fmt: skip

    def start(self) -> None:
        options = [f"-p {self.port}", f"-k {self.directory}"]
        options += [f"-c {name}={value}" for name, value in _SETTINGS.items()]
        self._run(
            "pg_ctl", "start", "-D", str(self.data), "-l", str(self.log),
            "-w", "-t", "30", "-o", " ".join(options),
        )  # fmt: skip
        self.running = True

    def stop(self, mode: ShutdownMode = "fast") -> None:
        """Shut down; `fast` ends every session, `immediate` as good as crashes."""
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w")
        self.running = False

    def _run(self, program: str, *args: str) -> None:
        command = [*self._run_as, str(self._bin_dir / program), *args]
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(
                f"{program} failed ({done.returncode}):\n"
                f"{done.stdout}{done.stderr}{log[-2000:]}"
            )


@contextmanager
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    """A started cluster of the caller's own, stopped and deleted afterwards."""
    bin_dir = _server_binaries()
    if bin_dir is None:
        _unavailable("no PostgreSQL server binaries (initdb, pg_ctl) on PATH or "
                     "in /usr/lib/postgresql/*/bin")  # fmt: skip
    run_as = _run_as()
    directory = Path(tempfile.mkdtemp(prefix="taskhub-pg-"))
    try:
        if run_as:
            user = pwd.getpwnam("postgres")
            os.chown(directory, user.pw_uid, user.pw_gid)
        cluster = ThrowawayPostgres(bin_dir, directory, run_as)
        try:
            cluster.initdb()
        except (RuntimeError, OSError, subprocess.SubprocessError) as error:
            _unavailable(f"initdb could not make a cluster: {error}")
        cluster.start()
        try:
            yield cluster
        finally:
            if cluster.running:
                cluster.stop("immediate")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _server_binaries() -> Path | None:
    found = shutil.which("initdb")
    candidates = [Path(found).resolve().parent] if found else []
    versions = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(versions, key=_version, reverse=True)
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    return None


def _version(bin_dir: Path) -> tuple[int, str]:
    name = bin_dir.parent.name  # /usr/lib/postgresql/15/bin
    return (int(name) if name.isdecimal() else 0, name)


def _run_as() -> list[str]:
    """The prefix that drops root for the `postgres` user; none if not root."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        _unavailable("running as root and there is no `postgres` user to run as")
    runuser = shutil.which("runuser")
    if runuser is None:
        _unavailable("running as root and there is no `runuser` to drop root")
    return [runuser, "-u", "postgres", "--"]


def _unavailable(reason: str) -> NoReturn:
    if postgres_required():
        pytest.fail(f"TASKHUB_REQUIRE_POSTGRES=1 but {reason}", pytrace=False)
    pytest.skip(reason)
