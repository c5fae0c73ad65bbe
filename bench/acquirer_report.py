"""Acquirer settlement report import: rows/s and the server's peak RSS against the file's size.

Starts the platform (``platform_process`` of bench/http_payments.py: ``serve`` with
its own embedded PostgreSQL, rate limits off), onboards one merchant through the
API, then seeds that merchant's paid transactions straight into ``transactions``
with one SQL statement (a million signed callbacks would take the best part of
an hour and measure the callback path, not this one). For each size it writes a
report to disk — every line a paid transaction, except the planted differences:
1 % with another amount, 0.5 % forged references, 0.5 % of the day's payments
left out — and uploads it as ``multipart/form-data`` streamed from the file
(aiohttp). rows/s = report lines / (response received − upload started). The
server's RSS is sampled every 50 ms during the import (psutil; PostgreSQL's own
processes are not counted). The bench checks that the report found exactly the
planted differences.

Usage: ``.venv/bin/python bench/acquirer_report.py [--quick] [--no-write]``
(``--quick``: 20,000 and 100,000 lines instead of 100,000 and 1,000,000).
Writes the "Acquirer report import" section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil
from common import DOC, machine_rows, write_section
from serving import ADMIN_TOKEN, machine, platform_process, uptime

from qris_soundbox.core.embedded_pg import EmbeddedPostgres
from qris_soundbox.tools.api import AdminApi

BEGIN, END = "<!-- acquirer-report:begin -->", "<!-- acquirer-report:end -->"
WIB = timezone(timedelta(hours=7))
FULL = (100_000, 1_000_000)
QUICK = (20_000, 100_000)
GOAL_ROWS_PER_S = 50_000


def planted(lines: int) -> dict[str, int]:
    return {"amount_mismatch": lines // 100, "missing_in_ledger": lines // 200, "missing_in_report": lines // 200}


async def seed(dsn: str, ids: dict[str, Any], day: date, count: int, prefix: str) -> None:
    """``count`` paid transactions of the merchant on business day ``day``, references ``<prefix><n>``."""
    start = datetime(day.year, day.month, day.day, 8, tzinfo=WIB)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            """
            INSERT INTO transactions (id, merchant_id, outlet_id, terminal_id, kind, status, amount, reference,
                                      provider_reference, fee_bps, paid_at)
            SELECT $5::text || 'T' || lpad(g::text, 9, '0'), $1, $2, $3, 'static', 'paid', 10000 + g % 1000,
                   $5 || 'REF' || g, $5 || g, 70, $4::timestamptz + make_interval(secs => g % 36000)
            FROM generate_series(1, $6) g
            """,
            ids["merchant"]["id"],
            ids["outlet"]["id"],
            ids["terminal"]["id"],
            start,
            prefix,
            count,
        )
        await conn.execute("ANALYZE transactions")
    finally:
        await conn.close()


def write_report(path: Path, day: date, lines: int, prefix: str) -> None:
    """The acquirer's report of ``day``: the seeded payments with the planted differences."""
    plan = planted(lines)
    forged = plan["missing_in_ledger"]
    mismatch_every = lines // plan["amount_mismatch"]
    with path.open("w", newline="") as out:
        out.write("settlement_date,provider_reference,amount,fee,terminal_id\r\n")
        # Seeded payments 1..lines+omitted; the last `omitted` are left out, `forged` lines replace them.
        for n in range(1, lines - forged + 1):
            amount = 10000 + n % 1000 + (1 if n % mismatch_every == 0 else 0)
            out.write(f"{day.isoformat()},{prefix}{n},{amount},{amount * 7 // 1000},TID0001\r\n")
        for n in range(forged):
            out.write(f"{day.isoformat()},FORGED{prefix}{n},12345,86,TID0001\r\n")


async def import_file(base_url: str, path: Path, server: psutil.Process) -> dict[str, Any]:
    baseline = server.memory_info().rss
    peak = baseline
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, server.memory_info().rss)
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=1800)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        with path.open("rb") as stream:
            form = aiohttp.FormData()
            form.add_field("file", stream, filename=path.name, content_type="text/csv")
            async with http.post(
                f"{base_url}/admin/reconciliation/acquirer-reports",
                data=form,
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            ) as response:
                body = await response.json()
                if response.status != 201:
                    raise RuntimeError(f"import answered {response.status}: {body}")
    seconds = time.perf_counter() - started
    done.set()
    await sampler
    return {"report": body, "seconds": seconds, "baseline_rss": baseline, "peak_rss": peak}


