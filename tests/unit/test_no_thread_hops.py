"""No route depends on a plain function: FastAPI would run it in its thread pool,
a thread hop per request (see entrypoints.http.provide)."""

import inspect
from collections.abc import Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from entrypoints.http.routes import health, projects, tasks


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _dependencies(dependency)


def _awaited(call: Any) -> bool:
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(
        getattr(call, "__call__", None)  # noqa: B004 - an instance's async __call__
    )


def test_every_dependency_of_every_route_is_awaited_inline() -> None:
    routers = (health.router, tasks.router, projects.router)
    routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]
    assert len(routes) >= 10  # the tasks and projects routes are all here

    threaded = {
        f"{route.path} {sorted(route.methods)}: {dependency.call!r}"
        for route in routes
        for dependency in _dependencies(route.dependant)
        if dependency.call is not None and not _awaited(dependency.call)
    }

    assert threaded == set()
