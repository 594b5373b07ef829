"""Log lines that say which request they are about, rendered by structlog.

Every record, uvicorn's and the app's stdlib `logging` calls alike, goes through
one `structlog.stdlib.ProcessorFormatter`: JSON lines for log collectors, or
console lines for people, with the request id of the request that wrote it.
"""

import itertools
import logging
import os
import re
import secrets
import sys
from contextvars import ContextVar
from typing import Any, Final, Literal

import structlog

# Set by the RequestId middleware for the duration of one request.
current_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# What a client may send as X-Request-ID: short, and safe in a log line or header.
_SAFE_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")

ACCESS_LOGGER: Final = "taskhub.access"

LogFormat = Literal["auto", "json", "console"]


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


def _add_request_id(
    logger: Any, method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    event.setdefault("request_id", current_request_id.get())
    return event


def _drop_noise(
    logger: Any, method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    # uvicorn passes a copy of its message with ANSI colours as an extra; a
    # record another handler formatted first has `message` and `asctime` set.
    for key in ("color_message", "message", "asctime"):
        event.pop(key, None)
    return event


def resolved_format(log_format: LogFormat) -> Literal["json", "console"]:
    """`auto`: console lines for a person at a terminal, else JSON lines."""
    if log_format != "auto":
        return log_format
    return "console" if sys.stderr.isatty() else "json"


def formatter(log_format: LogFormat) -> structlog.stdlib.ProcessorFormatter:
    """The formatter every handler of `taskhub serve` writes with."""
    resolved = resolved_format(log_format)
    renderer: structlog.typing.Processor
    if resolved == "json":
        tail: list[structlog.typing.Processor] = [structlog.processors.format_exc_info]
        renderer = structlog.processors.JSONRenderer()
    else:
        tail = []
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.stdlib.ExtraAdder(),
            _drop_noise,
            _add_request_id,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *tail,
            renderer,
        ],
    )


def log_config(level: str, log_format: LogFormat = "auto") -> dict[str, Any]:
    """The logging of `taskhub serve`: uvicorn's loggers and ours, one renderer."""
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "structlog",
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structlog": {"()": formatter, "log_format": log_format},
        },
        "handlers": {"default": handler},
        "loggers": {
            "": {"handlers": ["default"], "level": level.upper()},
            "uvicorn": {"level": level.upper()},
            "uvicorn.error": {"level": level.upper()},
            # Replaced by taskhub.access, which names the route, not the path.
            "uvicorn.access": {"level": "WARNING"},
            # Alembic's chatter each time /readyz reads the schema's revision.
            "alembic.runtime.migration": {"level": "WARNING"},
            # Its debug lines show every statement's parameters: request bodies
            # and token hashes. TASKHUB_DATABASE_ECHO is the way to see SQL.
            "aiosqlite": {"level": "INFO"},
        },
    }
