"""The `taskhub` command: serve the API and manage the database schema."""

import argparse
import asyncio
import contextlib
import io
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TextIO

from pydantic import ValidationError

from application.loading import LineRejected
from application.transfer import Line, RowsRejected
from domain.errors import DomainError
from domain.users import ApiToken
from entrypoints import configuration
from entrypoints.container import Container, build_container
from entrypoints.schema import MIGRATIONS
from entrypoints.settings import Settings
from entrypoints.task_lines import count_lines, read_tasks
from entrypoints.transfer_files import (
    FORMATS,
    Format,
    format_for,
    read_records,
    writer_for,
)

if TYPE_CHECKING:
    from alembic.config import Config


def alembic_config(settings: Settings) -> "Config":
    """Alembic driven from the service's settings, wherever it runs from."""
    # Imported here, not above: `taskhub serve` would carry Alembic (~10 MB)
    # in every worker for nothing.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = settings.database_url
    config.attributes["pooler"] = settings.database_pooler
    return config


# Seconds a worker may leave uvicorn's supervisor's ping unanswered before it is
# killed and replaced. A spawned worker answers only once it has imported the
# app; on a busy host that took longer than uvicorn's 5 s, and the supervisor
# killed each new worker before it could start, for ever.
WORKER_HEALTHCHECK_TIMEOUT = 30


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    # Imported here, not above: structlog (and rich's tracebacks where rich is
    # installed) took 0.13 s of every other command's start.
    from entrypoints.logs import log_config

    if settings.backend == "memory" and args.workers > 1:
        print("memory:// keeps data per process; use one worker.", file=sys.stderr)
        return 2
    if args.workers > 1 and settings.rate_limit.strip() and not settings.redis_url:
        print(
            f"Warning: without TASKHUB_REDIS_URL each of the {args.workers} workers "
            f"counts TASKHUB_RATE_LIMIT={settings.rate_limit} on its own, so a "
            f"client may make up to {args.workers} times as many requests.",
            file=sys.stderr,
        )
    with _metrics_served(settings, several=args.workers > 1 or args.reload):
        uvicorn.run(
            "entrypoints.http.app:served_app",
            factory=True,
            host=args.host or settings.host,
            port=args.port if args.port is not None else settings.port,
            workers=args.workers,
            reload=args.reload,
            reload_dirs=[str(Path(__file__).parents[1])] if args.reload else None,
            log_level=settings.log_level,
            log_config=log_config(settings.log_level, settings.log_format),
            # taskhub.access replaces it: route templates, owner, duration.
            access_log=False,
            # uvicorn alone would believe X-Forwarded-* from 127.0.0.1 (or its
            # own FORWARDED_ALLOW_IPS): only the proxies the setting names are.
            proxy_headers=bool(settings.forwarded_allow_ips.strip()),
            forwarded_allow_ips=settings.forwarded_allow_ips.strip() or None,
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_TIMEOUT,
        )
    return 0


def _config(args: argparse.Namespace, settings: Settings) -> int:
    rows = [("SETTING", "VALUE", "FROM"), *configuration.effective(settings)]
    width = [max(len(row[i]) for row in rows) for i in range(2)]
    for name, value, source in rows:
        print(f"{name.ljust(width[0])}  {value.ljust(width[1])}  {source}")
    return 0


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def _metrics_served(settings: Settings, *, several: bool) -> Iterator[None]:
    """Metrics that add up over processes, and their own listener if asked for.

    Several workers (or a listener in this parent process) need
    prometheus-client's multiprocess mode: each process writes its values to
    files in one directory, which a scrape adds up. Without a directory from
    the environment, a private one is made here and removed at exit. Set before
    the workers start: prometheus-client reads it once, when imported.
    """
    separate = bool(settings.metrics_address)
    if not settings.metrics or not (several or separate):
        yield
        return
    with contextlib.ExitStack() as stack:
        if not os.environ.get(MULTIPROC_ENV):
            directory = tempfile.mkdtemp(prefix="taskhub-metrics-")
            stack.callback(shutil.rmtree, directory, ignore_errors=True)
            stack.enter_context(_removed_on_sigterm(directory))
            os.environ[MULTIPROC_ENV] = directory
            stack.callback(os.environ.pop, MULTIPROC_ENV, None)
        if separate:
            stack.callback(_listen_for_scrapes(settings.metrics_address))
        yield


