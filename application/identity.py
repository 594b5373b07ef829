"""Users and API tokens: who is asking."""

import asyncio
import contextvars
import hashlib
import secrets
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from application.ports import Clock, IdentityUnitOfWorkFactory
from domain.errors import (
    InvalidValue,
    TokenNotFound,
    Unauthenticated,
    UserNameTaken,
    UserNotFound,
)
from domain.users import TOKEN_NAME_MAX, ApiToken, User

# A recognisable prefix lets secret scanners spot a leaked taskhub token.
TOKEN_PREFIX: Final = "taskhub_"
_SHOWN: Final = len(TOKEN_PREFIX) + 8  # how much of a token lists may show
# Recording every use would be a write per request; once a minute is plenty.
_LAST_USED_GRANULARITY: Final = timedelta(minutes=1)
_USES_REMEMBERED: Final = 10_000  # tokens; older entries go beyond it


def hash_token(token: str) -> str:
    """The stored, one-way form of a token. Tokens are 256 random bits, so a
    fast hash suffices: there is nothing to guess that a slow hash would slow."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new token: the secret is shown once and then exists only as its hash."""

    secret: str
    record: ApiToken


class IdentityService:
    """Create users, issue, list and revoke their tokens, and authenticate."""

    def __init__(self, uow: IdentityUnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock
        # Token id -> when this process last began to record its use. Once a
        # minute every request in flight with the token found its stored use
        # stale, and each wrote it again: on SQLite, dozens of writes in a
        # row, hundreds of ms at the tail. Housekeeping only: who is asking is
        # decided from the stored token alone.
        self._use_recorded: dict[int, datetime] = {}
        self._tokens = _TokenReads(self._read_tokens)

    async def create_user(self, name: str) -> tuple[User, IssuedToken]:
        """Create a user with a first token; UserNameTaken if the name is taken."""
        now = self._clock.now()
        user = User.create(name, now)
        async with self._uow() as uow:
            await uow.users.add(user)
            assert user.id is not None
            issued = self._issue(user.id, "default", now, None)
            await uow.tokens.add(issued.record)
            await uow.commit()
        return user, issued

    async def create_first_user(self, name: str) -> IssuedToken | None:
        """Create `name` with a token if there are no users at all, else None."""
        async with self._uow() as uow:
            if await uow.users.exists():
                return None
        try:
            _, issued = await self.create_user(name)
        except UserNameTaken:  # another worker, starting at the same moment
            return None
        return issued

    async def ensure_user(self, name: str) -> int:
        """The id of the user `name`, created (without a token) if need be."""
        for _ in range(2):  # a second try finds the user a racing worker made
            async with self._uow() as uow:
                user = await uow.users.get_by_name(name)
                if user is None:
                    user = User.create(name, self._clock.now())
                    try:
                        await uow.users.add(user)
                    except UserNameTaken:
                        continue
                    await uow.commit()
            assert user.id is not None
            return user.id
        raise UserNameTaken(name)

    async def issue_token(
        self, user_name: str, token_name: str, expires_in: timedelta | None = None
    ) -> IssuedToken:
        """A new token for the user, optionally expiring after `expires_in`."""
        now = self._clock.now()
        async with self._uow() as uow:
            user = await uow.users.get_by_name(user_name)
            if user is None or user.id is None:
                raise UserNotFound(user_name)
            issued = self._issue(user.id, token_name, now, expires_in)
            await uow.tokens.add(issued.record)
            await uow.commit()
        return issued

    async def list_tokens(self, user_name: str) -> list[ApiToken]:
        """The user's tokens, oldest first (records only: secrets are not kept)."""
        async with self._uow() as uow:
            user = await uow.users.get_by_name(user_name)
            if user is None or user.id is None:
                raise UserNotFound(user_name)
            return await uow.tokens.list_for(user.id)

    async def revoke_token(self, prefix: str) -> ApiToken:
        """Revoke the token shown as `prefix` in lists; effective immediately."""
        async with self._uow() as uow:
            token = await uow.tokens.find_by_prefix(prefix)
            if token is None:
                raise TokenNotFound(prefix)
            if token.revoke(self._clock.now()):
                await uow.tokens.update(token)
                await uow.commit()
        return token

    async def authenticate(self, secret: str) -> int:
        """The id of the user `secret` belongs to; Unauthenticated for any
        token that is unknown, revoked or expired (without saying which)."""
        now = self._clock.now()
        token = await self._tokens.find(hash_token(secret))
        if token is None or not token.is_active(now):
            raise Unauthenticated()
        if self._use_is_stale(token, now):
            await self._record_use(token, now)
        return token.user_id

    async def _read_tokens(self, secret_hashes: Collection[str]) -> list[ApiToken]:
        async with self._uow(read_only=True) as uow:  # the hot path: one read
            return await uow.tokens.find_many(secret_hashes)

    def _use_is_stale(self, token: ApiToken, now: datetime) -> bool:
        """Whether to record this use: once a minute per token and process."""
        last_used = token.last_used_at
        if last_used is not None and now - last_used < _LAST_USED_GRANULARITY:
            return False
        recorded = self._use_recorded.get(token.id) if token.id is not None else None
        # None: no other request of this process is recording it.
        return recorded is None or now - recorded >= _LAST_USED_GRANULARITY

    async def _record_use(self, token: ApiToken, now: datetime) -> None:
        assert token.id is not None
        if len(self._use_recorded) > _USES_REMEMBERED:
            self._use_recorded = {
                id_: at
                for id_, at in self._use_recorded.items()
                if now - at < _LAST_USED_GRANULARITY
            }
        self._use_recorded[token.id] = now
        try:
            async with self._uow() as uow:
                await uow.tokens.record_use(token.id, now)
                await uow.commit()
        except BaseException:
            self._use_recorded.pop(token.id, None)  # the next request tries
            raise

    @staticmethod
    def _issue(
        user_id: int, name: str, now: datetime, expires_in: timedelta | None
    ) -> IssuedToken:
        name = name.strip()
        if not 1 <= len(name) <= TOKEN_NAME_MAX:
            message = f"A token name is 1–{TOKEN_NAME_MAX} characters."
            raise InvalidValue("name", message)
        if expires_in is not None and expires_in <= timedelta(0):
            raise InvalidValue("expires_in", "A token must expire in the future.")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        record = ApiToken(
            user_id=user_id,
            name=name,
            prefix=secret[:_SHOWN],
            secret_hash=hash_token(secret),
            created_at=now,
            expires_at=None if expires_in is None else now + expires_in,
        )
        return IssuedToken(secret=secret, record=record)


class _TokenReads:
    """Token lookups that come while one is being read wait, and are then
    answered together by one read.

    Every authenticated request reads its token, and on PostgreSQL each read
    was a round trip of its own: under load, its send and receive cost a
    worker more CPU than anything else the token check does. A lookup with no
    read under way reads at once, in its own request, as before; lookups that
    come while a read is under way wait for the next read, made for all of
    them as soon as it ends (in the context of the first of them: its request
    keeps the read's connection for its next unit of work, as it would for a
    read of its own).

    Each read starts after every lookup it answers was asked, so what a
    request sees of its token is never older than the request: a token
    revoked before the request came is refused, as one read per request would
    refuse it. If a read fails, each of its lookups raises the error.
    """

    __slots__ = ("_answering", "_next", "_read", "_reading")

    def __init__(
        self, read: Callable[[Collection[str]], Awaitable[list[ApiToken]]]
    ) -> None:
        self._read = read
        self._reading = False
        self._next: _Lookups | None = None  # those waiting for the next read
        self._answering: asyncio.Task[None] | None = None  # kept from the GC

    async def find(self, secret_hash: str) -> ApiToken | None:
        """The token whose secret hashes to `secret_hash`, or None."""
        if not self._reading:  # nothing under way: read at once
            self._reading = True
            try:
                tokens = await self._read((secret_hash,))
            finally:
                self._read_next()
            return tokens[0] if tokens else None
        lookups = self._next
        if lookups is None:
            lookups = self._next = _Lookups(contextvars.copy_context())
        found: asyncio.Future[ApiToken | None] = (
            asyncio.get_running_loop().create_future()
        )
        lookups.waiting.append((secret_hash, found))
        return await found

    def _read_next(self) -> None:
        """The read under way has ended: read for those waiting, if any."""
        lookups = self._next
        if lookups is None:
            self._reading = False
            self._answering = None
            return
        self._answering = asyncio.get_running_loop().create_task(
            self._answer(lookups), context=lookups.context
        )

    async def _answer(self, lookups: "_Lookups") -> None:
        if self._next is lookups:  # those that come from now on wait for the next
            self._next = None
        try:
            tokens = await self._read({h for h, _ in lookups.waiting})
        except BaseException as error:
            for _, found in lookups.waiting:
                if found.done():  # given up on: a cancelled request
                    continue
                if isinstance(error, Exception):
                    found.set_exception(error)
                else:
                    found.cancel()
            if not isinstance(error, Exception):
                raise
        else:
            # Lookups of one token share it: authenticate only reads it.
            by_hash = {token.secret_hash: token for token in tokens}
            for secret_hash, found in lookups.waiting:
                if not found.done():
                    found.set_result(by_hash.get(secret_hash))
        finally:
            self._read_next()


class _Lookups:
    """The lookups one read answers, and the context it runs in."""

    __slots__ = ("context", "waiting")

    def __init__(self, context: contextvars.Context) -> None:
        self.context = context
        self.waiting: list[tuple[str, asyncio.Future[ApiToken | None]]] = []
