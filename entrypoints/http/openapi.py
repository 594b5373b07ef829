"""What the OpenAPI document says beyond what FastAPI derives from the routes."""

from typing import Any

from entrypoints.http.errors import PROBLEM_JSON
from entrypoints.http.schemas import Problem, ValidationProblem

_DESCRIPTIONS = {
    304: "Not modified: the ETag in If-None-Match is current",
    400: "Malformed JSON",
    401: "No valid API token",
    413: "Request body too large",
    404: "Not found",
    409: "Conflict with the current state",
    422: "Validation failed",
    412: "If-Match names no current ETag; fetch the entity again",
    429: "Rate limit exceeded; see Retry-After",
    503: "The database is unavailable or busy; see Retry-After",
}
_HEADER = {"schema": {"type": "string"}}
_ETAG = {"ETag": {"description": "The entity's version, quoted.", **_HEADER}}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", **_HEADER}}


def route_responses(
    *statuses: int, created: bool = False, etag: bool = False
) -> dict[int | str, Any]:
    """The problem details a route can answer with, and its success's headers.

    Every route needs a token, is rate limited and uses the database, so every
    route may answer 401, 429 and 503; and any request may come with a body, so
    every route may answer 413.
    """
    responses: dict[int | str, Any] = {}
    for status in sorted({401, 413, 429, 503, *statuses}):
        response: dict[str, Any] = {"description": _DESCRIPTIONS[status]}
        if status == 304:
            response["headers"] = _ETAG
        else:
            response["model"] = ValidationProblem if status == 422 else Problem
        if status in (429, 503):
            response["headers"] = _RETRY_AFTER
        responses[status] = response
    if created:
        location = {"description": "The path of the created resource.", **_HEADER}
        replayed = {
            "description": "`true` on a replay for a repeated Idempotency-Key.",
            **_HEADER,
        }
        responses[201] = {
            "headers": {"Location": location, **_ETAG, "Idempotent-Replayed": replayed}
        }
    elif etag:
        responses[200] = {"headers": _ETAG}
    return responses


def polish(schema: dict[str, Any]) -> dict[str, Any]:
    """Summaries from the routes' docstrings; error bodies as problem+json."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            if "description" in operation:
                operation["summary"] = operation.pop("description")
            for code, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if code.startswith(("4", "5")) and "application/json" in content:
                    content[PROBLEM_JSON] = content.pop("application/json")
    return schema
