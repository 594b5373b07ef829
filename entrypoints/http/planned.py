"""Routes whose parameters are solved by a plan made once, at start-up.

FastAPI solves a route's parameters anew on every request: it walks the
route's dependencies, looks up each parameter's aliases and kind again, and
builds a sub-response and exit stacks whether or not anything needs them. For
a cheap request that was the largest cost of ours left: with a plan, a get-one
on PostgreSQL costs 297 µs of CPU in one process instead of 382, a PATCH 500
instead of 607.

A `PlannedRoute` looks at its parameters once, when FastAPI builds its
handler, and makes a plan if each is of a kind it knows:
- the `Request`;
- path, query and header parameters of one scalar value each;
- one JSON body model;
- a `Depends(Provide[...])` marker, passed on as FastAPI passes it (the marker
  itself, which `@inject` replaces with the service);
- async dependencies that take the request alone (the owner).

A request runs by the plan only when every parameter validates, by FastAPI's
own validators. Any other request (a parameter missing or invalid, a body
that is not `application/json` or not valid JSON, dependency overrides in
force) goes to FastAPI's handler, which answers exactly as it always did: its
errors, in its order. Validating first changes no order, because nothing runs
before the validation ends, and the validation itself has no effects. A route
with a parameter of any other kind, or whose endpoint is not declared to
return a `Response`, keeps FastAPI's handler for every request.

FastAPI builds an included route's handler for the route as its inclusion
sees it (the include's prefix and dependencies), named by a context variable
that its own `APIRoute.get_route_handler` reads. The plan is made from that
same view; where the variable is missing (another FastAPI), there is no plan
and every request goes to FastAPI's handler: slower, never different.

What a planned request does not do: open FastAPI's own telemetry spans and
data for its parameters (`FastAPI(telemetry=...)`, which create_app turns off;
taskhub traces through OpenTelemetry's instrumentation instead).
"""

import inspect
import types
import typing
import uuid
from collections.abc import Callable, Coroutine, Mapping
from copy import deepcopy
from typing import Any, Final

import fastapi.routing
from fastapi import Request, Response, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

from entrypoints.http.provide import is_marker

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

_JSON: Final = "application/json"
_SCALARS: Final = (str, int, float, bool, uuid.UUID)


class PlannedRoute(APIRoute):
    """An APIRoute whose valid requests skip FastAPI's per-request solving."""

    plan: "_Plan | None" = None

    def get_route_handler(self) -> Handler:
        fastapis = super().get_route_handler()
        route = _as_built(self)
        plan = _Plan.of(route, fastapis) if route is not None else None
        self.plan = plan
        return fastapis if plan is None else plan.handle


def _as_built(route: APIRoute) -> Any:
    """The route as FastAPI is building its handler (as its inclusion sees it,
    if it is included); None if that cannot be known."""
    building = getattr(fastapi.routing, "_effective_route_context_var", None)
    if building is None:
        return None
    context = building.get()
    if context is None:
        return route
    return context if getattr(context, "original_route", None) is route else None


class _Param:
    """A path, query or header parameter of one scalar value."""

    __slots__ = ("field", "key", "loc", "name", "required", "validate_default")

    def __init__(self, field: Any) -> None:
        info = field.field_info
        self.field = field
        self.name: str = field.name
        self.key: str = field.alias
        self.loc = (info.in_.value, self.key)
        self.required: bool = info.is_required()
        self.validate_default = bool(info.validate_default)

    @staticmethod
    def plannable(field: Any) -> bool:
        info = field.field_info
        return (
            isinstance(info, (params.Path, params.Query, params.Header))
            and info.validation_alias in (None, field.alias)
            and not field.config
            and _scalar(info.annotation)
        )

    def solve(self, received: Mapping[str, str], values: dict[str, Any]) -> bool:
        """Put the parameter's value into `values`; False if it is not valid."""
        raw: Any = received.get(self.key)
        if raw is None:  # absent, as FastAPI tells it
            if self.required:
                return False
            raw = deepcopy(self.field.default)  # calls a default factory
            if not self.validate_default:
                values[self.name] = raw
                return True
        value, errors = self.field.validate(raw, values, loc=self.loc)
        if errors:
            return False
        values[self.name] = value
        return True