def check(report: dict[str, Any], lines: int) -> None:
    plan = planted(lines)
    found = {kind: report[f"{kind}_count"] for kind in plan}
    expected = plan | {"amount_mismatch": (lines - plan["missing_in_ledger"]) // (lines // plan["amount_mismatch"])}
    if found != expected or report["line_count"] != lines:
        raise RuntimeError(f"the import found {found} in {report['line_count']} lines, planted {expected}")


async def run(sizes: tuple[int, ...], workdir: Path) -> list[dict[str, Any]]:
    results = []
    async with platform_process(workdir) as base_url:
        (server,) = psutil.Process().children()
        database = EmbeddedPostgres(workdir / "var")  # joins the server's PostgreSQL to seed the ledger
        dsn = await database.start()
        try:
            async with AdminApi(base_url, ADMIN_TOKEN, timeout=60) as api:
                ids = await api.onboard_terminal("Bench Acquirer Report")
            for index, lines in enumerate(sizes):
                day = date(2025, 6, 1) + timedelta(days=index)
                prefix = f"B{index}RRN"
                omitted = planted(lines)["missing_in_report"]
                await seed(dsn, ids, day, lines - planted(lines)["missing_in_ledger"] + omitted, prefix)
                path = workdir / f"acquirer-{lines}.csv"
                write_report(path, day, lines, prefix)
                result = await import_file(base_url, path, server)
                check(result["report"], lines)
                result |= {"lines": lines, "bytes": path.stat().st_size}
                print(
                    f"{lines:>9,} lines {result['bytes'] / 2**20:6.1f} MiB: {lines / result['seconds']:9,.0f} rows/s,"
                    f" server RSS {result['baseline_rss'] / 2**20:.0f} → peak {result['peak_rss'] / 2**20:.0f} MiB",
                    file=sys.stderr,
                )
                path.unlink()
                results.append(result)
        finally:
            await database.stop()
    return results


def render(results: list[dict[str, Any]], info: dict[str, str], load: tuple[str, str], quick: bool) -> str:
    lines = [
        BEGIN,
        "",
        "## Acquirer report import",
        "",
        f"`bench/acquirer_report.py{' --quick' if quick else ''}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}."
        " One `serve` (embedded PostgreSQL, rate limits off) and the uploading client (aiohttp, the file streamed from"
        " disk) share the machine. Each report is one settlement day of a merchant whose payments were seeded in SQL,"
        " with 1 % amount differences, 0.5 % forged references and 0.5 % of the day's payments left out; every"
        " import found exactly those. rows/s counts the whole request: upload, parse and check, spool to a"
        " temporary file, COPY into staging, matching, exceptions written, commit. Goal: ≥ {GOAL_ROWS_PER_S:,} rows/s, server RSS flat in the file size.",
        "",
        *machine_rows(info, load),
        "",
        "| report lines | file MiB | seconds | rows/s | exceptions | server RSS before MiB | server RSS peak MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        report = r["report"]
        exceptions = sum(
            report[f"{kind}_count"] for kind in ("amount_mismatch", "missing_in_ledger", "missing_in_report")
        )
        lines.append(
            f"| {r['lines']:,} | {r['bytes'] / 2**20:.1f} | {r['seconds']:.1f} | {r['lines'] / r['seconds']:,.0f}"
            f" | {exceptions:,} | {r['baseline_rss'] / 2**20:.0f} | {r['peak_rss'] / 2**20:.0f} |"
        )
    lines += ["", END]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 and 100,000 lines")
    parser.add_argument("--no-write", action="store_true", help=f"print the section instead of writing {DOC.name}")
    args = parser.parse_args()
    load_before = uptime()
    with tempfile.TemporaryDirectory(prefix="bench-acquirer-") as tmp:
        results = asyncio.run(run(QUICK if args.quick else FULL, Path(tmp)))
    section = render(results, machine(), (load_before, uptime()), args.quick)
    if args.no_write:
        print(section)
    else:
        write_section(section, BEGIN, END)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
