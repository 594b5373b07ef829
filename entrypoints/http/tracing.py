"""OpenTelemetry traces of requests and their SQL, switched on by OTEL_* variables.

Nothing here imports opentelemetry unless tracing is on: a worker without it
carries none of it (the `otel` extra is optional).
"""

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger(__name__)

_OTLP_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_SUPPORTED_EXPORTERS = frozenset({"otlp", "console"})


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    """Whether the OTEL_* variables ask for traces.

    The specification's default exporter is `otlp` to localhost, but tracing is
    on only when asked for, by name: OTEL_TRACES_EXPORTER other than `none`, or
    an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT or its _TRACES_ variant). And
    never with OTEL_SDK_DISABLED=true.
    """
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = _exporter_names(environ)
    if exporters is not None:
        return bool(exporters)
    return any(environ.get(name, "").strip() for name in _OTLP_ENDPOINTS)


def _exporter_names(environ: Mapping[str, str]) -> list[str] | None:
    """OTEL_TRACES_EXPORTER as a list (empty for `none`), None when unset."""
    value = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not value:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    return [] if names == ["none"] else names


Shutdown = Callable[[], None]


def install_tracing(
    app: FastAPI, environ: Mapping[str, str], exporter: Any = None
) -> "Callable[[AsyncEngine | None], Shutdown] | None":
    """Trace `app` if the environment asks for it (or `exporter` is given).

    Returns what the lifespan calls with the engine once it exists (to trace its
    SQL too), which returns what it calls at shutdown; None when tracing is off.
    """
    if exporter is None and not tracing_wanted(environ):
        return None
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SimpleSpanProcessor,
        )
    except ImportError as error:
        logger.warning(
            "Tracing is asked for by OTEL_* variables but is off: the `otel` extra "
            "is not installed (pip install 'taskhub[otel]'); missing %s.",
            error.name,
        )
        return None

    attributes = {}
    if not environ.get("OTEL_SERVICE_NAME") and "service.name=" not in environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    ):
        attributes[SERVICE_NAME] = "taskhub"
    provider = TracerProvider(resource=Resource.create(attributes))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        for made in _exporters(environ):
            provider.add_span_processor(BatchSpanProcessor(made))
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)

    def trace_sql(engine: "AsyncEngine | None") -> Shutdown:
        instrumentor = SQLAlchemyInstrumentor()
        if engine is not None:
            # The instrumentation declares SQLAlchemy < 2.1 though the engine
            # events it listens to are unchanged in 2.1 (the tests check the
            # spans): without skipping the check it instruments nothing.
            instrumentor.instrument(
                engine=engine.sync_engine,
                tracer_provider=provider,
                skip_dep_check=True,
            )

        def shutdown() -> None:
            if engine is not None:
                instrumentor.uninstrument()
            provider.shutdown()  # sends the spans still queued

        return shutdown

    return trace_sql


def _exporters(environ: Mapping[str, str]) -> list[Any]:
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    made: list[Any] = []
    for name in _exporter_names(environ) or ["otlp"]:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter,
            )

            protocol = environ.get(
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            )
            if protocol != "http/protobuf":
                logger.warning(
                    "OTLP protocol %r is not supported; sending http/protobuf.",
                    protocol,
                )
            made.append(OTLPSpanExporter())
        elif name == "console":
            made.append(ConsoleSpanExporter())
        else:
            logger.warning(
                "OTEL_TRACES_EXPORTER names %r, which taskhub does not ship; "
                "supported: %s.",
                name,
                ", ".join(sorted(_SUPPORTED_EXPORTERS)),
            )
    return made
