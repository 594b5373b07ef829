"""Who a request is counted against, and the count itself: in Redis by `limits`,
in process by `InProcessWindow`.

The strategy is the moving window: a request counts for exactly one period after
it was made, so no period, wherever it starts, holds more than the limit (a fixed
window lets twice the limit through across a boundary), and the moment the oldest
counted request leaves the window is an exact Retry-After. The sliding window
counter keeps two integers per client instead of one timestamp per request, but
it only estimates the count, and a client it refused may stay refused for up to
two periods. At hundreds of requests a minute the timestamps are cheap: Redis
trims each client's list to the limit and expires it after one period.

In process the window is our own `InProcessWindow`, not `limits`' memory
storage: that one inserts each request at the front of a list and copies the
list to expire it, in a task and a thread hop that it starts on almost every
request, so its cost per request grew with the limit and the request rate.
"""

import hashlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, NamedTuple

from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from starlette.datastructures import Headers
from starlette.types import Scope

if TYPE_CHECKING:
    import coredis

logger = logging.getLogger(__name__)

REDIS_KEY_PREFIX = "taskhub:ratelimit"
# Where `bearer_token` keeps what it read, in the request's scope.
_BEARER_TOKEN = "taskhub.bearer_token"
# A request waits at most this long for Redis (no retries) before it goes
# uncounted: an uncounted request costs little, a slow one costs its client.
REDIS_TIMEOUT = 0.5
# After a failure, requests go uncounted this long before Redis is tried again,
# so an outage costs neither a timeout per request nor a log line per request.
RETRY_STORAGE_AFTER = 5.0


def parse_limit(text: str) -> RateLimitItem | None:
    """The one limit `text` names in the `limits` notation; None if it is empty."""
    if not text.strip():
        return None
    items = list(parse_many(text))
    if len(items) != 1:
        raise ValueError(f"rate_limit must name one limit, not {len(items)}: {text!r}")
    return items[0]


def address_key(scope: Scope) -> str:
    """`addr:` and the client host: what a client without a token counts against."""
    client = scope.get("client")
    return "addr:" + (client[0] if client else "unknown")


def client_key(scope: Scope) -> str:
    """`token:` and the SHA-256 of a bearer token, else the address key.

    Only the hash is ever stored or logged, so Redis holds no usable token.
    """
    token = bearer_token(scope)
    if token is not None:
        return "token:" + hashlib.sha256(token.encode()).hexdigest()
    return address_key(scope)


def bearer_token(scope: Scope) -> str | None:
    """The token of the request's `Authorization: Bearer …` header, read as
    FastAPI's HTTPBearer reads it; None if there is none.

    Read once per request: the rate limit and the owner dependency both ask,
    and the second answer comes from the scope."""
    try:
        return scope[_BEARER_TOKEN]  # type: ignore[no-any-return]
    except KeyError:
        pass
    scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
    token = token.strip()
    found = token if token and scheme.lower() == "bearer" else None
    scope[_BEARER_TOKEN] = found
    return found


# The names of `Budget.raw_headers()`.
RATE_LIMIT_HEADERS: Final = frozenset(
    (b"ratelimit-limit", b"ratelimit-remaining", b"ratelimit-reset")
)


class Budget(NamedTuple):
    """What is left of a client's limit after counting one request."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # whole seconds until the oldest counted request leaves the window

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """`headers()` as a response's start message holds them."""
        return [
            (b"ratelimit-limit", b"%d" % self.limit),
            (b"ratelimit-remaining", b"%d" % self.remaining),
            (b"ratelimit-reset", b"%d" % self.reset),
        ]


