"""Settings as the `taskhub` command reads them: a bad one stops every command
with one line naming it, `.env` is read under the environment, and
`taskhub config show` tells what is in effect without telling a secret."""

from pathlib import Path

import pytest

from tests.served import environment, taskhub

PASSWORD = "s3cr3t-Pa55word"

BAD_SETTINGS = {
    "database_url": "postgresql://app:{password}@db:port/taskhub",
    "auth": "off",
    "port": "eighty",
    "rate_limit": "100/fortnight",
    "log_level": "loud",
    "forwarded_allow_ips": "proxy.internal",
}

COMMANDS = [
    ["serve"],
    ["serve", "--workers", "2"],
    ["db", "upgrade"],
    ["users", "create", "someone"],
    ["config", "show"],
]


@pytest.mark.parametrize(("setting", "value"), sorted(BAD_SETTINGS.items()))
def test_a_bad_setting_stops_the_server_with_one_line_naming_it(
    setting: str, value: str, tmp_path: Path
) -> None:
    env = environment(f"sqlite:///{tmp_path}/taskhub.db")
    env[f"TASKHUB_{setting.upper()}"] = value.format(password=PASSWORD)
    done = taskhub(env, "serve", check=False)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"taskhub: bad setting TASKHUB_{setting.upper()}: ")
    assert PASSWORD not in done.stderr


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_refuses_to_run_on_a_bad_setting(command: list[str]) -> None:
    env = environment("mysql://root:" + PASSWORD + "@db/taskhub")
    done = taskhub(env, *command, check=False)
    assert done.returncode == 2
    assert done.stderr == (
        "taskhub: bad setting TASKHUB_DATABASE_URL: unsupported driver 'mysql'; use "
        "sqlite://, postgresql:// (or sqlite+aiosqlite or postgresql+asyncpg), or "
        "memory://\n"
    )
    assert done.stdout == ""


def test_an_unparsable_database_url_is_named_without_showing_it(
    tmp_path: Path,
) -> None:
    env = environment(f"postgresql://app:{PASSWORD}@db:5432:5433/x")
    done = taskhub(env, "db", "upgrade", check=False)
    assert done.returncode == 2
    assert "TASKHUB_DATABASE_URL: not a database URL" in done.stderr
    assert PASSWORD not in done.stderr


def shown(output: str) -> dict[str, tuple[str, str]]:
    """`config show`'s table: variable -> (value, source)."""
    rows = {}
    for line in output.splitlines()[1:]:
        name, *value, source = line.split()
        rows[name] = (" ".join(value), source)
    return rows


def test_config_show_lists_every_setting_and_where_it_came_from(
    tmp_path: Path,
) -> None:
    (tmp_path / ".env").write_text(
        "TASKHUB_PORT=9001\nTASKHUB_LOG_LEVEL=debug\n# TASKHUB_AUTH=disabled\n"
    )
    env = environment("memory://", log_level="warning")
    rows = shown(taskhub(env, "config", "show", cwd=tmp_path).stdout)
    assert rows["TASKHUB_DATABASE_URL"] == ("memory://", "environment")
    # The environment wins over .env; .env over the default.
    assert rows["TASKHUB_LOG_LEVEL"] == ("warning", "environment")
    assert rows["TASKHUB_PORT"] == ("9001", ".env")
    assert rows["TASKHUB_AUTH"] == ("required", "default")
    assert rows["TASKHUB_RATE_LIMIT"] == ("600/minute", "default")
    assert len(rows) >= 18


def test_config_show_never_shows_a_password_or_secret(tmp_path: Path) -> None:
    env = environment(
        f"postgresql://taskhub:{PASSWORD}@db.internal:5432/taskhub",
        redis_url=f"redis://default:{PASSWORD}@cache:6379/0",
        cursor_secret=PASSWORD,
    )
    done = taskhub(env, "config", "show", cwd=tmp_path)
    assert PASSWORD not in done.stdout + done.stderr
    rows = shown(done.stdout)
    assert rows["TASKHUB_DATABASE_URL"][0] == (
        "postgresql+asyncpg://taskhub:********@db.internal:5432/taskhub"
    )
    assert rows["TASKHUB_REDIS_URL"][0] == "redis://default:********@cache:6379/0"
    assert rows["TASKHUB_CURSOR_SECRET"][0] == "********"


def test_a_server_started_where_a_dotenv_is_reads_it(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TASKHUB_AUTH=nonsense\n")
    env = environment("memory://")
    done = taskhub(env, "serve", check=False, cwd=tmp_path)
    assert done.returncode == 2
    assert "TASKHUB_AUTH" in done.stderr
    env["TASKHUB_AUTH"] = "disabled"  # the environment overrides .env
    rows = shown(taskhub(env, "config", "show", cwd=tmp_path).stdout)
    assert rows["TASKHUB_AUTH"] == ("disabled", "environment")
