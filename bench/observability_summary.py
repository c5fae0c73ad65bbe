"""The observability summary's cost against the number of transactions and outbox rows kept.

Starts PostgreSQL (embedded, in a temporary directory) and ``qris-soundbox serve`` on it (rate limits
off), onboards one terminal, then for each stage adds rows with SQL and measures:

1. the summary's database read alone (its queries one after the other on one connection, as the
   route runs them, 50 times: p50), beside the queries it ran before (every outbox row grouped by
   status, a scan of all transactions for the last hour) on the same data;
2. ``GET /admin/observability/summary`` over HTTP, aiohttp at 32 concurrent requests, beside
   ``GET /health`` in the same run.

Stages: empty; 200,000 transactions and 200,000 outbox rows created over the previous 30 days
(history: paid/expired, acked/delivered); then 20,000 more of each created within the last hour
(the window the summary counts, so the one part that may grow with traffic).

Usage: ``.venv/bin/python bench/observability_summary.py [--quick] [--no-write]``.
Writes the "Observability summary" section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from common import machine_rows, publish
from serving import ADMIN_TOKEN, machine, serve_process, uptime

from qris_soundbox.core.db import QUERIES
from qris_soundbox.core.embedded_pg import EmbeddedPostgres
from qris_soundbox.core.finance.dashboard import CLOCK_SLACK, RECENT_WINDOW
from qris_soundbox.core.ids import id_floor, new_id
from qris_soundbox.tools.api import AdminApi
from qris_soundbox.tools.stats import latency_summary

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- observability-summary:begin -->", "<!-- observability-summary:end -->"
CONCURRENCY = 32

# What the summary ran before (sql/queries/finance.sql until this bench's change), for the same-run comparison.
BEFORE_OUTBOX = "SELECT status, count(*) AS count FROM device_outbox GROUP BY status ORDER BY status"
BEFORE_TRANSACTIONS = (
    "SELECT status, count(*) AS count, COALESCE(sum(amount), 0)::bigint AS amount FROM transactions"
    " WHERE created_at >= $1 GROUP BY status ORDER BY status"
)


def _id_at(prefix: str, at: datetime, serial: int) -> str:
    return id_floor(prefix, at)[:-7] + f"{serial:07d}"


async def add_rows(
    conn: asyncpg.Connection, terminal: dict[str, str], count: int, start: datetime, span: timedelta
) -> None:
    """``count`` transactions and ``count`` outbox rows, created evenly over [start, start + span), final statuses."""
    base = random.randrange(10**6) * 10  # distinct serials per call
    times = sorted(start + span * random.random() for _ in range(count))
    transactions = [
        (
            _id_at("txn", at, base + index),
            terminal["merchant_id"],
            terminal["outlet_id"],
            terminal["terminal_id"],
            "static",
            "paid" if index % 10 else "expired",
            1_000 + index % 50_000,
            f"BENCH-{base + index}",
            70,
            at if index % 10 else None,
            at,
            at,
        )
        for index, at in enumerate(times)
    ]
    await conn.copy_records_to_table(
        "transactions",
        records=transactions,
        columns=[
            "id",
            "merchant_id",
            "outlet_id",
            "terminal_id",
            "kind",
            "status",
            "amount",
            "reference",
            "fee_bps",
            "paid_at",
            "created_at",
            "updated_at",
        ],  # fmt: skip
    )
    outbox = [
        (
            _id_at("obx", at, base + index),
            new_id("msg") + str(index),
            "dev_bench",
            "payment",
            "devices/dev_bench/downlink/payment",
            "{}",
            "acked" if index % 4 else "delivered",
            at + timedelta(days=1),
            at,
        )
        for index, at in enumerate(times)
    ]
    await conn.copy_records_to_table(
        "device_outbox",
        records=outbox,
        columns=["id", "message_id", "device_id", "kind", "topic", "payload", "status", "expires_at", "created_at"],
    )
    await conn.execute("ANALYZE transactions; ANALYZE device_outbox")


async def database_read(conn: asyncpg.Connection, repeats: int) -> dict[str, float]:
    """p50 ms of the summary's read as it is now, and of the queries it ran before, on the same rows."""

    async def now_read() -> None:
        since = datetime.now(UTC) - RECENT_WINDOW
        await conn.fetchval(QUERIES["metrics_devices_online"])
        await conn.fetch(QUERIES["observability_outbox_counts"], id_floor("obx", since - CLOCK_SLACK), since)
        await conn.fetch(QUERIES["export_job_counts"])
        await conn.fetchrow(QUERIES["export_queue_state"], 60_000)
        await conn.fetch(QUERIES["runtime_instances_overview"])
        await conn.fetch(QUERIES["observability_transactions_since"], id_floor("txn", since - CLOCK_SLACK), since)

    async def before_read() -> None:
        await conn.fetchval(QUERIES["metrics_devices_online"])
        await conn.fetch(BEFORE_OUTBOX)
        await conn.fetch(QUERIES["export_job_counts"])
        await conn.fetchrow(QUERIES["export_queue_state"], 60_000)
        await conn.fetch(QUERIES["runtime_instances_overview"])
        await conn.fetch(BEFORE_TRANSACTIONS, datetime.now(UTC) - RECENT_WINDOW)

    figures = {}
    for name, read in (("now", now_read), ("before", before_read)):
        await read()  # warm: plans and caches
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            await read()
            timings.append((time.perf_counter() - started) * 1000)
        figures[name] = float(latency_summary(timings)["p50_ms"])
    return figures