class InProcessWindow:
    """The moving window in one process: for each key, the times of the requests
    it made in the last period, oldest first.

    A request costs O(1) however high the limit: the times that left the window
    drop off the front, the new one goes on the back, and a key keeps at most
    `limit` of them. Keys idle for a whole period are swept once per period.
    Times are monotonic, so a change of the wall clock moves no window.
    """

    def __init__(
        self, limit: RateLimitItem, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._amount = limit.amount
        self._period = float(limit.get_expiry())
        self._clock = clock
        self._times: dict[str, deque[float]] = {}
        self._sweep_at = clock() + self._period

    def spend(self, key: str) -> Budget:
        now = self._clock()
        if now >= self._sweep_at:
            self._sweep(now)
        times = self._times.get(key)
        if times is None:
            times = self._times[key] = deque()
        start = now - self._period
        while times and times[0] <= start:
            times.popleft()
        allowed = len(times) < self._amount
        if allowed:
            times.append(now)
        # A limit counts at least one request, so `times` is not empty here.
        reset = max(1, math.ceil(times[0] + self._period - now))
        return Budget(allowed, self._amount, self._amount - len(times), reset)

    def __len__(self) -> int:
        """How many keys are remembered (idle ones until the next sweep)."""
        return len(self._times)

    def _sweep(self, now: float) -> None:
        start = now - self._period
        self._times = {k: t for k, t in self._times.items() if t and t[-1] > start}
        self._sweep_at = now + self._period


class RequestCounter:
    """Counts requests per client key against one limit, in memory or in Redis.

    In memory each process counts alone (so N workers allow N times the limit);
    in Redis every worker and host sharing it counts into one window, atomically.
    """

    def __init__(self, limit: RateLimitItem, redis_url: str | None) -> None:
        self.limit = limit
        self._pool: coredis.ConnectionPool | None = None
        self._window: InProcessWindow | None = None
        self._limiter: MovingWindowRateLimiter | None = None
        if redis_url:
            storage, self._pool = _redis_storage(redis_url)
            self._limiter = MovingWindowRateLimiter(storage)
        else:
            self._window = InProcessWindow(limit)
        self._retry_at = 0.0

    async def spend(self, key: str) -> Budget | None:
        """Count one request for `key`; None when the storage failed.

        A failed storage lets requests through uncounted (fail open) with a
        warning: while Redis is down the service stays up, only unlimited.
        """
        if self._window is not None:
            return self._window.spend(key)
        assert self._limiter is not None
        if time.monotonic() < self._retry_at:
            return None
        try:
            allowed = await self._limiter.hit(self.limit, key)
            stats = await self._limiter.get_window_stats(self.limit, key)
        except StorageError as error:
            self._retry_at = time.monotonic() + RETRY_STORAGE_AFTER
            logger.warning(
                "Rate limits are not enforced for the next %.0f s: "
                "their storage failed (%s)",
                RETRY_STORAGE_AFTER,
                error.storage_error,
            )
            return None
        # A request was just counted, so the window cannot reset sooner than 1 s.
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        return Budget(allowed, self.limit.amount, max(0, stats.remaining), reset)

    def close(self) -> None:
        """Drop the Redis connections, if any (at the app's shutdown)."""
        if self._pool is not None:
            self._pool.disconnect()


def _redis_storage(redis_url: str) -> tuple[Storage, "coredis.ConnectionPool"]:
    # Imported only when used: the Redis client weighs ~13 MB in every worker.
    import coredis
    from coredis.retry import NoRetryPolicy

    url = redis_url.removeprefix("async+")  # limits wants async+redis://
    pool = coredis.ConnectionPool.from_url(
        url, connect_timeout=REDIS_TIMEOUT, stream_timeout=REDIS_TIMEOUT
    )
    # Our own pool, so that close() can drop its connections; limits documents
    # `connection_pool` and `retry_policy` but types its options as scalars.
    storage = RedisStorage(
        "async+" + url,
        wrap_exceptions=True,
        key_prefix=REDIS_KEY_PREFIX,
        connection_pool=pool,  # type: ignore[arg-type]
        retry_policy=NoRetryPolicy(),  # type: ignore[arg-type]
    )
    return storage, pool
