"""ASGI middleware around the app: request ids, access log and metrics, rate
limits, body size, security headers, CORS.

Plain ASGI classes rather than BaseHTTPMiddleware: they run on every request,
and only look at the scope and the response's start message.
"""

import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final, Protocol

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entrypoints.http.errors import internal_error, problem
from entrypoints.http.ratelimit import (
    RATE_LIMIT_HEADERS,
    Budget,
    RequestCounter,
    address_key,
    client_key,
    parse_limit,
)
from entrypoints.logs import ACCESS_LOGGER, current_request_id, request_id_from
from entrypoints.settings import Settings

if TYPE_CHECKING:
    from entrypoints.http.metrics import Metrics

API_CSP = "default-src 'none'; frame-ancestors 'none'"

# Where auth leaves the id of the user a request acts for, for the access log.
OWNER_ID: Final = "taskhub.owner_id"

# The route label of a path that no route matches: never the path itself, which
# the client chooses (a secret in it would land in the log, and every distinct
# path would be a new time series).
UNMATCHED_ROUTE: Final = "<unmatched>"

# Other methods are counted as one, for the same reason.
_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
)

access_log = logging.getLogger(ACCESS_LOGGER)


def with_headers(send: Send, headers: Mapping[str, str]) -> Send:
    """`send`, setting `headers` on the response it starts (replacing any the
    response has of those names, as `MutableHeaders.update` does)."""
    added = [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
    ]
    names = frozenset(name for name, _ in added)

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            set_headers(message, added, names)
        await send(message)

    return send_with_headers


def set_headers(
    start: Message, added: list[tuple[bytes, bytes]], names: frozenset[bytes]
) -> None:
    """Set `added` (lower-case `names`) on a response's start message,
    replacing any it has of those names, as `MutableHeaders.update` does."""
    raw = start.get("headers", ())
    if any(name in names for name, _ in raw):
        MutableHeaders(scope=start).update(
            {name.decode("latin-1"): value.decode("latin-1") for name, value in added}
        )
    else:  # what update does when nothing is replaced, in a third less time
        start["headers"] = [*raw, *added]