@contextlib.contextmanager
def _removed_on_sigterm(directory: str) -> Iterator[None]:
    """Remove `directory` also when SIGTERM ends the process.

    A single uvicorn process re-raises the SIGTERM it stopped on, once it has
    restored the handlers it found: this one, which removes the directory and
    then lets the signal end the process as before.
    """
    previous = signal.getsignal(signal.SIGTERM)

    def remove_then_die(signum: int, frame: object) -> None:
        shutil.rmtree(directory, ignore_errors=True)
        signal.signal(signum, previous)
        signal.raise_signal(signum)

    signal.signal(signal.SIGTERM, remove_then_die)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _listen_for_scrapes(address: str) -> Callable[[], None]:
    """Serve /metrics (every path, in fact) at `address`; return how to stop."""
    from prometheus_client import start_http_server

    from entrypoints.http.metrics import shared_registry

    host, _, port = address.rpartition(":")
    server, thread = start_http_server(
        int(port), addr=host.strip("[]") or "127.0.0.1", registry=shared_registry()
    )

    def stop() -> None:
        server.shutdown()
        thread.join()

    return stop


def _db(args: argparse.Namespace, settings: Settings) -> int:
    if settings.backend == "memory":
        print("memory:// has no schema to migrate.", file=sys.stderr)
        return 2
    from alembic import command

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = alembic_config(settings)
    if args.action == "upgrade":
        command.upgrade(config, args.revision or "head")
    elif args.action == "downgrade":
        command.downgrade(config, args.revision)
    else:
        command.current(config, verbose=args.verbose)
    return 0


def _idempotency_keys(args: argparse.Namespace, settings: Settings) -> int:
    if settings.backend == "memory":
        print("memory:// keeps its keys inside the server process.", file=sys.stderr)
        return 2
    purged = asyncio.run(_purge(build_container(settings)))
    print(f"Purged {purged} expired idempotency key(s).")
    return 0


async def _purge(container: Container) -> int:
    try:
        return await container.idempotency_service().purge()
    finally:
        if container.engine.initialized:
            await container.engine().dispose()


def _identity(args: argparse.Namespace, settings: Settings) -> int:
    if settings.backend == "memory":
        print("memory:// keeps users inside the server process.", file=sys.stderr)
        return 2
    try:
        asyncio.run(_run_identity(args, build_container(settings)))
    except DomainError as error:
        print(error.message, file=sys.stderr)
        return 1
    return 0


async def _run_identity(args: argparse.Namespace, container: Container) -> None:
    identity = container.identity_service()
    try:
        if args.command == "users":
            _, issued = await identity.create_user(args.name)
            _show_secret(f"Created the user {args.name!r}.", issued.secret)
        elif args.action == "create":
            days = args.expires_in_days
            expires_in = None if days is None else timedelta(days=days)
            issued = await identity.issue_token(args.user, args.name, expires_in)
            _show_secret(f"Issued the token {issued.record.prefix}…", issued.secret)
        elif args.action == "list":
            _print_tokens(await identity.list_tokens(args.user))
        else:
            token = await identity.revoke_token(args.prefix)
            print(f"Revoked {token.prefix}… ({token.name}).", file=sys.stderr)
    finally:
        if container.engine.initialized:
            await container.engine().dispose()