def _scalar(annotation: Any) -> bool:
    """One of a few scalar types, or one of them or None."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return len(args) == 1 and _scalar(args[0])
    return annotation in _SCALARS


class _Plan:
    """What a route's endpoint is called with, and how to get each of it."""

    def __init__(
        self,
        call: Callable[..., Coroutine[Any, Any, Response]],
        fallback: Handler,
    ) -> None:
        self.call = call
        self.fallback = fallback
        self.request_name: str | None = None
        self.path: list[_Param] = []
        self.query: list[_Param] = []
        self.headers: list[_Param] = []
        self.body: Any = None  # the body's ModelField
        self.markers: dict[str, Any] = {}
        self.dependencies: list[tuple[str | None, Any, str]] = []

    @classmethod
    def of(cls, route: Any, fallback: Handler) -> "_Plan | None":
        """The plan for `route`, or None if one of its parameters is of a
        kind the plan does not know."""
        dependant: Dependant = route.dependant
        call = dependant.call
        if not (inspect.iscoroutinefunction(call) and _returns_response(call)):
            return None
        assert call is not None
        plan = cls(call, fallback)
        if not plan._add_params(dependant) or not plan._add_body(dependant):
            return None
        for sub in dependant.dependencies:
            if not plan._add_dependency(sub):
                return None
        return plan

    def _add_params(self, dependant: Dependant) -> bool:
        if _takes_unplanned(dependant):
            return False
        fields = dependant.path_params + dependant.query_params
        fields += dependant.header_params
        if not all(_Param.plannable(field) for field in fields):
            return False
        self.request_name = dependant.request_param_name
        self.path = [_Param(field) for field in dependant.path_params]
        self.query = [_Param(field) for field in dependant.query_params]
        self.headers = [_Param(field) for field in dependant.header_params]
        return True

    def _add_body(self, dependant: Dependant) -> bool:
        if not dependant.body_params:
            return True
        if len(dependant.body_params) != 1:
            return False
        field = dependant.body_params[0]
        info = field.field_info
        model = info.annotation
        if (
            type(info) is not params.Body
            or info.embed
            or not (isinstance(model, type) and issubclass(model, BaseModel))
        ):
            return False
        self.body = field
        return True

    def _add_dependency(self, sub: Dependant) -> bool:
        """A Provide marker, or an async callable of the request alone."""
        if (
            _takes_unplanned(sub)
            or sub.path_params
            or sub.query_params
            or sub.header_params
            or sub.body_params
            or sub.dependencies
            or sub.concurrency is not None
        ):
            return False
        if is_marker(sub.call):
            if sub.name is None or sub.request_param_name is not None:
                return False
            self.markers[sub.name] = sub.call
            return True
        calls = [call for _, call, _ in self.dependencies]
        if (
            sub.request_param_name is None
            or not _is_async(sub.call)
            or any(call is sub.call for call in calls)  # FastAPI calls it once
        ):
            return False
        self.dependencies.append((sub.name, sub.call, sub.request_param_name))
        return True

    async def handle(self, request: Request) -> Response:
        values = await self._values(request)
        if values is None:
            return await self.fallback(request)
        for name, call, request_name in self.dependencies:
            value = await call(**{request_name: request})
            if name is not None:
                values[name] = value
        return await self.call(**values)

    async def _values(self, request: Request) -> dict[str, Any] | None:
        """The endpoint's parameters, validated; None if FastAPI must answer."""
        if request.app.dependency_overrides:
            return None
        values: dict[str, Any] = dict(self.markers)
        if self.request_name is not None:
            values[self.request_name] = request
        for param in self.path:
            if not param.solve(request.path_params, values):
                return None
        if self.query:
            query = request.query_params
            for param in self.query:
                if not param.solve(query, values):
                    return None
        if self.headers:
            headers = request.headers
            for param in self.headers:
                if not param.solve(headers, values):
                    return None
        if self.body is not None:
            if request.headers.get("content-type") != _JSON:
                return None
            if not await request.body():
                return None
            try:
                # As FastAPI decodes it, and kept on the request for its handler.
                received = await request.json()
            except ValueError:
                return None
            body, errors = self.body.validate(received, values, loc=("body",))
            if errors:
                return None
            values[self.body.name] = body
        return values


def _takes_unplanned(dependant: Dependant) -> bool:
    """Whether `dependant` takes a cookie, or a connection object other than
    the Request (the WebSocket, the Response, background tasks...)."""
    return bool(
        dependant.cookie_params
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
    )


def _is_async(call: Any) -> bool:
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(
        getattr(call, "__call__", None)  # noqa: B004 - an instance's __call__
    )


def _returns_response(call: Any) -> bool:
    try:
        returned = typing.get_type_hints(call).get("return")
    except Exception:  # an annotation that does not resolve: not planned
        return False
    return isinstance(returned, type) and issubclass(returned, Response)