class RequestId:
    """Give each request an id: the client's X-Request-ID if it is safe, else a
    new one. It is echoed on the response, and problem bodies and log lines
    written while the request runs carry it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(Headers(scope=scope).get("x-request-id"))
        token = current_request_id.set(request_id)
        await self.app(scope, receive, with_headers(send, {"X-Request-ID": request_id}))
        # Not reset when the app raised: the server's error handler, outside
        # every middleware, logs the error with the id still set.
        current_request_id.reset(token)


class Observe:
    """Write one access line per request, and count it in the metrics.

    The line names the route template (`/tasks/{task_id}`), never the raw path,
    query or body; the owner is the user auth resolved, or null. It runs inside
    RequestId, so the line carries the request's id, and outside everything
    else, so that a 429 or a 413 is logged and counted too.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Sequence[BaseRoute],
        metrics: "Metrics | None",
    ) -> None:
        self.app = app
        self.routes = routes
        self.metrics = metrics
        self._leaves: list[BaseRoute] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: the server answers a crash so

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        metrics = self.metrics
        if metrics is not None:
            metrics.in_flight.inc()
        try:
            await self.app(scope, receive, noting_status)
        finally:
            seconds = time.perf_counter() - started
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            route = self._route_of(scope)
            if metrics is not None:
                metrics.in_flight.dec()
                metrics.observe(method, route, status, seconds)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "request",
                    extra={
                        "method": method,
                        "route": route,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 3),
                        "owner_id": scope.get(OWNER_ID),
                    },
                )

    def _route_of(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            # Turned away before routing (429, 413): match as the router would.
            for candidate in self._leaf_routes():
                if candidate.matches(scope)[0] is not Match.NONE:
                    route = candidate
                    break
        path = getattr(route, "path", None)
        return path if isinstance(path, str) else UNMATCHED_ROUTE

    def _leaf_routes(self) -> list[BaseRoute]:
        if self._leaves is None:  # the routes are all in place by the first call
            self._leaves = list(_leaves_of(self.routes))
        return self._leaves


def _leaves_of(routes: Sequence[BaseRoute]) -> Iterator[BaseRoute]:
    """The routes with a path, through FastAPI's included routers."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _leaves_of(included.routes)
        elif isinstance(getattr(route, "path", None), str):
            yield route


class SecurityHeaders:
    """Tell browsers not to sniff content types, and let API responses load nothing.

    No API response needs scripts, styles or frames, even when a browser shows it.
    The Swagger UI and ReDoc pages load scripts from a CDN and run inline ones, so
    they go without a CSP.
    """

    def __init__(self, app: ASGIApp, *, docs_paths: frozenset[str]) -> None:
        self.app = app
        self.docs_paths = docs_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {"X-Content-Type-Options": "nosniff"}
        if scope["path"] not in self.docs_paths:
            headers["Content-Security-Policy"] = API_CSP
        await self.app(scope, receive, with_headers(send, headers))


class RateLimit:
    """Spend one request of the client's budget; answer 429 once it is spent.

    Every response gets RateLimit-Limit, -Remaining and -Reset (seconds), unless
    the count failed and the request went through uncounted.

    A made-up token would open a fresh budget of its own, so a request whose
    token is refused (401) is also counted against its address, as if it had
    sent no token. Once an address has spent that budget, its requests with a
    token are turned away too until the window passes. Which addresses are
    blocked is remembered in this process, so the happy path costs no second
    count; other workers learn it from their own next refused token.
    """

    def __init__(
        self, app: ASGIApp, *, counter: RequestCounter, exempt: frozenset[str]
    ) -> None:
        self.app = app
        self.counter = counter
        self.exempt = exempt
        self._blocked: dict[str, tuple[float, Budget]] = {}  # address -> until

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        key, address = client_key(scope), address_key(scope)
        blocked = self._still_blocked(address) if key != address else None
        budget = blocked or await self.counter.spend(key)
        if budget is None:
            await self.app(scope, receive, send)
        elif not budget.allowed:
            await self._refuse(budget, scope, receive, send)
        else:
            status = await _status_of(self.app, scope, receive, send, budget)
            if status == 401 and key != address:
                await self._count_refused_token(address)

    async def _count_refused_token(self, address: str) -> None:
        budget = await self.counter.spend(address)
        if budget is not None and (not budget.allowed or budget.remaining == 0):
            until = time.monotonic() + budget.reset
            if len(self._blocked) > 10_000:  # forget the addresses let go since
                now = time.monotonic()
                self._blocked = {a: b for a, b in self._blocked.items() if b[0] > now}
            self._blocked[address] = (until, budget)

    def _still_blocked(self, address: str) -> Budget | None:
        entry = self._blocked.get(address)
        if entry is None:
            return None
        until, budget = entry
        left = math.ceil(until - time.monotonic())
        if left <= 0:
            del self._blocked[address]
            return None
        return budget._replace(allowed=False, remaining=0, reset=left)

    async def _refuse(
        self, budget: Budget, scope: Scope, receive: Receive, send: Send
    ) -> None:
        limit = self.counter.limit
        response = problem(
            429,
            f"More than {limit.amount} requests in {limit.get_expiry()} s; "
            f"retry in {budget.reset} s.",
            kind="rate-limited",
            title="Too many requests",
            headers={**budget.headers(), "Retry-After": str(budget.reset)},
        )
        await response(scope, receive, send)


async def _status_of(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, budget: Budget
) -> int | None:
    """Run `app` with the budget's headers on its response; return its status."""
    status: int | None = None
    added = budget.raw_headers()

    async def noting_status(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            set_headers(message, added, RATE_LIMIT_HEADERS)
        await send(message)

    await app(scope, receive, noting_status)
    return status


class BodySizeLimit:
    """Answer 413 to a request body over `max_bytes`, before anything parses it.

    A declared Content-Length is checked up front (the server delivers no more
    than it declares). A body without one is read here, counting, and refused as
    soon as it runs over; one within the limit is handed on as read (FastAPI
    holds a whole JSON body in memory to parse it anyway).
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if length.isdecimal():
            if int(length) > self.max_bytes:
                await self._too_large(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            more = message.get("more_body", False)
        read: list[Message] = [{"type": "http.request", "body": bytes(body)}]

        async def replay() -> Message:
            return read.pop() if read else await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413,
            f"The request body is larger than {self.max_bytes} bytes.",
            kind="body-too-large",
            title="Request body too large",
        )
        await response(scope, receive, send)


class Holding(Protocol):
    """A connection kept for a request's units of work (adapters' `Held`)."""

    async def release(self) -> None: ...

    async def end(self) -> None: ...


class OneConnection:
    """Each request's units of work take one pooled connection between them.

    A request with a token reads the token, then runs its use case: two units
    of work, one after the other. The connection the first ends with is kept
    for the second (see `hold`), which saves a pool checkout and checkin (about
    a tenth of a get-one's CPU in production). It goes back to the pool when
    the response starts, so a client slow to read its response holds none.
    """

    def __init__(self, app: ASGIApp, *, hold: Callable[[], Holding]) -> None:
        self.app = app
        self.hold = hold

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held = self.hold()

        async def release_then_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                await held.release()
            await send(message)

        try:
            await self.app(scope, receive, release_then_send)
        finally:
            await held.end()


class UnhandledErrors:
    """Answer an unhandled exception with a 500 inside the layers above, re-raise.

    Starlette runs the app's `Exception` handler in ServerErrorMiddleware, outside
    every `add_middleware` layer, so its 500 would leave without rate limit,
    security or CORS headers. Re-raising keeps the logging as it was: the app's
    handler and the server still log the error, and send nothing more.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_noting_start)
        except Exception:
            if not started:  # the same body as the app's own handler gives
                await internal_error()(scope, receive, send)
            raise


def install_middleware(
    app: FastAPI,
    settings: Settings,
    *,
    unlimited: frozenset[str] = frozenset(),
    metrics: "Metrics | None" = None,
    hold: Callable[[], Holding] | None = None,
) -> None:
    """Wrap `app` in the middleware `settings` ask for.

    From the outside in: the request id, which every response and log line
    carries; the access log and metrics, which see every answer; security
    headers (on everything, CORS preflights too); CORS, so that a browser can
    read even a 429 or a 413; the rate limit, which turns a client over budget
    away before its body is read, and still counts and
    labels requests refused as too large; the body size limit; and the 500
    renderer, so that a crash too passes through all of the above. CORS answers
    preflights itself, so they cost no budget and carry no RateLimit-* headers.
    """
    # Each add_middleware wraps the layers added before it: innermost first.
    if hold is not None:
        app.add_middleware(OneConnection, hold=hold)
    app.add_middleware(UnhandledErrors)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    limit = parse_limit(settings.rate_limit)
    if limit is not None:
        counter = RequestCounter(limit, settings.redis_url)
        app.add_middleware(RateLimit, counter=counter, exempt=unlimited)
        _close_at_shutdown(app, counter.close)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "If-None-Match",
                "Idempotency-Key",
                "X-Request-ID",
            ],
            expose_headers=[
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "Retry-After",
                "Location",
                "ETag",
                "X-Request-ID",
                "Idempotent-Replayed",
            ],
        )
    docs = (app.docs_url, app.swagger_ui_oauth2_redirect_url, app.redoc_url)
    app.add_middleware(SecurityHeaders, docs_paths=frozenset(p for p in docs if p))
    app.add_middleware(Observe, routes=app.router.routes, metrics=metrics)
    app.add_middleware(RequestId)


def _close_at_shutdown(app: FastAPI, close: Callable[[], None]) -> None:
    """Call `close` when the app's lifespan ends.

    Wrapping the router's lifespan (not handling lifespan messages in a middleware)
    also covers callers that enter `app.router.lifespan_context` directly, as the
    tests do.
    """
    lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def closing(running: Any) -> AsyncIterator[Any]:
        try:
            async with lifespan(running) as state:
                yield state
        finally:
            close()

    app.router.lifespan_context = closing
