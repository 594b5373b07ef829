"""Probes for load balancers and orchestrators. No token needed, no rate limit."""

import asyncio
import logging
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel

from entrypoints.http.errors import ProblemResponse, unavailable
from entrypoints.http.schemas import Problem
from entrypoints.outages import database_unavailable
from entrypoints.schema import schema_problem

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

PATHS = frozenset({"/healthz", "/readyz"})
READINESS_TIMEOUT = 5.0


class Status(BaseModel):
    status: Literal["ok"] = "ok"


_TOO_LARGE: dict[int | str, Any] = {
    413: {"model": Problem, "description": "Request body too large"}
}
_UNAVAILABLE: dict[int | str, Any] = {
    **_TOO_LARGE,
    503: {"model": Problem, "description": "Not ready; see detail and Retry-After"},
}


@router.get("/healthz", response_model=Status, responses=_TOO_LARGE)
async def healthz() -> Status:
    """The process is alive and answering."""
    return Status()


@router.get("/readyz", response_model=Status, responses=_UNAVAILABLE)
async def readyz(request: Request) -> Status | ProblemResponse:
    """The database answers and its schema is at the migrations' head."""
    container = request.app.state.container
    if container.config.backend() != "sql":
        return Status()
    try:
        async with asyncio.timeout(READINESS_TIMEOUT):
            problem = await schema_problem(container.engine())
    except Exception as error:
        # TimeoutError is an OSError, which database_unavailable counts.
        if not database_unavailable(error):
            raise
        logger.warning("Not ready: the database does not answer: %s", error)
        return unavailable("The database does not answer.")
    if problem is not None:
        return unavailable(problem)
    return Status()
