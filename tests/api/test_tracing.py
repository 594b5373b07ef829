"""OpenTelemetry traces: on only when OTEL_* variables ask, one trace a request."""

import subprocess
import sys

import pytest
from httpx import ASGITransport, AsyncClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind

from entrypoints.container import Container
from entrypoints.http.app import create_app
from entrypoints.http.tracing import tracing_wanted
from tests.api.helpers import create_task


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


async def test_a_request_makes_one_trace_with_its_sql_spans_inside_the_server_span(
    container: Container, token: str
) -> None:
    exporter = InMemorySpanExporter()
    app = create_app(container, span_exporter=exporter)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(
            transport=ASGITransport(app),
            base_url="http://taskhub",
            headers={"Authorization": f"Bearer {token}"},
        ) as http,
    ):
        task = await create_task(http)
        exporter.clear()
        assert (await http.get(f"/tasks/{task['id']}")).status_code == 200
        spans = exporter.get_finished_spans()

    assert len({span.context.trace_id for span in spans}) == 1
    [server] = [span for span in spans if span.kind is SpanKind.SERVER]
    assert server.attributes is not None
    assert server.attributes.get("http.route") == "/tasks/{task_id}"
    sql = [span for span in spans if "db.system" in (span.attributes or {})]
    assert len(sql) >= 2  # the token's lookup and the task's
    for span in sql:
        assert span.parent is not None
        assert span.parent.span_id == server.context.span_id


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "taskhub"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console,otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        (
            {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"},
            False,
        ),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "TRUE"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "false"}, True),
    ],
)
def test_tracing_is_on_only_when_otel_variables_ask_for_it(
    environ: dict[str, str], wanted: bool
) -> None:
    assert tracing_wanted(environ) is wanted


APP_IN_A_FRESH_PROCESS = """
import logging, sys
for blocked in BLOCKED:
    sys.modules[blocked] = None  # as if the otel extra were not installed
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
from entrypoints.container import build_container
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
create_app(build_container(Settings(database_url="memory://")))
print(sorted({m.split(".")[1] for m, v in sys.modules.items() if v and m.startswith(
    ("opentelemetry.sdk", "opentelemetry.instrumentation"))}))
"""


def _app_in_a_fresh_process(
    environ: dict[str, str], blocked: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            APP_IN_A_FRESH_PROCESS.replace("BLOCKED", repr(blocked)),
        ],
        env={"PATH": "/usr/bin:/bin", **environ},
        capture_output=True,
        text=True,
        check=True,
    )


def test_without_otel_variables_a_worker_imports_no_tracing_library() -> None:
    assert _app_in_a_fresh_process({}).stdout.strip() == "[]"
    asked = _app_in_a_fresh_process({"OTEL_TRACES_EXPORTER": "console"})
    assert asked.stdout.strip() == "['instrumentation', 'sdk']"


def test_tracing_asked_for_without_the_extra_says_so_in_one_line() -> None:
    done = _app_in_a_fresh_process(
        {"OTEL_TRACES_EXPORTER": "otlp"},
        blocked=("opentelemetry.sdk", "opentelemetry.instrumentation"),
    )
    said = [line for line in done.stderr.splitlines() if "otel" in line]
    assert len(said) == 1, done.stderr
    assert "taskhub[otel]" in said[0]
    assert done.stdout.strip() == "[]"
