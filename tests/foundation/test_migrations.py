"""Migrations: numbered files applied once each and recorded in schema_migrations."""

from __future__ import annotations

import uuid

import asyncpg

from qris_soundbox.core.migrations import discover, migrate
from tests.support import with_database


async def _schema(conn: asyncpg.Connection) -> list[tuple]:
    rows = await conn.fetch(
        """SELECT table_name, column_name, data_type FROM information_schema.columns
           WHERE table_schema = 'public' ORDER BY table_name, column_name"""
    )
    return [tuple(r) for r in rows]


async def test_migrations_apply_once_and_rerun_is_a_no_op(pg_admin_dsn: str) -> None:
    name = f"qris_mig_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        conn = await asyncpg.connect(with_database(pg_admin_dsn, name))
        try:
            first = await migrate(conn)
            schema_after_first = await _schema(conn)
            second = await migrate(conn)
            assert first == [m.version for m in discover()]
            assert second == []
            assert await _schema(conn) == schema_after_first
            recorded = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
            assert [(r["version"], r["name"]) for r in recorded] == [(m.version, m.name) for m in discover()]
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


def test_migration_files_are_numbered_uniquely() -> None:
    versions = [m.version for m in discover()]
    assert versions == sorted(set(versions))
    assert versions[0] == "001"
