"""The FastAPI application factory."""

import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from fastapi import APIRouter, FastAPI

from entrypoints.container import Container, build_container
from entrypoints.http import openapi
from entrypoints.http.auth import LOCAL_USER
from entrypoints.http.cursors import Cursors, Paging
from entrypoints.http.errors import add_error_handlers
from entrypoints.http.middleware import install_middleware
from entrypoints.http.routes import health, projects, tasks
from entrypoints.http.tracing import install_tracing
from entrypoints.schema import schema_problem
from entrypoints.settings import Settings

if TYPE_CHECKING:
    from entrypoints.http.metrics import Metrics

logger = logging.getLogger(__name__)

FIRST_USER: Final = "admin"
METRICS_PATH: Final = "/metrics"


def create_app(
    container: Container | None = None,
    *,
    span_exporter: Any = None,
    freeze_at_startup: bool = False,
) -> FastAPI:
    """Build the app around `container` (by default one wired from the settings).

    `span_exporter` receives the traces instead of the exporter the OTEL_*
    variables name (for tests). `freeze_at_startup`: see `served_app`.
    """
    container = container or build_container()

    settings = Settings.model_validate(container.config())
    metrics = _metrics(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = container.engine() if settings.backend == "sql" else None
        if metrics is not None and engine is not None:
            metrics.watch_pool(engine)
        stop_tracing = None
        if trace_sql is not None:
            stop_tracing = trace_sql(engine)
            # SQLAlchemy's instrumentation sees only statements that its
            # sessions run: traced units of work use them, not the driver.
            container.driver_sessions.override(container.session_factory)
            container.driver_read_sessions.override(container.read_session_factory)
        if engine is not None:
            problem = await schema_problem(engine)
            if problem is not None:
                raise RuntimeError(problem)
        app.state.paging = Paging(
            Cursors(await _cursor_secret(container, settings)), settings.list_count_cap
        )
        app.state.implicit_owner = await _implicit_owner(container, settings)
        if settings.auth == "required" and settings.first_token_file:
            await _first_user(container, Path(settings.first_token_file))
        if freeze_at_startup:
            gc.collect()
            gc.freeze()
        yield
        if freeze_at_startup:
            gc.unfreeze()
        if stop_tracing is not None:
            stop_tracing()
            container.driver_sessions.reset_override()
            container.driver_read_sessions.reset_override()
        if metrics is not None:
            from entrypoints.http.metrics import process_stopped

            process_stopped()
        if container.engine.initialized:
            await container.engine().dispose()

    app = FastAPI(
        title="taskhub",
        summary="Tasks and projects over REST.",
        version="0.1.0",
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry hooks, off: taskhub traces with the
        # instrumentation that OTEL_* switches on (entrypoints.http.tracing), and
        # the hooks asked the global providers on every request whether they were
        # configured, a tenth of a cheap request's time.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.container = container
    install_middleware(
        app,
        settings,
        unlimited=health.PATHS | {METRICS_PATH},
        metrics=metrics,
        # Not a provider of the container: its call chain costs 2 µs a request.
        hold=(lambda: container.driver().hold()) if settings.backend == "sql" else None,
    )
    add_error_handlers(app)
    for router in (health.router, tasks.router, projects.router):
        _add_routes(app, router)
    if metrics is not None and not settings.metrics_address:
        # No token: scrapers rarely have one; operators keep it from the public
        # at the proxy, or serve it on a separate address (README).
        app.add_route(
            METRICS_PATH, metrics.endpoint, methods=["GET"], include_in_schema=False
        )
    app.openapi = lambda: openapi.polish(FastAPI.openapi(app))  # type: ignore[method-assign]
    trace_sql = install_tracing(app, os.environ, span_exporter)
    return app


def served_app() -> FastAPI:
    """The app `taskhub serve` runs: each worker process freezes what it has
    built by the end of its start-up (gc.freeze).

    Modules, routes, compiled statements and the container live as long as
    the process, yet every full collection of the cyclic garbage collector
    walked them all again: a pause of about 100 ms every few thousand
    requests in process (8 clients, get-one or a listing), 45-50 µs a request
    on average. Frozen, they are left out of
    collections; what requests make is collected as before. Tests build
    many apps in one process and use `create_app`, which does not freeze:
    frozen objects are never collected, even once garbage.
    """
    return create_app(freeze_at_startup=True)


def _metrics(settings: Settings) -> "Metrics | None":
    if not settings.metrics:
        return None
    # Imported here, not above: without metrics a worker carries no
    # prometheus-client.
    from entrypoints.http.metrics import Metrics

    return Metrics()


def _add_routes(app: FastAPI, router: APIRouter) -> None:
    """`router`'s routes as the app's own, in order.

    `include_router(router)` without options would add nothing to them: a
    router's own prefix, tags, dependencies and responses are in its routes
    already. But FastAPI 0.165 routes a request to an included route through
    the router's inclusion: it probes every router included before, then
    matches the route twice (once to choose the router, once inside it). The
    app's own routes are matched once: 18 µs less a get-one and 20 a listing
    (in one process, of 299 and 543 µs), with the same answers (the 404s, the
    405s and their Allow, the redirects, the OpenAPI document). What the
    routes give up: FastAPI's `app.dependency_overrides` (an included route's
    handler is built for the app that includes it). taskhub's services come
    from the container, so tests override its providers instead (STYLE.md).
    """
    app.router.routes.extend(router.routes)


async def _cursor_secret(container: Container, settings: Settings) -> bytes:
    """The setting's key if there is one, else the database's (read once)."""
    if settings.cursor_secret and settings.cursor_secret.get_secret_value():
        return settings.cursor_secret.get_secret_value().encode()
    secret: bytes = await container.cursor_secret()
    return secret


async def _implicit_owner(container: Container, settings: Settings) -> int | None:
    """With TASKHUB_AUTH=disabled every request acts as one local user."""
    if settings.auth == "required":
        return None
    logger.warning(
        "TASKHUB_AUTH=disabled: every request acts as the user %r, unauthenticated. "
        "For local demos only; never expose this server.",
        LOCAL_USER,
    )
    return await container.identity_service().ensure_user(LOCAL_USER)


async def _first_user(container: Container, token_file: Path) -> None:
    """On a fresh install, make a user and hand its token over in a private file."""
    issued = await container.identity_service().create_first_user(FIRST_USER)
    if issued is None:
        return
    logger.warning(
        "Created the user %r; its API token is in %s. Send it as "
        "'Authorization: Bearer <token>'.",
        FIRST_USER,
        _write_private(token_file, issued.secret + "\n"),
    )


def _write_private(path: Path, text: str) -> Path:
    """Write `text` to a file only its owner may read; return its full path."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # also when the file was there already
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    return path.resolve()
