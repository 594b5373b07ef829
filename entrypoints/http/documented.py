"""The OpenAPI parameters FastAPI derives for a parameter's annotation, for
the parameters a route reads itself (its query model) and documents through
`openapi_extra`."""

from typing import Any

from fastapi import FastAPI


def documented_parameters(annotation: Any) -> list[dict[str, Any]]:
    """What FastAPI documents for a route's parameter annotated `annotation`."""
    probe = FastAPI()

    @probe.get("/")
    async def route(value: annotation) -> None:
        """Never served: only documented."""

    parameters: list[dict[str, Any]] = probe.openapi()["paths"]["/"]["get"][
        "parameters"
    ]
    return parameters
