"""What the OpenAPI document says beyond what FastAPI derives from the routes."""

from typing import Any

from entrypoints.http.errors import PROBLEM_JSON
from entrypoints.http.schemas import Problem, ValidationProblem

_DESCRIPTIONS = {
    400: "Malformed JSON",
    401: "No valid API token",
    413: "Request body too large",
    404: "Not found",
    409: "Conflict with the current state",
    422: "Validation failed",
    429: "Rate limit exceeded; see Retry-After",
}


def route_responses(*statuses: int, created: bool = False) -> dict[int | str, Any]:
    """The problem details a route can answer with, and a 201's Location header.

    Every route needs a token and is rate limited, so every route may answer
    401 and 429.
    """
    responses: dict[int | str, Any] = {
        status: {
            "model": ValidationProblem if status == 422 else Problem,
            "description": _DESCRIPTIONS[status],
        }
        for status in sorted({401, 429, *statuses})
    }
    if created:
        responses[201] = {
            "headers": {
                "Location": {
                    "description": "The path of the created resource.",
                    "schema": {"type": "string"},
                }
            }
        }
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
