"""Who is asking: the bearer token of every request, resolved to its owner."""

from typing import Annotated, Final

from dependency_injector.wiring import inject
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from application.identity import IdentityService
from domain.errors import Unauthenticated
from entrypoints.container import Container
from entrypoints.http.middleware import OWNER_ID
from entrypoints.http.provide import Provide

LOCAL_USER: Final = "local"

# auto_error=False: a missing or malformed header gets our own 401 problem,
# identical to the one for an unknown, revoked or expired token.
bearer = HTTPBearer(
    auto_error=False,
    description="An API token, as printed by `taskhub users create NAME` or "
    "`taskhub tokens create NAME`.",
)


@inject
async def current_owner(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    identity: Annotated[IdentityService, Depends(Provide[Container.identity_service])],
) -> int:
    """The id of the user the request acts for."""
    # Set by the app's lifespan; without it, fail closed: a token is required.
    implicit_owner: int | None = getattr(request.app.state, "implicit_owner", None)
    if implicit_owner is not None:  # TASKHUB_AUTH=disabled
        owner_id = implicit_owner
    elif credentials is None:
        raise Unauthenticated()
    else:
        owner_id = await identity.authenticate(credentials.credentials)
    # For the access log, which runs outside the app: the scope is shared.
    request.scope[OWNER_ID] = owner_id
    return owner_id


OwnerId = Annotated[int, Depends(current_owner)]
