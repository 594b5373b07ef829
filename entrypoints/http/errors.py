"""Every error leaves as RFC 9457 problem details, mapped here once."""

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.routing import Match

from domain.errors import (
    Conflict,
    DomainError,
    IdempotencyKeyReused,
    InvalidValue,
    NotFound,
    RequestInProgress,
    Unauthenticated,
    VersionMismatch,
)
from entrypoints.logs import current_request_id
from entrypoints.outages import database_unavailable

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_TYPE = "urn:taskhub:problem:"
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

_DOMAIN_STATUS: list[tuple[type[DomainError], int, str, str]] = [
    (Unauthenticated, 401, "unauthenticated", "Unauthenticated"),
    (NotFound, 404, "not-found", "Not found"),
    (Conflict, 409, "conflict", "Conflict"),
    (InvalidValue, 422, "validation-error", "Validation failed"),
    (VersionMismatch, 412, "version-mismatch", "Precondition failed"),
    (IdempotencyKeyReused, 422, "idempotency-key-reused", "Idempotency key reused"),
]


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON


def problem(
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    errors: list[dict[str, str | None]] | None = None,
) -> ProblemResponse:
    body: dict[str, Any] = {
        "type": _TYPE + kind if kind else "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    request_id = current_request_id.get()
    if request_id is not None:
        body["request_id"] = request_id
    return ProblemResponse(body, status_code=status, headers=headers)


def _location_and_field(loc: tuple[int | str, ...]) -> tuple[str | None, str]:
    if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
        location, rest = str(loc[0]), loc[1:]
    else:
        location, rest = None, loc
    return location, ".".join(str(part) for part in rest) or "(body)"


def _field_error(
    field: str, location: str | None, message: str, kind: str
) -> dict[str, str | None]:
    """One entry of a 422's `errors`."""
    return {"field": field, "location": location, "message": message, "type": kind}


async def _request_validation(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    errors: list[dict[str, str | None]] = []
    for error in exc.errors():
        if error["type"] == "json_invalid":
            return problem(
                400,
                "The request body is not valid JSON.",
                kind="malformed-json",
                title="Malformed JSON",
            )
        location, field = _location_and_field(tuple(error["loc"]))
        message = error["msg"].removeprefix("Value error, ")
        errors.append(_field_error(field, location, message, error["type"]))
    fields = ", ".join(sorted({str(e["field"]) for e in errors}))
    return problem(
        422,
        f"The request has invalid values: {fields}.",
        kind="validation-error",
        title="Validation failed",
        errors=errors,
    )


async def _domain_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, DomainError)
    mapped = next((m for m in _DOMAIN_STATUS if isinstance(exc, m[0])), None)
    if mapped is None:  # a new branch of the tree that nobody mapped yet
        return await _unexpected(request, exc)
    _, status, kind, title = mapped
    errors: list[dict[str, str | None]] | None = None
    if isinstance(exc, InvalidValue):
        errors = [_field_error(exc.field, "body", exc.message, "invalid_value")]
    elif isinstance(exc, IdempotencyKeyReused):
        errors = [
            _field_error(
                "Idempotency-Key", "header", exc.message, "idempotency_key_reused"
            )
        ]
    headers: dict[str, str] | None = None
    if status == 401:  # the same answer for every reason a token fails
        headers = {"WWW-Authenticate": "Bearer"}
    elif isinstance(exc, RequestInProgress):
        headers = {"Retry-After": "1"}
    return problem(
        status, exc.message, kind=kind, title=title, errors=errors, headers=headers
    )


async def _http_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, HTTPException)
    detail = exc.detail
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No resource at {request.url.path}."
    headers = exc.headers
    if exc.status_code == 405:
        # Starlette names only the first route that matched the path; allow them all.
        allowed = _allowed_methods(request)
        headers = {**(headers or {}), "Allow": ", ".join(allowed)}
        detail = f"{request.method} is not allowed on {request.url.path}."
    return problem(exc.status_code, str(detail), headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    # Ask the routing itself, method by method, rather than reading its internals.
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.routes
        )
    ]


async def _database_error(request: Request, exc: Exception) -> ProblemResponse:
    if not database_unavailable(exc):
        return await _unexpected(request, exc)
    logger.error("Database unavailable: %s: %s", type(exc).__name__, exc)
    return unavailable("The database is unavailable or busy; retry shortly.")


def unavailable(detail: str) -> ProblemResponse:
    """503: a dependency is down or overloaded; the client may retry shortly."""
    return problem(503, detail, kind="unavailable", headers={"Retry-After": "1"})


def internal_error() -> ProblemResponse:
    """The answer to a bug: says nothing of what went wrong (the log does)."""
    return problem(500, "An unexpected error occurred; it has been logged.")


async def _unexpected(request: Request, exc: Exception) -> ProblemResponse:
    logger.exception("Unhandled error on %s %s", request.method, request.url.path)
    return internal_error()


def add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(HTTPException, _http_error)
    # Handled inside the middleware, so a 503 too has every header they add.
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(PoolTimeout, _database_error)
    app.add_exception_handler(OSError, _database_error)
    app.add_exception_handler(Exception, _unexpected)