def _tasks(args: argparse.Namespace, settings: Settings) -> int:
    if settings.backend == "memory":
        print("memory:// keeps tasks inside the server process.", file=sys.stderr)
        return 2
    # A load is one long transaction of many statements, not a request: like
    # migrations, it runs without the per-statement timeout.
    settings = settings.model_copy(update={"database_statement_timeout": 0})
    try:
        with _open_input(args.file) as source:
            loaded, seconds = asyncio.run(
                _load(
                    args.user,
                    source,
                    build_container(settings),
                    rebuild_indexes=args.rebuild_indexes,
                )
            )
    except OSError as error:
        print(f"{args.file}: {error.strerror or error}", file=sys.stderr)
        return 1
    except (LineRejected, DomainError) as error:
        print(error, file=sys.stderr)
        return 1
    rate = loaded / seconds if seconds > 0 else float(loaded)
    print(f"Loaded {loaded} tasks for {args.user} in {seconds:.1f} s ({rate:.0f}/s).")
    return 0


def _open_input(name: str) -> contextlib.AbstractContextManager[BinaryIO]:
    if name == "-":
        return contextlib.nullcontext(sys.stdin.buffer)
    return open(name, "rb")  # the caller's `with` closes it


async def _load(
    user: str, source: BinaryIO, container: Container, *, rebuild_indexes: bool
) -> tuple[int, float]:
    # Imported here, not above: `taskhub serve` has no use for it.
    from tqdm import tqdm  # type: ignore[import-untyped]

    loader = container.task_loader()
    try:
        owner_id = await loader.owner_id(user)
        total = count_lines(source)
        started = time.perf_counter()
        # Without a terminal (CI logs) the bar is redrawn rarely, not many
        # times a second.
        with tqdm(
            total=total,
            unit=" tasks",
            unit_scale=True,
            file=sys.stderr,
            mininterval=0.2 if sys.stderr.isatty() else 10,
            disable=False,
        ) as bar:
            loaded = await loader.load(
                owner_id,
                read_tasks(source),
                bar.update,
                rebuild_indexes=rebuild_indexes,
            )
        return loaded, time.perf_counter() - started
    finally:
        if container.engine.initialized:
            await container.engine().dispose()


def _export(args: argparse.Namespace, settings: Settings) -> int:
    if settings.backend == "memory":
        print("memory:// keeps its data inside the server process.", file=sys.stderr)
        return 2
    if (args.user is None) == (not args.all):
        print("Give either --user NAME or --all.", file=sys.stderr)
        return 2
    # An export is one long read, not a request: no per-statement timeout.
    settings = settings.model_copy(update={"database_statement_timeout": 0})
    file_format = format_for(args.output, args.format)
    try:
        with _open_output(args.output) as out:
            count = asyncio.run(
                _write_export(args.user, file_format, out, build_container(settings))
            )
    except OSError as error:
        print(f"{args.output}: {error.strerror or error}", file=sys.stderr)
        return 1
    except DomainError as error:
        print(error.message, file=sys.stderr)
        return 1
    print(f"Exported {count} records.", file=sys.stderr)
    return 0


@contextlib.contextmanager
def _open_output(name: str) -> Iterator[TextIO]:
    if name != "-":
        with open(name, "w", encoding="utf-8", newline="") as out:
            yield out
        return
    # UTF-8 whatever the locale says, and stdout left open for what follows.
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="")
    try:
        yield out
    finally:
        out.flush()
        out.detach()


async def _write_export(
    user: str | None, file_format: Format, out: TextIO, container: Container
) -> int:
    writer = writer_for(file_format, out)
    count = 0
    try:
        async for record in container.exporter().export(user):
            writer.write(record)
            count += 1
    finally:
        if container.engine.initialized:
            await container.engine().dispose()
    return count


def _import(args: argparse.Namespace, settings: Settings) -> int:
    if settings.backend == "memory":
        print("memory:// keeps its data inside the server process.", file=sys.stderr)
        return 2
    settings = settings.model_copy(update={"database_statement_timeout": 0})
    file_format = format_for(args.file, args.format)
    try:
        with _open_input(args.file) as given, _rewindable(given) as source:
            count = asyncio.run(
                _read_import(args, file_format, source, build_container(settings))
            )
    except OSError as error:
        print(f"{args.file}: {error.strerror or error}", file=sys.stderr)
        return 1
    except RowsRejected as error:
        for rejected in error.rejected:
            print(rejected, file=sys.stderr)
        if error.more:
            print("... and more; nothing was imported.", file=sys.stderr)
        else:
            print("Nothing was imported.", file=sys.stderr)
        return 1
    except DomainError as error:
        print(f"{error.message} Nothing was imported.", file=sys.stderr)
        return 1
    print(f"Imported {count} records.", file=sys.stderr)
    return 0


