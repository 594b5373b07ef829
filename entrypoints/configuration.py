"""The settings as a person sees them: what is wrong with them, and what is in
effect (with secrets masked) for `taskhub config show`."""

import os
import re
from collections.abc import Iterator
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from dotenv import dotenv_values
from pydantic import SecretStr, ValidationError

from entrypoints.settings import ENV_FILE, Settings

PREFIX: Final = "TASKHUB_"
MASK: Final = "********"

# Settings whose whole value is secret, whatever their type says. A URL's
# password is masked wherever it appears (see `_mask_url`).
_SECRET_NAME: Final = re.compile(r"(secret|password|token|api_key|credentials)$")


def variable(field: str) -> str:
    return PREFIX + field.upper()


def problems(error: ValidationError) -> list[str]:
    """One line per bad setting: `bad setting TASKHUB_X: why` — never its value
    when that may be secret."""
    lines = []
    for item in error.errors(include_url=False):
        field = str(item["loc"][0]) if item["loc"] else "?"
        why = str(item["msg"]).removeprefix("Value error, ")
        why = why[0].lower() + why[1:] if why else why
        given = item.get("input")
        shown = isinstance(given, str) and repr(given) not in why
        if shown and not _sensitive(field, str(given)):
            why += f" (got {given!r})"
        lines.append(f"bad setting {variable(field)}: {why}")
    return lines


def effective(settings: Settings) -> Iterator[tuple[str, str, str]]:
    """(variable, shown value, where it came from) for every setting."""
    dotenv = _dotenv()
    environment = {name.upper() for name in os.environ}
    for field in type(settings).model_fields:
        name = variable(field)
        if name in environment:
            source = "environment"
        elif name in dotenv:
            source = ENV_FILE
        else:
            source = "default"
        yield name, _shown(field, getattr(settings, field)), source


def _dotenv() -> set[str]:
    """The names `.env` sets, read as pydantic-settings reads it (python-dotenv)."""
    return {name.upper() for name in dotenv_values(ENV_FILE)}


def _shown(field: str, value: object) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, SecretStr):
        return MASK if value.get_secret_value() else "(empty)"
    if isinstance(value, list):
        return ",".join(map(str, value)) or "(none)"
    text = str(value)
    if _SECRET_NAME.search(field):
        return MASK if text else "(empty)"
    return _mask_url(text) if text else "(empty)"


def _sensitive(field: str, text: str) -> bool:
    """Whether echoing `text` in an error message might show a secret."""
    return (
        bool(_SECRET_NAME.search(field))
        or field.endswith("_url")
        or "://" in text
        or "@" in text
    )


def _mask_url(text: str) -> str:
    """`text` with the password of a URL in it masked; other text as it is."""
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:  # unparsable: it may still hold a password
        return MASK
    if password is None:
        return text
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))
