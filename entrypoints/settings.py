import ipaddress
from typing import Final, Literal

from limits import parse_many
from pydantic import Field, SecretStr, computed_field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

MEMORY_URL = "memory://"

# Plain URLs are accepted and given the async driver the adapter uses.
_ASYNC_DRIVERS = {
    "sqlite://": "sqlite+aiosqlite://",
    "postgresql://": "postgresql+asyncpg://",
    "postgres://": "postgresql+asyncpg://",
}


SUPPORTED_DRIVERS: Final = ("sqlite+aiosqlite", "postgresql+asyncpg")

# Read from the working directory; the environment wins over it.
ENV_FILE: Final = ".env"

SQLITE_POOL_SIZE: Final = 5

Pooler = Literal["none", "pgbouncer-transaction"]


class Settings(BaseSettings):
    """Everything configurable, read from TASKHUB_* environment variables (and
    from `.env` in the working directory, which the environment overrides).

    Every field is documented in `.env.example` and the README (a test checks).
    """

    model_config = SettingsConfigDict(
        env_prefix="TASKHUB_",
        extra="ignore",
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
    )

    database_url: str = Field(
        "sqlite+aiosqlite:///./taskhub.db",
        description="SQLAlchemy URL (sqlite/postgresql), or memory:// for no database.",
    )
    database_echo: bool = Field(False, description="Log every SQL statement.")
    database_pool_size: int = Field(
        10,
        ge=1,
        description="PostgreSQL connections per worker process: a fixed pool, "
        "a request waits for a free one (see database_pool_timeout).",
    )
    database_max_overflow: int = Field(
        0,
        ge=0,
        description="Connections a worker may open beyond database_pool_size in a "
        "burst, closed again when returned. 0: a burst waits for the fixed pool "
        "rather than costing PostgreSQL a new backend and the request a handshake.",
    )
    database_pool_pre_ping: bool = Field(
        False,
        description="Ask the server (a round trip) whether a pooled connection is "
        "alive before each checkout. Off: a connection the server closed is "
        "already dropped without a round trip; on for networks whose middleboxes "
        "silently drop idle connections.",
    )
    database_pool_recycle: float = Field(
        0,
        ge=0,
        description="Seconds after which a pooled connection is closed and "
        "replaced at its next checkout; 0: never.",
    )
    database_pooler: Pooler = Field(
        "none",
        description="`pgbouncer-transaction` when TASKHUB_DATABASE_URL points at "
        "PgBouncer in transaction pooling mode: no prepared statement is reused "
        "or named twice, no session state is set, reads run in transactions and "
        "the statement timeout is set per transaction (SET LOCAL).",
    )
    sqlite_synchronous: Literal["full", "normal"] = Field(
        "full",
        description="SQLite's `synchronous` (the database is in WAL mode). `full`: "
        "a write is on disk before its response, an fsync per commit. `normal`: "
        "no fsync per commit; a write still survives a crash of taskhub, but "
        "the last ones before a power cut or an OS crash may be lost (the file "
        "is never corrupted). Writes are faster where fsync is slow.",
    )
    database_pool_timeout: float = Field(
        5.0,
        gt=0,
        description="Seconds a request waits for a pooled connection before it "
        "gets 503.",
    )
    database_connect_timeout: float = Field(
        5.0, gt=0, description="Seconds to wait for PostgreSQL to accept a connection."
    )
    database_statement_timeout: float = Field(
        5.0,
        ge=0,
        description="PostgreSQL's statement_timeout, in seconds: a longer query is "
        "cancelled and its request gets 503. 0 for none. Migrations run without it.",
    )
    host: str = Field("127.0.0.1", description="Address `taskhub serve` binds.")
    port: int = Field(8000, ge=0, le=65535, description="Port `taskhub serve` binds.")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info", description="The least severe log records written."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto",
        description="How `taskhub serve` writes log lines to stderr: `json` (one "
        "JSON object a line, for collectors), `console` (for people), or `auto`: "
        "console when stderr is a terminal, else JSON.",
    )
    metrics: bool = Field(
        True,
        description="Count requests, latency, requests in flight and database "
        "pool use for Prometheus; false to switch metrics off (no /metrics).",
    )
    metrics_address: str = Field(
        "",
        pattern=r"^$|^.*:\d{1,5}$",
        description="Empty: serve metrics at /metrics on the API's own port (no "
        "token, no rate limit). `host:port`: `taskhub serve` serves them there "
        "instead, from its parent process, and the API port has no /metrics.",
    )

    auth: Literal["required", "disabled"] = Field(
        "required",
        description="`disabled` serves one implicit owner, for local demos only.",
    )
    first_token_file: str | None = Field(
        ".taskhub-token",
        description="With auth required and no user yet, the service creates the "
        "user `admin` at start-up and writes its token to this file (mode 600); "
        "empty to never do so.",
    )
    rate_limit: str = Field(
        "600/minute",
        description="Requests per token (per client address without auth), in the "
        "`limits` notation, e.g. `100/minute` or `10/second`; empty to switch off.",
    )
    redis_url: str | None = Field(
        None,
        description="Count rate limits in Redis (shared by all workers and hosts); "
        "without it they are counted in this process's memory.",
    )
    max_body_bytes: int = Field(
        1_048_576, ge=1, description="Larger request bodies get 413 unparsed."
    )
    cursor_secret: SecretStr | None = Field(
        None,
        description="Signs list cursors; every instance serving one database "
        "needs the same. Unset, the key the migrations stored in the database "
        "is used (memory://: a random key per process).",
    )
    list_count_cap: int = Field(
        1_000,
        ge=0,
        description="A listing's `total` counts at most this many matches; "
        "beyond, it is null (unless the request asks for count=exact).",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description='Origins allowed by CORS, as JSON (`["https://app.example"]`); '
        "none by default, which leaves CORS off.",
    )
    forwarded_allow_ips: str = Field(
        "",
        description="Comma-separated addresses or networks of the reverse proxies "
        "whose X-Forwarded-For and X-Forwarded-Proto `taskhub serve` believes, or "
        "`*` for any. Empty (the default) believes nobody: a client could "
        "otherwise name any address and so dodge its rate limit.",
    )

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        if url.startswith(MEMORY_URL):
            return url
        for plain, with_driver in _ASYNC_DRIVERS.items():
            if url.startswith(plain):
                url = with_driver + url.removeprefix(plain)
                break
        try:
            driver = make_url(url).drivername
        except (ArgumentError, ValueError):
            # Not the URL itself in the message: it may hold a password.
            raise ValueError(
                "not a database URL; expected e.g. sqlite:///taskhub.db, "
                "postgresql://user:password@host/db or memory://"
            ) from None
        if driver not in SUPPORTED_DRIVERS:
            raise ValueError(
                f"unsupported driver {driver!r}; use sqlite://, postgresql:// "
                f"(or {' or '.join(SUPPORTED_DRIVERS)}), or memory://"
            )
        return url

    @field_validator("rate_limit")
    @classmethod
    def _one_limit(cls, text: str) -> str:
        if not text.strip():
            return text
        try:
            items = list(parse_many(text))
        except ValueError:
            items = []
        if len(items) != 1:
            raise ValueError(
                "must be one limit such as 100/minute or 10/second, or empty for none"
            )
        return text

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _addresses(cls, text: str) -> str:
        for item in filter(None, (part.strip() for part in text.split(","))):
            if item == "*":
                continue
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network (or *)"
                ) from None
        return text

    @computed_field  # type: ignore[prop-decorator]
    @property
    def backend(self) -> Literal["memory", "sql"]:
        return "memory" if self.database_url.startswith(MEMORY_URL) else "sql"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def statement_timeout_ms(self) -> int:
        """The statement timeout in whole milliseconds; 0 for none."""
        if not self.database_statement_timeout:
            return 0
        return max(1, round(self.database_statement_timeout * 1000))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def engine_options(self) -> dict[str, object]:
        options: dict[str, object] = {"echo": self.database_echo}
        if self.database_url.startswith("postgresql"):
            connect_args: dict[str, object] = {"timeout": self.database_connect_timeout}
            if self.database_pooler == "none":
                # Behind PgBouncer the engine sets it per transaction instead:
                # PgBouncer refuses unknown startup parameters, and a session's
                # setting would stay with a server connection others share.
                settings = {}
                if self.statement_timeout_ms:
                    settings["statement_timeout"] = str(self.statement_timeout_ms)
                connect_args["server_settings"] = settings
            options |= {
                "pool_size": self.database_pool_size,
                "pool_timeout": self.database_pool_timeout,
                "max_overflow": self.database_max_overflow,
                "pool_pre_ping": self.database_pool_pre_ping,
                "pool_recycle": self.database_pool_recycle or -1,
                "connect_args": connect_args,
            }
        elif self.database_url.startswith("sqlite"):
            # Writers queue for SQLite's one lock whatever the pool, and each
            # connection is a thread with its own page cache (up to 2 MB): a
            # small fixed pool keeps a worker's memory flat under load.
            options |= {
                "pool_size": SQLITE_POOL_SIZE,
                "max_overflow": 0,
                "pool_timeout": self.database_pool_timeout,
            }
        return options
