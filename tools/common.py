"""What every subcommand needs: settings, and a migrated database to talk to."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg

from qris_soundbox.core.config import ConfigError, Settings, load_settings
from qris_soundbox.core.db import Database, DatabaseUnreachable
from qris_soundbox.core.demo import DEMO_SECRETS
from qris_soundbox.core.embedded_pg import EmbeddedPostgres, external_database_configured
from qris_soundbox.core.migrations import migrate


def settings_or_exit(**overrides: object) -> Settings:
    try:
        return load_settings(None, **overrides)
    except ConfigError as exc:
        sys.exit(f"qris-soundbox: {exc}")


def add_registry_options(parser: argparse.ArgumentParser) -> None:
    """``--data-dir`` and ``--demo`` of the tools that write a registry holding encrypted secrets."""
    parser.add_argument("--data-dir", type=Path, default=Path("var"), help="embedded PostgreSQL (default ./var)")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="the development SECRETS_ENCRYPTION_KEY of `serve --demo` (make run) when none is set",
    )


def registry_settings(args: argparse.Namespace) -> Settings:
    """Settings for a registry tool: with ``--demo`` and no key of the operator's, the key `serve --demo`
    encrypts with, so what the tool writes is readable by the demo platform and the other way round."""
    settings = settings_or_exit()
    if args.demo and not settings.secrets_encryption_key:
        settings = settings_or_exit(secrets_encryption_key=DEMO_SECRETS["secrets_encryption_key"])
    return settings


class CannotOpenDatabase(Exception):
    """The database a command needs cannot be reached or migrated; the message is one line for the operator."""


def where(dsn: str | None) -> str:
    """``host:port/database`` of ``dsn``, never its password."""
    if not dsn:
        return "the PG* variables' database"
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    host = parts.hostname or (query.get("host") or ["the default socket"])[-1]
    return f"{host}{f':{parts.port}' if parts.port else ''}/{parts.path.lstrip('/')}"


def _reason(exc: BaseException) -> str:
    cause = exc.__cause__ if isinstance(exc, DatabaseUnreachable) and exc.__cause__ else exc
    return str(cause) or type(cause).__name__


def prompt_secret(label: str, alternatives: str, *, confirm: bool = False) -> str:
    """Ask a person for ``label`` (not echoed; twice with ``confirm``). Without a terminal (cron, CI, a
    pipe) the lines come from standard input, as getpass read them; when there are none, a sentence
    naming ``alternatives`` instead of getpass's traceback."""
    entries = 2 if confirm else 1
    if sys.stdin.isatty():
        try:
            values = [getpass.getpass(f"{label}: " if n == 0 else f"repeat {label}: ") for n in range(entries)]
        except (EOFError, KeyboardInterrupt):
            sys.exit(f"\nqris-soundbox: no {label} given")
    else:
        values = [sys.stdin.readline().rstrip("\r\n") for _ in range(entries)]
        if not values[0]:
            sys.exit(f"qris-soundbox: {label} is needed and there is no terminal to ask for it; {alternatives}")
    if values[-1] != values[0]:
        sys.exit(f"qris-soundbox: the two {label} entries differ")
    return values[0]


def secret_from_stdin(label: str) -> str:
    """One line of standard input (``--password-stdin`` and the like: out of the command line and shell history)."""
    value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        sys.exit(f"qris-soundbox: {label} is empty (nothing on standard input)")
    return value


@asynccontextmanager
async def open_database(
    settings: Settings, data_dir: Path, *, pool_size: int = 10, migrate_first: bool = True
) -> AsyncIterator[Database]:
    """Connect to DATABASE_URL / PG*, or start the embedded server in ``data_dir``;
    apply migrations (unless ``migrate_first`` is off, as for a restore);
    stop the embedded server again on exit."""
    embedded = None
    dsn = settings.database_url
    if not external_database_configured(settings.database_url):
        embedded = EmbeddedPostgres(data_dir)
        dsn = await embedded.start()
    # The migration lock is a session lock: it needs the direct connection (DATABASE_LISTEN_URL) when
    # DATABASE_URL goes through a transaction-mode pooler.
    direct = (settings.database_listen_url or dsn) if embedded is None else dsn
    unreachable = (OSError, TimeoutError, DatabaseUnreachable, asyncpg.PostgresError, asyncpg.InterfaceError)
    try:
        if migrate_first:
            try:
                conn = await asyncpg.connect(direct)
            except unreachable as exc:
                raise CannotOpenDatabase(f"cannot connect to PostgreSQL at {where(direct)}: {_reason(exc)}") from None
            try:
                await migrate(conn)
            except asyncpg.PostgresError as exc:
                raise CannotOpenDatabase(f"migrating {where(direct)} failed: {exc}") from None
            finally:
                await conn.close()
        try:
            db = await Database.connect(
                dsn, max_size=pool_size, listen_dsn=direct, statement_cache_size=settings.database_statement_cache_size
            )
        except unreachable as exc:
            raise CannotOpenDatabase(f"cannot connect to PostgreSQL at {where(dsn)}: {_reason(exc)}") from None
        try:
            yield db
        finally:
            await db.close()
    finally:
        if embedded is not None:
            await embedded.stop()