@contextlib.contextmanager
def _rewindable(given: BinaryIO) -> Iterator[BinaryIO]:
    """`given`, or for a pipe a temporary copy: an import reads its input twice."""
    if given.seekable():
        yield given
        return
    with tempfile.TemporaryFile() as copy:
        shutil.copyfileobj(given, copy)
        yield copy


async def _read_import(
    args: argparse.Namespace,
    file_format: Format,
    source: BinaryIO,
    container: Container,
) -> int:
    from tqdm import tqdm

    def lines() -> Iterator[Line]:
        source.seek(0)
        return read_records(source, file_format)

    importer = container.importer()
    try:
        with tqdm(
            unit=" records",
            file=sys.stderr,
            mininterval=0.2 if sys.stderr.isatty() else 10,
            disable=False,
        ) as bar:

            def checked(count: int) -> None:
                bar.total = count
                bar.refresh()

            return await importer.store(
                lines, args.user, args.keep_ids, bar.update, checked
            )
    finally:
        if container.engine.initialized:
            await container.engine().dispose()


def _show_secret(what: str, secret: str) -> None:
    # The secret alone goes to stdout (for scripts); the words go to stderr.
    print(f"{what} Its API token, shown this once:", file=sys.stderr)
    print(secret)


def _print_tokens(tokens: list[ApiToken]) -> None:
    def when(moment: datetime | None) -> str:
        return "-" if moment is None else moment.isoformat(timespec="seconds")

    rows = [("PREFIX", "NAME", "CREATED", "LAST USED", "EXPIRES", "REVOKED")]
    rows += [
        (
            f"{t.prefix}…",
            t.name,
            when(t.created_at),
            when(t.last_used_at),
            when(t.expires_at),
            when(t.revoked_at),
        )
        for t in tokens
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(
                cell.ljust(width) for cell, width in zip(row, widths, strict=True)
            )
        )


