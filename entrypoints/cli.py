"""The `taskhub` command: serve the API and manage the database schema."""

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config

import migrations
from entrypoints.settings import Settings


def alembic_config(settings: Settings) -> Config:
    """Alembic driven from the service's settings, wherever it runs from."""
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.attributes["url"] = settings.database_url
    return config


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    if settings.backend == "memory" and args.workers > 1:
        print("memory:// keeps data per process; use one worker.", file=sys.stderr)
        return 2
    uvicorn.run(
        "entrypoints.http.app:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port if args.port is not None else settings.port,
        workers=args.workers,
        reload=args.reload,
        reload_dirs=[str(Path(__file__).parents[1])] if args.reload else None,
        log_level=settings.log_level,
    )
    return 0


def _db(args: argparse.Namespace, settings: Settings) -> int:
    if settings.backend == "memory":
        print("memory:// has no schema to migrate.", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = alembic_config(settings)
    if args.action == "upgrade":
        command.upgrade(config, args.revision or "head")
    elif args.action == "downgrade":
        command.downgrade(config, args.revision)
    else:
        command.current(config, verbose=args.verbose)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="taskhub",
        description="Tasks and projects over REST. Settings come from TASKHUB_* "
        "environment variables (TASKHUB_DATABASE_URL, ...).",
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return int(args.run(args, Settings()))


if __name__ == "__main__":
    sys.exit(main())
