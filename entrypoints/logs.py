"""Log lines that say which request they are about."""

import itertools
import logging
import os
import re
import secrets
from contextvars import ContextVar
from typing import Any, Final

# Set by the RequestId middleware for the duration of one request.
current_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# What a client may send as X-Request-ID: short, and safe in a log line or header.
_SAFE_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_from(client_value: str | None) -> str:
    """The client's id when it is safe to echo and log, else a new one."""
    if client_value is not None and _SAFE_ID.fullmatch(client_value):
        return client_value
    return _new_request_id()


def _new_request_id() -> str:
    # A random per-process prefix and a counter: unique like a uuid4, without a
    # call for 16 random bytes on every request (measurable on the hot path).
    return f"{_prefix}-{next(_counter):x}"


def _reseed() -> None:
    global _prefix, _counter
    _prefix, _counter = secrets.token_hex(8), itertools.count(1)


_prefix: str
_counter: "itertools.count[int]"
_reseed()
os.register_at_fork(after_in_child=_reseed)  # a forked worker gets its own prefix


class RequestIdFilter(logging.Filter):
    """Give every record a `request_id` ("-" outside a request) to format."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get() or "-"
        return True


def log_config(level: str) -> dict[str, Any]:
    """The logging of `taskhub serve`: uvicorn's loggers and ours, one format."""
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "default",
        "filters": ["request_id"],
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {
            "default": {
                "format": "%(asctime)s %(levelname)s %(name)s "
                "[request_id=%(request_id)s] %(message)s"
            }
        },
        "handlers": {"default": handler},
        "loggers": {
            "": {"handlers": ["default"], "level": level.upper()},
            "uvicorn": {"level": level.upper()},
            "uvicorn.error": {"level": level.upper()},
            "uvicorn.access": {"level": level.upper()},
            # Alembic's chatter each time /readyz reads the schema's revision.
            "alembic.runtime.migration": {"level": "WARNING"},
        },
    }