async def http_burst(base_url: str, path: str, count: int, headers: dict[str, str]) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    timings: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(base_url, connector=connector) as http:
        queue = iter(range(count))

        async def worker() -> None:
            nonlocal errors
            for _ in queue:
                started = time.perf_counter()
                async with http.get(path, headers=headers) as response:
                    await response.read()
                    errors += response.status != 200
                timings.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        seconds = time.perf_counter() - started
    return {"rps": round(count / seconds, 1), "errors": errors, **latency_summary(timings)}


async def run(quick: bool) -> tuple[list[dict[str, Any]], tuple[str, str]]:
    history, recent = (20_000, 2_000) if quick else (200_000, 20_000)
    requests = 500 if quick else 3_000
    load_before = uptime()
    stages: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="qris-bench-observability-") as tmp:
        postgres = EmbeddedPostgres(Path(tmp))
        dsn = await postgres.start()
        try:
            async with serve_process(Path(tmp), dsn) as serve:
                async with AdminApi(serve.base_url, ADMIN_TOKEN) as admin:
                    made = await admin.onboard_terminal("Bench Observability")
                terminal = {
                    "merchant_id": made["merchant"]["id"],
                    "outlet_id": made["outlet"]["id"],
                    "terminal_id": made["terminal"]["id"],
                }
                headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
                conn = await asyncpg.connect(dsn)
                try:
                    now = datetime.now(UTC)
                    plan = [
                        ("empty", 0, None),
                        (f"+{history:,} of each over the previous 30 days", history, (now - timedelta(days=31), timedelta(days=30))),
                        (f"+{recent:,} of each within the last hour", recent, (now - timedelta(minutes=50), timedelta(minutes=45))),
                    ]  # fmt: skip
                    for label, count, window in plan:
                        if window is not None:
                            await add_rows(conn, terminal, count, *window)
                        rows = await conn.fetchrow(
                            "SELECT (SELECT count(*) FROM transactions) AS transactions,"
                            " (SELECT count(*) FROM device_outbox) AS outbox"
                        )
                        print(
                            f"{label}: {rows['transactions']:,} transactions, {rows['outbox']:,} outbox rows",
                            flush=True,
                        )
                        read = await database_read(conn, 20 if quick else 50)
                        health = await http_burst(serve.base_url, "/health", requests, {})
                        summary = await http_burst(serve.base_url, "/admin/observability/summary", requests, headers)
                        stages.append(
                            {"label": label, **dict(rows), "read": read, "health": health, "summary": summary}
                        )
                        print(f"  read {read}, health {health['rps']} req/s, summary {summary}", flush=True)
                finally:
                    await conn.close()
        finally:
            await postgres.stop()
    return stages, (load_before, uptime())


def render(stages: list[dict[str, Any]], load: tuple[str, str]) -> str:
    lines = [
        BEGIN,
        "## Observability summary",
        "",
        "`bench/observability_summary.py`: `GET /admin/observability/summary` as the transactions and",
        "outbox rows kept grow. *read* is the summary's database read alone (p50 of 50, one connection);",
        "*before* is the same read with the queries it used until now (every outbox row grouped by",
        "status, every transaction scanned for the last hour) on the same rows. HTTP: aiohttp, 32",
        "concurrent requests, beside `/health` in the same run.",
        "",
        *machine_rows(machine(), load),
        "",
        "| rows | transactions | outbox rows | read (ms) | before (ms) | summary req/s | p50 (ms) | p95 (ms) | errors | /health req/s | /health p95 (ms) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for stage in stages:
        summary, health = stage["summary"], stage["health"]
        lines.append(
            f"| {stage['label']} | {stage['transactions']:,} | {stage['outbox']:,} | {stage['read']['now']:.2f}"
            f" | {stage['read']['before']:.2f} | {summary['rps']:,} | {summary['p50_ms']} | {summary['p95_ms']}"
            f" | {summary['errors']} | {health['rps']:,} | {health['p95_ms']} |"
        )
    lines += [
        "",
        "The read no longer touches the history: open downlinks come from the partial indexes on the open",
        "statuses, closed ones and transactions of the last hour through the primary key (ids carry their",
        "time, `core/ids.py`). Rows created within the hour are still counted one by one, so that part grows",
        "with an hour's traffic; over HTTP each process reads at most once a second (`Snapshot`,",
        "`generated_at` says when), so concurrent readers share one read whatever it costs.",
        END,
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="a tenth of the rows and requests, to check the bench runs"
    )
    parser.add_argument("--no-write", action="store_true", help="print the section, leave docs/performance.md alone")
    args = parser.parse_args()
    stages, load = asyncio.run(run(args.quick))
    text = render(stages, load)
    publish(text, BEGIN, END, no_write=args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
