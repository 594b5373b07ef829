"""`taskhub db upgrade` and `taskhub serve`, as a user runs them, over real HTTP."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.databases import fresh_postgres_database, postgres_server

TASKHUB = str(Path(sys.executable).with_name("taskhub"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server_database_url(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/taskhub.db"  # a plain URL, as a user writes it
        return
    with (
        postgres_server() as server,
        fresh_postgres_database(server, migrated=False) as url,
    ):
        yield url


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    return tmp_path / "token"


@pytest.fixture
def server(server_database_url: str, token_file: Path) -> Iterator[str]:
    env = {
        **os.environ,
        "TASKHUB_DATABASE_URL": server_database_url,
        "TASKHUB_FIRST_TOKEN_FILE": str(token_file),
    }
    subprocess.run([TASKHUB, "db", "upgrade"], env=env, check=True, timeout=60)
    port = _free_port()
    process = subprocess.Popen(
        [TASKHUB, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
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
                    raise RuntimeError(process.stderr.read().decode()) from None
                time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=10)
        assert process.stderr is not None
        process.stderr.close()


def test_a_fresh_server_hands_out_a_working_token_in_a_private_file(
    server: str, token_file: Path
) -> None:
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    assert token.startswith("taskhub_")
    assert httpx.get(f"{server}/tasks").status_code == 401
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{server}/tasks", headers=headers).status_code == 200


def test_the_served_api_creates_lists_and_deletes(
    server: str, token_file: Path
) -> None:
    headers = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
    with httpx.Client(base_url=server, headers=headers) as http:
        project = http.post("/projects", json={"name": "Served"})
        assert project.status_code == 201
        task = http.post(
            "/tasks",
            json={"title": "Over the wire", "project_id": project.json()["id"]},
        )
        assert task.status_code == 201
        listing = http.get("/tasks", params={"sort": "title"}).json()
        assert [t["title"] for t in listing["items"]] == ["Over the wire"]
        bad = http.get("/tasks", params={"limit": 101})
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/problem+json"
        assert http.delete(task.headers["location"]).status_code == 204
        assert http.get(task.headers["location"]).status_code == 404


def test_the_database_is_at_head_after_upgrade(server_database_url: str) -> None:
    env = {**os.environ, "TASKHUB_DATABASE_URL": server_database_url}
    subprocess.run([TASKHUB, "db", "upgrade"], env=env, check=True, timeout=60)
    current = subprocess.run(
        [TASKHUB, "db", "current"], env=env, check=True, capture_output=True, text=True
    )
    assert "(head)" in current.stdout
    subprocess.run([TASKHUB, "db", "downgrade", "base"], env=env, check=True)
    current = subprocess.run(
        [TASKHUB, "db", "current"], env=env, check=True, capture_output=True, text=True
    )
    assert "(head)" not in current.stdout


def _taskhub(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TASKHUB_DATABASE_URL": url}
    return subprocess.run(
        [TASKHUB, *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_tokens_made_on_the_command_line_work_until_revoked(
    server: str, server_database_url: str
) -> None:
    created = _taskhub(server_database_url, "users", "create", "carol")
    assert created.returncode == 0, created.stderr
    first = created.stdout.strip()
    issued = _taskhub(
        server_database_url, "tokens", "create", "carol", "--name", "ci",
        "--expires-in-days", "1",
    )  # fmt: skip
    second = issued.stdout.strip()
    assert first.startswith("taskhub_")
    assert second.startswith("taskhub_")
    assert first != second

    listing = _taskhub(server_database_url, "tokens", "list", "carol").stdout
    assert "ci" in listing
    assert first not in listing
    assert second not in listing
    assert first[:16] in listing  # the prefix tells the tokens apart

    def status(token: str) -> int:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.get(f"{server}/tasks", headers=headers).status_code

    assert (status(first), status(second)) == (200, 200)
    revoked = _taskhub(server_database_url, "tokens", "revoke", first[:16])
    assert revoked.returncode == 0, revoked.stderr
    assert (status(first), status(second)) == (401, 200)

    again = _taskhub(server_database_url, "users", "create", "carol")
    assert again.returncode == 1
    assert "already exists" in again.stderr
