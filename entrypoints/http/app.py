"""The FastAPI application factory."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from entrypoints.container import Container, build_container
from entrypoints.http.errors import PROBLEM_JSON, add_error_handlers
from entrypoints.http.routes import projects, tasks


def create_app(container: Container | None = None) -> FastAPI:
    """Build the app around `container` (by default one wired from the settings)."""
    container = container or build_container()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if container.engine.initialized:
            await container.engine().dispose()

    app = FastAPI(
        title="taskhub",
        summary="Tasks and projects over REST.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.container = container
    add_error_handlers(app)
    app.include_router(tasks.router)
    app.include_router(projects.router)
    app.openapi = lambda: _polish_openapi(FastAPI.openapi(app))  # type: ignore[method-assign]
    return app


def _polish_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Summaries from the routes' docstrings; error bodies as problem+json."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            if "description" in operation:
                operation["summary"] = operation.pop("description")
            for code, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if code.startswith(("4", "5")) and "application/json" in content:
                    content[PROBLEM_JSON] = content.pop("application/json")
    return schema
