"""PlannedRoute on small apps: what FastAPI would do, the plan does or leaves
to FastAPI (entrypoints.http.planned)."""

from typing import Annotated

from fastapi import APIRouter, Cookie, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from httpx import ASGITransport, AsyncClient

from entrypoints.http.planned import PlannedRoute


async def who(request: Request) -> str:
    return request.headers.get("x-who", "nobody")


Who = Annotated[str, Depends(who)]


def _router() -> APIRouter:
    router = APIRouter(route_class=PlannedRoute)

    @router.get("/items/{item_id}")
    async def item(item_id: int, owner: Who) -> Response:
        return JSONResponse({"id": item_id, "owner": owner})

    @router.get("/cookie")
    async def cookie(owner: Who, flavour: Annotated[str, Cookie()]) -> Response:
        return JSONResponse({"flavour": flavour, "owner": owner})

    @router.get("/plain")
    async def plain(owner: Who) -> dict[str, str]:
        return {"owner": owner}

    return router


def _client(app: FastAPI) -> AsyncClient:
    return AsyncClient(transport=ASGITransport(app), base_url="http://t")


async def test_a_planned_route_answers_as_its_endpoint_says() -> None:
    app = FastAPI()
    app.include_router(_router())
    async with _client(app) as client:
        ok = await client.get("/items/3", headers={"x-who": "ann"})
        invalid = await client.get("/items/three")
    assert ok.json() == {"id": 3, "owner": "ann"}
    assert invalid.status_code == 422
    assert invalid.json()["detail"][0]["loc"] == ["path", "item_id"]


async def test_the_dependencies_of_an_inclusion_still_run() -> None:
    async def members_only(request: Request) -> None:
        if request.headers.get("x-who") != "member":
            raise HTTPException(403)

    app = FastAPI()
    app.include_router(_router(), dependencies=[Depends(members_only)])
    async with _client(app) as client:
        refused = await client.get("/items/3", headers={"x-who": "ann"})
        admitted = await client.get("/items/3", headers={"x-who": "member"})
    assert refused.status_code == 403
    assert admitted.json() == {"id": 3, "owner": "member"}


async def test_dependency_overrides_are_honoured() -> None:
    app = FastAPI()
    app.include_router(_router())

    async def someone_else() -> str:
        return "override"

    app.dependency_overrides[who] = someone_else
    async with _client(app) as client:
        response = await client.get("/items/3", headers={"x-who": "ann"})
    assert response.json() == {"id": 3, "owner": "override"}


async def test_routes_the_plan_does_not_know_keep_fastapis_handler() -> None:
    router = _router()
    by_path = {r.path: r for r in router.routes if isinstance(r, PlannedRoute)}
    # A cookie parameter, and an endpoint that returns a dict, are FastAPI's.
    assert by_path["/cookie"].plan is None
    assert by_path["/plain"].plan is None
    assert by_path["/items/{item_id}"].plan is not None
    app = FastAPI()
    app.include_router(router)
    async with _client(app) as client:
        cookie = await client.get("/cookie", headers={"cookie": "flavour=oat"})
        missing = await client.get("/cookie")
        plain = await client.get("/plain", headers={"x-who": "ann"})
    assert cookie.json() == {"flavour": "oat", "owner": "nobody"}
    assert missing.status_code == 422
    assert plain.json() == {"owner": "ann"}
