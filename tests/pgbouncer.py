"""A PgBouncer of the tests' own, in transaction pooling mode, in front of the
PostgreSQL server the tests use.

It listens on a free loopback port, trusts every client (loopback only), and
reaches every database on the server through its `*` entry, so the databases
the tests create on the fly are reachable through it too. PgBouncer refuses to
run as root; as root it runs as the `postgres` user.

With TEST_THROUGH_PGBOUNCER=1 the PostgreSQL tests give the service URLs through
one such PgBouncer (and TASKHUB_DATABASE_POOLER=pgbouncer-transaction), while
their own admin work (CREATE DATABASE, TRUNCATE, DROP) goes to the server direct.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.databases import postgres_required
from tests.served import free_port

STARTUP_DEADLINE = 20.0  # seconds; a bound on failure, not a timing requirement
POOLER = "pgbouncer-transaction"


def through_pgbouncer() -> bool:
    return os.environ.get("TEST_THROUGH_PGBOUNCER") == "1"


@dataclass(frozen=True)
class PgBouncer:
    host: str
    port: int
    log_file: Path

    def url_for(self, direct_url: str) -> str:
        """`direct_url` (a database on the server behind it), through PgBouncer."""
        url = make_url(direct_url).set(host=self.host, port=self.port)
        return url.render_as_string(hide_password=False)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


def _binary() -> str:
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    if found is None:
        reason = "no pgbouncer binary (Debian: apt-get install pgbouncer)"
        if postgres_required():
            pytest.fail(f"TASKHUB_REQUIRE_POSTGRES=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return found


@contextmanager
def pgbouncer(server_url: str, *, pool_size: int = 4) -> Iterator[PgBouncer]:
    """A running PgBouncer for the server of `server_url`, with `pool_size` server
    connections per database and user; stopped at the end of the block."""
    binary = _binary()
    server = make_url(server_url)
    directory = Path(tempfile.mkdtemp(prefix="taskhub-pgbouncer-"))
    port = free_port()
    user = server.username or "postgres"
    (directory / "userlist.txt").write_text(f'"{user}" ""\n')
    (directory / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={server.host or "127.0.0.1"} port={server.port or 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/userlist.txt
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 1000
server_idle_timeout = 10
logfile = {directory}/pgbouncer.log
"""
    )
    command = [binary, str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:  # "PgBouncer should not run as root"
        account = _unprivileged_account()
        os.chown(directory, account.pw_uid, account.pw_gid)
        for path in directory.iterdir():
            os.chown(path, account.pw_uid, account.pw_gid)
        command = ["runuser", "-u", account.pw_name, "--", *command]
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    bouncer = PgBouncer("127.0.0.1", port, directory / "pgbouncer.log")
    try:
        _wait_until_listening(bouncer, process)
        yield bouncer
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(directory, ignore_errors=True)


def _unprivileged_account() -> pwd.struct_passwd:
    """PostgreSQL's system user where the server is installed, else nobody."""
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("pgbouncer refuses root, and there is no user to run it as")


def _wait_until_listening(
    bouncer: PgBouncer, process: "subprocess.Popen[bytes]"
) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE
    while True:
        try:
            with socket.create_connection((bouncer.host, bouncer.port), timeout=1):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                log = bouncer.log() if bouncer.log_file.exists() else ""
                raise RuntimeError(f"pgbouncer did not start:\n{log}") from None
            time.sleep(0.05)
