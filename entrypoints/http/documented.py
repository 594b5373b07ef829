"""The OpenAPI parameters FastAPI derives for a parameter's annotation, for
the parameters a route reads itself (query models, conditional headers) and
documents through `openapi_extra`."""

from typing import Any

from fastapi import FastAPI


def documented_parameters(annotation: Any, *, optional: bool) -> list[dict[str, Any]]:
    """What FastAPI documents for a route's parameter annotated `annotation`
    (with the default None when `optional`)."""
    probe = FastAPI()
    if optional:

        @probe.get("/")
        async def route(value: annotation = None) -> None:
            """Never served: only documented."""

    else:

        @probe.get("/")
        async def required(value: annotation) -> None:
            """Never served: only documented."""

    parameters: list[dict[str, Any]] = probe.openapi()["paths"]["/"]["get"][
        "parameters"
    ]
    return parameters
