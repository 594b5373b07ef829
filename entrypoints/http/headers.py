"""Free-form optional request headers, read by the route itself.

A header declared as a route's parameter (`Annotated[str | None, Header()]`)
costs every request FastAPI's reading of it, which inspects the parameter's
annotation again each time (FastAPI 0.165), whether the header was sent or
not: 20-30 µs in process, about as much as a dependency. The conditional
headers (If-Match, If-None-Match) are any text the route parses itself, so
there is nothing to validate: `OptionalHeader` looks the header up, and
documents it as FastAPI would, for the route's `openapi_extra`.

A header with constraints stays a parameter: FastAPI reports its errors
together with the body's.
"""

from functools import cached_property
from typing import Any, get_args

from fastapi import Request
from fastapi.params import Header

from entrypoints.http.documented import documented_parameters


class OptionalHeader:
    """`OptionalHeader(Annotated[str | None, Header(alias=NAME, ...)])`; call
    it with a request for the header's value, None when it was not sent."""

    def __init__(self, annotated: Any) -> None:
        header = next(a for a in get_args(annotated)[1:] if isinstance(a, Header))
        if not isinstance(header.alias, str) or header.metadata:
            raise TypeError("Only a free-form header named by Header(alias=...).")
        self.name = header.alias
        self._annotated = annotated

    @cached_property
    def openapi(self) -> dict[str, Any]:
        """The route's `openapi_extra`; built when a route asks (the CLI, which
        imports this module without the routes, never does)."""
        return {"parameters": documented_parameters(self._annotated, optional=True)}

    def __call__(self, request: Request) -> str | None:
        return request.headers.get(self.name)
