"""`taskhub db upgrade` and `taskhub serve`, as a user runs them, over real HTTP."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.served import environment, serve, taskhub


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    return tmp_path / "token"


@pytest.fixture
def server(server_database_url: str, token_file: Path, tmp_path: Path) -> Iterator[str]:
    env = environment(server_database_url, first_token_file=str(token_file))
    taskhub(env, "db", "upgrade")
    with serve(env, tmp_path / "serve.log") as served:
        yield served.base_url


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
    env = environment(server_database_url)
    taskhub(env, "db", "upgrade")
    assert "(head)" in taskhub(env, "db", "current").stdout
    taskhub(env, "db", "downgrade", "base")
    assert "(head)" not in taskhub(env, "db", "current").stdout


def test_tokens_made_on_the_command_line_work_until_revoked(
    server: str, server_database_url: str
) -> None:
    env = environment(server_database_url)
    first = taskhub(env, "users", "create", "carol").stdout.strip()
    issued = taskhub(
        env, "tokens", "create", "carol", "--name", "ci", "--expires-in-days", "1"
    )
    second = issued.stdout.strip()
    assert first.startswith("taskhub_")
    assert second.startswith("taskhub_")
    assert first != second

    listing = taskhub(env, "tokens", "list", "carol").stdout
    assert "ci" in listing
    assert first not in listing
    assert second not in listing
    assert first[:16] in listing  # the prefix tells the tokens apart

    def status(token: str) -> int:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.get(f"{server}/tasks", headers=headers).status_code

    assert (status(first), status(second)) == (200, 200)
    taskhub(env, "tokens", "revoke", first[:16])
    assert (status(first), status(second)) == (401, 200)

    again = taskhub(env, "users", "create", "carol", check=False)
    assert again.returncode == 1
    assert "already exists" in again.stderr


def test_several_workers_without_redis_warn_that_each_counts_alone(
    tmp_path: Path,
) -> None:
    env = environment(
        f"sqlite:///{tmp_path}/taskhub.db",
        first_token_file="",
        rate_limit="100/minute",
        redis_url="",
    )
    taskhub(env, "db", "upgrade")
    with serve(env, tmp_path / "serve.log", "--workers", "2") as served:
        assert "each of the 2 workers counts" in served.log()
    with serve(env, tmp_path / "one.log") as served:
        assert "counts TASKHUB_RATE_LIMIT" not in served.log()
