"""Log lines through the renderer `taskhub serve` uses: one access line per
request, JSON or console, and nothing secret in any of them."""

import io
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from entrypoints.container import Container, build_container
from entrypoints.http.app import create_app
from entrypoints.logs import (
    ACCESS_LOGGER,
    LogFormat,
    current_request_id,
    formatter,
    log_config,
)
from tests.api.helpers import create_task
from tests.conftest import test_settings

Json = dict[str, Any]

CLIENT_LOGGERS = ("httpx", "httpcore")


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@contextmanager
def captured(log_format: LogFormat, level: str = "info") -> Iterator[io.StringIO]:
    """Everything logged meanwhile, as `taskhub serve`'s logging writes it."""
    levels = {
        logging.getLogger(name): config["level"]
        for name, config in log_config(level, log_format)["loggers"].items()
    }
    was = {logger: logger.level for logger in levels}
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(formatter(log_format))
    # The test's own HTTP client logs the URLs it calls: not the server's log.
    handler.addFilter(lambda record: not record.name.startswith(CLIENT_LOGGERS))
    root = logging.getLogger()
    root.addHandler(handler)
    for logger, logger_level in levels.items():
        logger.setLevel(logger_level)
    try:
        yield output
    finally:
        root.removeHandler(handler)
        for logger, logger_level in was.items():
            logger.setLevel(logger_level)


def json_lines(output: io.StringIO) -> list[Json]:
    return [json.loads(line) for line in output.getvalue().splitlines()]


def access_lines(output: io.StringIO) -> list[Json]:
    return [line for line in json_lines(output) if line["logger"] == ACCESS_LOGGER]


async def test_a_routed_request_writes_one_access_line_naming_its_route_template(
    client: AsyncClient, owner_id: int
) -> None:
    task = await create_task(client)
    with captured("json") as output:
        response = await client.get(f"/tasks/{task['id']}?fields=secret-ish")
    assert response.status_code == 200
    [line] = access_lines(output)
    duration = line.pop("duration_ms")
    assert isinstance(duration, float)
    assert duration >= 0
    assert line.pop("timestamp")
    assert line == {
        "event": "request",
        "level": "info",
        "logger": ACCESS_LOGGER,
        "method": "GET",
        "route": "/tasks/{task_id}",
        "status": 200,
        "request_id": response.headers["X-Request-ID"],
        "owner_id": owner_id,
    }
    assert "secret-ish" not in output.getvalue()


async def test_an_unknown_path_is_logged_under_a_fixed_placeholder(
    client: AsyncClient,
) -> None:
    with captured("json") as output:
        response = await client.get("/tasks/1/no-such-thing/hunter2")
    assert response.status_code == 404
    [line] = access_lines(output)
    assert (line["route"], line["status"]) == ("<unmatched>", 404)
    assert "hunter2" not in output.getvalue()


async def test_a_refused_token_is_logged_as_a_401_without_an_owner(
    app: FastAPI,
) -> None:
    async with AsyncClient(
        transport=ASGITransport(app), base_url="http://taskhub"
    ) as anonymous:
        with captured("json") as output:
            response = await anonymous.get(
                "/tasks", headers={"Authorization": "Bearer taskhub_made-up"}
            )
    assert response.status_code == 401
    [line] = access_lines(output)
    assert (line["route"], line["status"], line["owner_id"]) == ("/tasks", 401, None)


async def test_a_request_turned_away_before_routing_still_names_its_route(
    container: Container,
) -> None:
    settings = test_settings(
        str(container.config.database_url()), auth="disabled", rate_limit="1/minute"
    )
    app = create_app(build_container(settings))
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app), base_url="http://taskhub") as http,
    ):
        with captured("json") as output:
            statuses = [(await http.get("/tasks/7")).status_code for _ in range(2)]
    assert statuses == [404, 429]
    lines = access_lines(output)
    assert [(x["route"], x["status"]) for x in lines] == [
        ("/tasks/{task_id}", 404),
        ("/tasks/{task_id}", 429),
    ]


async def test_no_token_and_no_request_body_ever_reach_the_log(
    app: FastAPI, client: AsyncClient, token: str
) -> None:
    body = "a title nobody may read in a log"
    with captured("json", level="debug") as output:
        assert (await client.post("/tasks", json={"title": body})).status_code == 201
        invalid = await client.post("/tasks", json={"title": body, "priority": body})
        assert invalid.status_code == 422
        async with AsyncClient(
            transport=ASGITransport(app), base_url="http://taskhub"
        ) as other:
            refused = await other.get(
                "/tasks", headers={"Authorization": f"Bearer {token}x"}
            )
            assert refused.status_code == 401
    logged = output.getvalue()
    assert len(access_lines(output)) == 3
    assert token not in logged
    assert body not in logged


async def test_json_lines_each_parse_and_carry_the_request_id_they_were_written_in(
    client: AsyncClient,
) -> None:
    with captured("json") as output:
        await client.get("/tasks")
        token = current_request_id.set("inside-a-request")
        try:
            logging.getLogger("taskhub.test").warning("during %s", "work")
        finally:
            current_request_id.reset(token)
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("taskhub.test").exception("failed")
    lines = json_lines(output)  # fails on any line that is not JSON
    assert len(lines) >= 3
    [during] = [line for line in lines if line["event"] == "during work"]
    assert (during["level"], during["request_id"]) == ("warning", "inside-a-request")
    [failed] = [line for line in lines if line["event"] == "failed"]
    assert "ValueError: boom" in failed["exception"]


async def test_console_lines_are_for_people_not_json(client: AsyncClient) -> None:
    with captured("console") as output:
        response = await client.get("/tasks")
    [line] = [x for x in output.getvalue().splitlines() if ACCESS_LOGGER in x]
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)
    assert "route=/tasks" in line
    assert f"request_id={response.headers['X-Request-ID']}" in line


def test_auto_picks_json_when_stderr_is_no_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # as under a supervisor
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(formatter("auto"))
    record = logging.makeLogRecord({"name": "x", "levelno": 20, "msg": "hello"})
    assert json.loads(handler.format(record))["event"] == "hello"
