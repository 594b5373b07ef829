"""The FastAPI application factory."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from entrypoints.container import Container, build_container
from entrypoints.http import openapi
from entrypoints.http.errors import add_error_handlers
from entrypoints.http.middleware import install_middleware
from entrypoints.http.routes import projects, tasks
from entrypoints.settings import Settings


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
    install_middleware(app, Settings.model_validate(container.config()))
    add_error_handlers(app)
    app.include_router(tasks.router)
    app.include_router(projects.router)
    app.openapi = lambda: openapi.polish(FastAPI.openapi(app))  # type: ignore[method-assign]
    return app
