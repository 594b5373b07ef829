"""ASGI middleware around the app: rate limits, body size, security headers, CORS."""

from fastapi import FastAPI

from entrypoints.settings import Settings


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """Wrap `app` in the middleware `settings` ask for."""
