"""Backup → restore into an empty database → validate, through the real CLI."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import asyncpg

from qris_soundbox.core.ids import new_id
from tests.support import with_database
from tests.tools.helpers import run_cli


async def test_backup_restore_validate_round_trip(database_url: str, pg_admin_dsn: str, tmp_path: Path) -> None:
    source = await asyncpg.connect(database_url)
    try:
        merchant_id = new_id("mer")
        await source.execute(
            "INSERT INTO merchants (id, code, name, city) VALUES ($1, $2, 'Toko Backup', 'Bandung')",
            merchant_id,
            f"M{uuid.uuid4().hex[:8]}",
        )
    finally:
        await source.close()

    code, out, err = await run_cli("backup", "--out", str(tmp_path), env={"DATABASE_URL": database_url})
    assert code == 0, err
    dump = next(tmp_path.glob("*.dump"))
    manifest = json.loads(dump.with_suffix(".json").read_text())
    assert manifest["row_counts"]["merchants"] >= 1

    target_name = f"qris_restore_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_admin_dsn)
    await admin.execute(f'CREATE DATABASE "{target_name}"')
    target = with_database(pg_admin_dsn, target_name)
    try:
        code, out, err = await run_cli("restore", "plan", "--backup", str(dump), env={"DATABASE_URL": target})
        assert code == 0 and "pg_restore" in out and "--execute" in out

        code, out, err = await run_cli(
            "restore", "plan", "--backup", str(dump), "--execute", env={"DATABASE_URL": target}
        )
        assert code == 0, err

        code, out, err = await run_cli("restore", "validate", "--backup", str(dump), env={"DATABASE_URL": target})
        assert code == 0, err + out
        assert "restore validation passed" in out

        restored = await asyncpg.connect(target)
        try:
            assert await restored.fetchval("SELECT name FROM merchants WHERE id = $1", merchant_id) == "Toko Backup"
            await restored.execute("DELETE FROM merchants WHERE id = $1", merchant_id)
        finally:
            await restored.close()
        # A restore that lost rows fails validation.
        code, out, err = await run_cli("restore", "validate", "--backup", str(dump), env={"DATABASE_URL": target})
        assert code != 0 and "merchants" in err
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{target_name}" WITH (FORCE)')
        await admin.close()


async def test_restore_plan_refuses_missing_file(tmp_path: Path, database_url: str) -> None:
    code, _, err = await run_cli(
        "restore", "plan", "--backup", str(tmp_path / "nope.dump"), env={"DATABASE_URL": database_url}
    )
    assert code != 0 and "does not exist" in err