_FORMAT_HELP = "jsonl or csv (default: csv for a *.csv file, else jsonl)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="taskhub",
        description="Tasks and projects over REST. Settings come from TASKHUB_* "
        "environment variables (TASKHUB_DATABASE_URL, ...) and from ./.env; "
        "`taskhub config show` lists them.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host", help="address to bind (default: TASKHUB_HOST)")
    serve.add_argument("--port", type=int, help="port to bind (default: TASKHUB_PORT)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes")
    serve.add_argument("--reload", action="store_true", help="restart on code change")
    serve.set_defaults(run=_serve)

    db = commands.add_parser("db", help="manage the database schema (Alembic)")
    actions = db.add_subparsers(dest="action", required=True)
    upgrade = actions.add_parser("upgrade", help="upgrade to a revision (default head)")
    upgrade.add_argument("revision", nargs="?", default="head")
    downgrade = actions.add_parser("downgrade", help="downgrade to a revision")
    downgrade.add_argument("revision", help='e.g. "-1" or "base"')
    current = actions.add_parser("current", help="show the current revision")
    current.add_argument("-v", "--verbose", action="store_true")
    db.set_defaults(run=_db)

    users = commands.add_parser("users", help="manage users")
    user_actions = users.add_subparsers(dest="action", required=True)
    create_user = user_actions.add_parser(
        "create", help="create a user and print its first API token"
    )
    create_user.add_argument("name")
    users.set_defaults(run=_identity)

    tokens = commands.add_parser("tokens", help="manage API tokens")
    token_actions = tokens.add_subparsers(dest="action", required=True)
    create_token = token_actions.add_parser("create", help="issue a token, print it")
    create_token.add_argument("user", help="the user the token acts for")
    create_token.add_argument("--name", default="default", help="what it is for")
    create_token.add_argument(
        "--expires-in-days", type=float, help="expire after this many days"
    )
    list_tokens = token_actions.add_parser("list", help="list a user's tokens")
    list_tokens.add_argument("user")
    revoke = token_actions.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("prefix", help="the token's prefix, as `tokens list` shows")
    tokens.set_defaults(run=_identity)

    tasks = commands.add_parser("tasks", help="manage tasks in bulk")
    task_actions = tasks.add_subparsers(dest="action", required=True)
    load = task_actions.add_parser(
        "load",
        help="store tasks from JSON Lines, all or none",
        description="Store one task per line of FILE (JSON objects with the "
        "fields of POST /tasks) for USER, in one transaction: the first invalid "
        "line stops the load and nothing is stored. Blank lines are skipped.",
    )
    load.add_argument("--user", required=True, help="the user who owns the tasks")
    load.add_argument(
        "--rebuild-indexes",
        action="store_true",
        help="on PostgreSQL, drop the tasks' indexes and foreign keys for the load "
        "and build them anew before it commits: a big load runs faster (1.7x for "
        "a million tasks in bench/README.md), but every request that uses tasks, "
        "of every user, waits until the load ends. For a first import or a "
        "maintenance window (README)",
    )
    load.add_argument(
        "file", nargs="?", default="-", help="JSON Lines file (default: - for stdin)"
    )
    tasks.set_defaults(run=_tasks)

    export = commands.add_parser(
        "export",
        help="write projects and tasks as JSON Lines or CSV",
        description="Write USER's projects and tasks (or every user's, each "
        "record naming its owner) to FILE: each owner's projects, then its "
        "tasks, by id. See the README, 'Export and import'.",
    )
    whose = export.add_mutually_exclusive_group()
    whose.add_argument("--user", help="the user whose data to export")
    whose.add_argument("--all", action="store_true", help="every user's data")
    export.add_argument("--format", choices=FORMATS, help=_FORMAT_HELP)
    export.add_argument(
        "--output", "-o", default="-", help="file to write (default: - for stdout)"
    )
    export.set_defaults(run=_export)

    import_ = commands.add_parser(
        "import",
        help="store an export's projects and tasks, all or none",
        description="Check every record of FILE, then store them all in one "
        "transaction; any bad line stops the import with 'line N: why' and "
        "nothing is stored. Users named by records are created (without "
        "tokens) if missing.",
    )
    import_.add_argument(
        "--user", help="the user who receives every record (else each record's owner)"
    )
    import_.add_argument(
        "--keep-ids",
        action="store_true",
        help="keep the records' ids, timestamps and versions (else new ones)",
    )
    import_.add_argument("--format", choices=FORMATS, help=_FORMAT_HELP)
    import_.add_argument(
        "file", nargs="?", default="-", help="file to read (default: - for stdin)"
    )
    import_.set_defaults(run=_import)

    keys = commands.add_parser(
        "idempotency-keys", help="manage stored Idempotency-Key responses"
    )
    key_actions = keys.add_subparsers(dest="action", required=True)
    key_actions.add_parser(
        "purge", help="forget the keys older than 24 hours (also done as it serves)"
    )
    keys.set_defaults(run=_idempotency_keys)

    config = commands.add_parser("config", help="the settings in effect")
    config_actions = config.add_subparsers(dest="action", required=True)
    config_actions.add_parser(
        "show", help="every setting, its value (secrets masked) and its source"
    )
    config.set_defaults(run=_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        # Every command stops here, `serve` too: a worker would otherwise fail
        # later, in a traceback, or run with a setting nobody meant.
        for line in configuration.problems(error):
            print(f"taskhub: {line}", file=sys.stderr)
        return 2
    return int(args.run(args, settings))


if __name__ == "__main__":
    sys.exit(main())
