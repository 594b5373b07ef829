"""Users (the owners of projects and tasks) and their API tokens."""

import re
from dataclasses import dataclass, replace
from datetime import datetime

from domain.errors import InvalidValue

_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
TOKEN_NAME_MAX = 100


def clean_user_name(name: str) -> str:
    if not _USER_NAME.fullmatch(name):
        raise InvalidValue(
            "name",
            "A user name is 1–64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit.",
        )
    return name


@dataclass(slots=True)
class User:
    name: str
    created_at: datetime
    id: int | None = None  # assigned by the repository on add

    @classmethod
    def create(cls, name: str, now: datetime) -> "User":
        return cls(name=clean_user_name(name), created_at=now)


@dataclass(slots=True)
class ApiToken:
    """A token's record. The secret itself is never stored, only its hash."""

    user_id: int
    name: str
    prefix: str  # the secret's first characters, to tell tokens apart in lists
    secret_hash: str
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    id: int | None = None  # assigned by the repository on add

    def is_active(self, now: datetime) -> bool:
        return self.revoked_at is None and (
            self.expires_at is None or now < self.expires_at
        )

    def revoke(self, now: datetime) -> bool:
        """Revoke the token; return False if it already was."""
        if self.revoked_at is not None:
            return False
        self.revoked_at = now
        return True

    def copy(self) -> "ApiToken":
        return replace(self)
