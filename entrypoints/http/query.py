"""Query-string models, read with one validation per request.

FastAPI reads `Annotated[Model, Query()]` field by field, and for each field
inspects its annotation again on every request (FastAPI 0.165): a sixth of a
listing's time in py-spy, for the same answer each time. `query_model(Model)`
gives the same thing for less: a function that validates the query string
with `Model` in one call, which the route calls itself (a dependency of its
own would cost FastAPI's solving of it on every request), and the OpenAPI
parameters FastAPI itself derives from `Model`, for the route's
`openapi_extra`. A request gets the same model, and a bad one the same 422
errors, located in the query.
"""

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from entrypoints.http.documented import documented_parameters

M = TypeVar("M", bound=BaseModel)

Parse = Callable[[Request], M]


def query_model(model: type[M]) -> tuple[Parse[M], dict[str, Any]]:
    """A function that reads a request's query string into `model`, and the
    `openapi_extra` that documents its fields as query parameters."""

    def parse(request: Request) -> M:
        # A repeated name counts once, with its last value, as FastAPI reads
        # a single-valued field; a name `model` lacks is left for its `extra`.
        try:
            return model.model_validate(dict(request.query_params))
        except ValidationError as error:
            raise RequestValidationError(
                [
                    {**e, "loc": ("query", *e["loc"])}
                    for e in error.errors(include_url=False)
                ]
            ) from None

    docs = documented_parameters(Annotated[model, Query()])
    return parse, {"parameters": docs}
