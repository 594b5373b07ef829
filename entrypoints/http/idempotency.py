"""Idempotency-Key on POST: a retry replays the first response, with
`Idempotent-Replayed: true`, instead of creating a second resource."""

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Final

from fastapi import Header, Request, Response
from pydantic import BaseModel

from application.idempotency import Claim, IdempotencyService
from application.ports import StoredResponse

logger = logging.getLogger(__name__)

REPLAYED: Final = "Idempotent-Replayed"
_KEPT_HEADERS: Final = ("content-type", "location", "etag")

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[!-~]+$",
        description="Any unique string (a UUID, say) of visible ASCII characters. "
        "A retry with the same key and body within 24 hours replays the first "
        "response instead of creating again; the same key with another body is "
        "422, and a retry while the first request still runs is 409.",
    ),
]


def fingerprint(request: Request, body: BaseModel) -> str:
    """What makes two requests the same request: route and validated body."""
    canonical = json.dumps(
        [request.method, request.url.path, body.model_dump(mode="json")],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def idempotently(
    service: IdempotencyService,
    owner_id: int,
    key: str | None,
    request_fingerprint: Callable[[], str],
    carry_out: Callable[[], Awaitable[Response]],
) -> Response:
    """Carry the request out once per key; replay its response to retries.

    The fingerprint is taken only when there is a key: most requests have none.
    """
    if key is None:
        return await carry_out()
    outcome = await service.begin(owner_id, key, request_fingerprint())
    if isinstance(outcome, StoredResponse):
        return _replay(outcome)
    try:
        response = await carry_out()
    except BaseException:
        await _abandon(service, outcome)
        raise
    await service.finish(outcome, _stored(response))
    return response


async def _abandon(service: IdempotencyService, claim: Claim) -> None:
    # The request failed and created nothing, so a retry may carry it out. If
    # the key cannot be released now (the database is down), its lease lapses.
    try:
        await service.abandon(claim)
    except Exception:
        logger.warning("Could not release an idempotency key", exc_info=True)


def _stored(response: Response) -> StoredResponse:
    headers: list[Any] = [
        (name, value)
        for name, value in response.headers.items()
        if name in _KEPT_HEADERS
    ]
    return StoredResponse(response.status_code, tuple(headers), bytes(response.body))


def _replay(stored: StoredResponse) -> Response:
    response = Response(stored.body, status_code=stored.status)
    for name, value in stored.headers:
        response.headers[name] = value
    response.headers[REPLAYED] = "true"
    return response
