"""Backup → restore into an empty database → validate, through the real CLI."""

from __future__ import annotations

import json
import shlex
import stat
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit

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
        assert f"checking database {target_name} on " in out
        assert f"restore validation of database {target_name} on " in out and out.rstrip().endswith("passed")

        restored = await asyncpg.connect(target)
        try:
            assert await restored.fetchval("SELECT name FROM merchants WHERE id = $1", merchant_id) == "Toko Backup"
            await restored.execute("DELETE FROM merchants WHERE id = $1", merchant_id)
        finally:
            await restored.close()
        # A restore that lost rows fails validation.
        code, out, err = await run_cli("restore", "validate", "--backup", str(dump), env={"DATABASE_URL": target})
        assert code != 0 and "merchants" in err
        # Every table is counted, not a chosen few: one a migration seeded is checked as well.
        restored = await asyncpg.connect(target)
        try:
            await restored.execute(
                "INSERT INTO merchants (id, code, name, city) VALUES ($1, $2, 'Toko Backup', 'Bandung')",
                merchant_id,
                f"M{uuid.uuid4().hex[:8]}",
            )
            await restored.execute("DELETE FROM payout_banks WHERE code = (SELECT min(code) FROM payout_banks)")
        finally:
            await restored.close()
        code, out, err = await run_cli("restore", "validate", "--backup", str(dump), env={"DATABASE_URL": target})
        assert code != 0 and "payout_banks" in err and "merchants" not in err
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{target_name}" WITH (FORCE)')
        await admin.close()


async def test_restore_plan_refuses_missing_file(tmp_path: Path, database_url: str) -> None:
    code, _, err = await run_cli(
        "restore", "plan", "--backup", str(tmp_path / "nope.dump"), env={"DATABASE_URL": database_url}
    )
    assert code != 0 and "does not exist" in err


MONEY_AND_DEVICE_TABLES = (
    "transactions",
    "transaction_events",
    "ledger_entries",
    "devices",
    "device_outbox",
    "settlement_batches",
    "settlement_batch_entries",
    "merchant_payout_accounts",
    "acquirer_callbacks",
)


async def test_backups_are_private_and_count_every_table_that_holds_money_or_devices(
    database_url: str, tmp_path: Path
) -> None:
    out_dir = tmp_path / "backups"
    code, _, err = await run_cli("backup", "--out", str(out_dir), env={"DATABASE_URL": database_url})
    assert code == 0, err
    assert stat.S_IMODE(out_dir.stat().st_mode) == 0o700
    files = sorted(out_dir.iterdir())
    assert [f.suffix for f in files] == [".dump", ".json"]
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)

    manifest = json.loads(files[1].read_text())
    assert set(MONEY_AND_DEVICE_TABLES) <= set(manifest["row_counts"])
    conn = await asyncpg.connect(database_url)
    try:
        version_num = int(await conn.fetchval("SHOW server_version_num"))
        assert manifest["row_counts"]["payout_banks"] == await conn.fetchval("SELECT count(*) FROM payout_banks")
    finally:
        await conn.close()
    assert manifest["server_version_num"] == version_num
    assert manifest["server_version"] == f"{version_num // 10000}.{version_num % 10000}"

    # A directory other users can enter is refused, with a sentence that says how to fix it.
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    code, out, err = await run_cli("backup", "--out", str(shared), env={"DATABASE_URL": database_url})
    assert code == 1 and "Traceback" not in err and "chmod 700" in err and not list(shared.iterdir())


async def test_validate_refuses_the_database_the_backup_came_from(database_url: str, tmp_path: Path) -> None:
    code, _, err = await run_cli("backup", "--out", str(tmp_path / "b"), env={"DATABASE_URL": database_url})
    assert code == 0, err
    dump = next((tmp_path / "b").glob("*.dump"))
    name = urlsplit(database_url).path.lstrip("/")

    code, out, err = await run_cli("restore", "validate", "--backup", str(dump), env={"DATABASE_URL": database_url})
    assert code == 1 and "passed" not in out and "Traceback" not in err
    assert f"checking database {name} on " in out and "was taken from, not a restore of it" in err

    code, out, err = await run_cli(
        "restore", "validate", "--backup", str(dump), "--allow-live", env={"DATABASE_URL": database_url}
    )
    assert code == 0 and out.rstrip().endswith("passed"), err


async def test_the_validate_command_printed_after_a_restore_checks_the_restored_database() -> None:
    """Embedded databases: the live one in ./var, the restore into another data directory. The printed
    command, run as printed from the live site's directory, must check the restore, not ./var."""
    # Not pytest's tmp_path: as root the embedded server runs as another user, who cannot enter it
    # (tests/packaging/test_wheel.py).
    with tempfile.TemporaryDirectory(prefix="qris-restore-") as tmp:
        await _restore_into_a_new_data_directory(Path(tmp))


async def _restore_into_a_new_data_directory(tmp_path: Path) -> None:
    embedded = {"DATABASE_URL": ""}  # and no PG* variables, as the suite runs
    site = tmp_path / "site"
    site.mkdir()
    code, _, err = await run_cli("backup", "--out", "backups", env=embedded, cwd=site)
    assert code == 0, err
    dump = next((site / "backups").glob("*.dump")).relative_to(site)
    restored_dir = tmp_path / "restored"

    code, out, err = await run_cli(
        "restore", "plan", "--backup", str(dump), "--execute", "--data-dir", str(restored_dir), env=embedded, cwd=site
    )
    assert code == 0, err
    printed = next(line for line in out.splitlines() if line.startswith("now run: ")).removeprefix("now run: ")
    program, *args = shlex.split(printed)
    assert program == "qris-soundbox"

    code, out, err = await run_cli(*args, env=embedded, cwd=site)
    assert code == 0, err + out
    assert out.rstrip().endswith("passed")
    assert str(restored_dir / "postgres") in out.splitlines()[0] or str(restored_dir) in out

    # The same command without the data directory reaches ./var, the backup's source, and refuses it.
    code, out, err = await run_cli("restore", "validate", "--backup", str(dump), env=embedded, cwd=site)
    assert code == 1 and "was taken from" in err and "passed" not in out
