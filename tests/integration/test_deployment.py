"""The Dockerfile and docker-compose.yml, as far as a machine without a Docker
engine can check them: Compose validates and resolves the file, the Dockerfile
says what it must, and the commands the image runs work against a taskhub
served here. The image itself is not built here (README, "Containers").
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.served import environment, free_port, start_command, taskhub

ROOT = Path(__file__).parents[2]
VENV_BIN = str(Path(sys.executable).parent)


def compose_command() -> list[str]:
    """The Compose implementation here: the docker plugin, else docker-compose."""
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=30
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    pytest.fail(
        "no Compose implementation: `.ci/run` installs Debian's docker-compose",
        pytrace=False,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml as Compose resolves it (anchors merged, ${} filled)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTGRES_")}
    done = subprocess.run(
        [*compose_command(), "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, f"Compose rejects the file:\n{done.stderr}"
    resolved: dict[str, Any] = yaml.safe_load(done.stdout)
    return resolved


def published(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host address, host port) of each published port, in either syntax."""
    ports = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.append((entry.get("host_ip", ""), str(entry.get("published"))))
        else:
            parts = str(entry).split("/")[0].split(":")
            host_ip = parts[0] if len(parts) == 3 else ""
            ports.append((host_ip, parts[-2] if len(parts) > 1 else ""))
    return ports


def command_of(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def test_compose_migrates_once_and_completely_before_the_app_starts(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    migrate, app = services["migrate"], services["taskhub"]
    assert command_of(migrate) == ["taskhub", "db", "upgrade"]
    assert migrate.get("restart", "no") == "no"
    assert app["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert command_of(app)[:2] == ["taskhub", "serve"]
    # The two run the same code against the same database.
    assert migrate["image"] == app["image"]
    url = "TASKHUB_DATABASE_URL"
    assert migrate["environment"][url] == app["environment"][url]
    assert "@postgres:5432/" in app["environment"][url]
    assert app["environment"]["TASKHUB_REDIS_URL"].startswith("redis://redis:")


def test_compose_checks_the_health_of_every_long_running_service(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name in ("postgres", "redis", "taskhub"):
        assert services[name]["healthcheck"]["test"], name
    for name in ("postgres", "redis"):
        assert services["taskhub"]["depends_on"][name]["condition"] == (
            "service_healthy"
        )
    dockerfile = Dockerfile.read(ROOT / "Dockerfile")
    assert services["taskhub"]["healthcheck"]["test"] == [
        "CMD",
        *dockerfile.final.healthcheck,
    ]


def test_compose_publishes_the_databases_on_loopback_only(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    # The tests and tools on the host reach PostgreSQL and Redis on loopback;
    # nothing else may.
    assert published(services["postgres"]) == [("127.0.0.1", "5432")]
    assert published(services["redis"]) == [("127.0.0.1", "6379")]
    assert "ports" not in services["migrate"]
    assert [port for _, port in published(services["taskhub"])] == ["8000"]


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def last(self, keyword: str) -> str | None:
        found = [args for kw, args in self.instructions if kw == keyword]
        return found[-1] if found else None

    @property
    def healthcheck(self) -> list[str]:
        """The HEALTHCHECK's command, in exec form."""
        args = self.last("HEALTHCHECK") or ""
        command = re.sub(r"^(--\S+\s+)*CMD\s+", "", args)
        parsed: list[str] = json.loads(command)
        return parsed

    @property
    def cmd(self) -> list[str]:
        parsed: list[str] = json.loads(self.last("CMD") or "null")
        return parsed

    @property
    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for keyword, args in self.instructions:
            if keyword == "ENV":
                for pair in shlex.split(args):
                    name, _, value = pair.partition("=")
                    values[name] = value
        return values


@dataclass
class Dockerfile:
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    @classmethod
    def read(cls, path: Path) -> "Dockerfile":
        text = re.sub(r"\\\n", " ", path.read_text())
        stages: list[Stage] = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            keyword, _, args = line.partition(" ")
            keyword, args = keyword.upper(), args.strip()
            if keyword == "FROM":
                base, _, name = args.partition(" AS ")
                stages.append(Stage(base.strip(), name.strip() or None))
            else:
                stages[-1].instructions.append((keyword, args))
        return cls(stages)


def test_the_image_is_built_in_stages_and_runs_unprivileged() -> None:
    dockerfile = Dockerfile.read(ROOT / "Dockerfile")
    build, final = dockerfile.stages[0], dockerfile.final
    assert len(dockerfile.stages) >= 2
    assert "requirements.lock" in (build.last("RUN") or "") or any(
        "-r requirements.lock" in args for kw, args in build.instructions
    )
    assert final.base.endswith("-slim")
    assert any(
        kw == "COPY" and args.startswith(f"--from={build.name}")
        for kw, args in final.instructions
    )
    # Nothing from the build stage's tools or sources other than the venv.
    assert not any(kw == "RUN" and "pip" in args for kw, args in final.instructions)
    user = final.last("USER")
    assert user is not None
    assert user.split(":")[0] not in {"root", "0"}
    assert final.cmd == ["taskhub", "serve"]
    assert final.env["TASKHUB_HOST"] == "0.0.0.0"
    assert "/healthz" in " ".join(final.healthcheck)
    assert not any("db upgrade" in args for _, args in final.instructions)


def test_the_dockerignore_keeps_local_state_out_of_the_build() -> None:
    rules = [
        rule
        for rule in (ROOT / ".dockerignore").read_text().splitlines()
        if rule and not rule.startswith("#")
    ]
    assert rules[0] == "*"  # everything is left out, but for the exceptions below
    allowed = {rule.removeprefix("!").rstrip("/") for rule in rules if "!" in rule}
    assert not allowed & {".venv", ".env", ".git", "taskhub.db", ".taskhub-token"}


def image_environment(dockerfile: Dockerfile, database_url: str) -> dict[str, str]:
    """The image's ENV, as the container would see it, with what must differ here:
    PATH leads to this venv, and the server binds loopback on a free port (nothing
    on this machine may listen on 0.0.0.0, as the image's TASKHUB_HOST says)."""
    image = dockerfile.final.env
    image.pop("PATH")
    env = environment(database_url) | image
    return env | {
        "PATH": VENV_BIN + os.pathsep + os.environ["PATH"],
        "TASKHUB_HOST": "127.0.0.1",
        "TASKHUB_PORT": str(free_port()),
    }


def test_the_images_commands_migrate_serve_and_pass_its_healthcheck(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    dockerfile = Dockerfile.read(ROOT / "Dockerfile")
    env = image_environment(dockerfile, f"sqlite:///{tmp_path}/taskhub.db")
    env["TASKHUB_FIRST_TOKEN_FILE"] = str(tmp_path / "token")
    migrate = command_of(compose["services"]["migrate"])
    assert migrate[0] == "taskhub"
    taskhub(env, *migrate[1:])
    healthcheck = [sys.executable, *dockerfile.final.healthcheck[1:]]

    def healthy() -> bool:
        done = subprocess.run(healthcheck, env=env, capture_output=True, timeout=30)
        return done.returncode == 0

    server = start_command(
        dockerfile.final.cmd,
        env,
        tmp_path / "serve.log",
        int(env["TASKHUB_PORT"]),
    )
    try:
        server.wait_until_up()
        assert healthy()
        token = (tmp_path / "token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        answer = httpx.post(
            f"{server.base_url}/tasks", json={"title": "In a box"}, headers=headers
        )
        assert answer.status_code == 201
    finally:
        server.stop()
    assert not healthy()
