"""Test harness: one real PostgreSQL per session, a fresh database per module,
the real platform (``serve``) with its broker and HTTP API on free ports.

- ``TEST_DATABASE_URL`` (a superuser DSN) uses an existing server; otherwise an
  embedded PostgreSQL is started once in a temporary directory.
- A migrated template database is built once; each module gets
  ``CREATE DATABASE ... TEMPLATE`` (tens of milliseconds).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tests.support import PlatformFactory, RunningPlatform, with_database

TEMPLATE = "qris_test_template"


@pytest.fixture(scope="session")
async def pg_admin_dsn() -> AsyncIterator[str]:
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        yield external
        return
    from qris_soundbox.core.embedded_pg import EmbeddedPostgres

    with tempfile.TemporaryDirectory(prefix="qris-test-pg-") as tmp:
        server = EmbeddedPostgres(Path(tmp))
        dsn = await server.start()
        conn = await asyncpg.connect(dsn)
        try:
            # A test cluster need not survive a power cut; this makes CREATE DATABASE and commits cheap.
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                await conn.execute(f"ALTER SYSTEM SET {setting} = off")
            await conn.execute("SELECT pg_reload_conf()")
        finally:
            await conn.close()
        try:
            yield dsn
        finally:
            await server.stop()


@pytest.fixture(scope="session")
async def template_database(pg_admin_dsn: str) -> str:
    from qris_soundbox.core.migrations import migrate

    admin = await asyncpg.connect(pg_admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}"')
        await admin.execute(f'CREATE DATABASE "{TEMPLATE}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(with_database(pg_admin_dsn, TEMPLATE))
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return TEMPLATE


@pytest.fixture(scope="module")
async def database_url(pg_admin_dsn: str, template_database: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this test module."""
    name = f"qris_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    finally:
        await admin.close()
    yield with_database(pg_admin_dsn, name)
    admin = await asyncpg.connect(pg_admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="module")
async def platform_factory(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[PlatformFactory]:
    """Starts real platforms (``serve``) on this module's database; stops them after the module."""
    factory = PlatformFactory(database_url, tmp_path_factory.mktemp("platform"))
    try:
        yield factory
    finally:
        await factory.stop_all()


@pytest.fixture(scope="module")
async def running(platform_factory: PlatformFactory) -> RunningPlatform:
    """The whole platform (API, broker, worker) with test settings."""
    return await platform_factory.start()
