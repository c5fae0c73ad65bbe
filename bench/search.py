"""The console's search (``q`` on the list routes) over 1,000,000 transactions and 100,000 devices.

Starts an embedded PostgreSQL of its own, applies the migrations and fills it with SQL
(``generate_series``): 2,000 merchants with 5 terminals each, 100,000 devices (10,000 of them bound),
1,000,000 transactions. Then runs each search as the list routes run it (the same named statement
from ``sql/queries/``, the same parameters the services compute, a first page of 50) ``--runs``
times with a different term each time, and reports p50 / p95 of the statement's time on one
connection. The HTTP layer around it is what every list pays (docs/performance.md, other sections).

Usage: ``.venv/bin/python bench/search.py [--quick] [--runs N] [--no-write]``.
Writes the "Search" section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
from common import machine_rows, publish
from serving import machine, uptime

from qris_soundbox.core.db import QUERIES
from qris_soundbox.core.embedded_pg import EmbeddedPostgres
from qris_soundbox.core.migrations import migrate
from qris_soundbox.core.paging import contains_pattern

BEGIN, END = "<!-- search:begin -->", "<!-- search:end -->"
LIMIT = 50

SEED = """
INSERT INTO merchants (id, code, name, city, nmid, status)
SELECT 'mer_' || lpad(i::text, 8, '0'), 'M' || lpad(i::text, 6, '0'),
       (ARRAY['Warung', 'Toko', 'Kopi', 'Bakso', 'Sate', 'Mie'])[1 + i % 6] || ' ' || md5(i::text),
       'Jakarta', 'ID' || lpad(i::text, 13, '0'), 'active'
FROM generate_series(1, $1::int) AS i;
INSERT INTO outlets (id, merchant_id, name)
SELECT 'out_' || substr(id, 5), id, 'Outlet ' || code FROM merchants;
INSERT INTO terminals (id, outlet_id, merchant_id, name, terminal_code)
SELECT 'ter_' || lpad((m * 5 + k)::text, 9, '0'), 'out_' || lpad(m::text, 8, '0'), 'mer_' || lpad(m::text, 8, '0'),
       'Kasir ' || k, 'T' || lpad((m * 5 + k)::text, 7, '0')
FROM generate_series(1, $1::int) AS m, generate_series(0, 4) AS k;
INSERT INTO devices (id, serial_number, model_id, status, terminal_id)
SELECT 'dev_' || lpad(i::text, 9, '0'), 'SB-' || upper(substr(md5('d' || i), 1, 10)), 'generic-audio', 'active',
       CASE WHEN i <= $1::int * 5 THEN 'ter_' || lpad((5 + i - 1)::text, 9, '0') END
FROM generate_series(1, $2::int) AS i;
"""
SEED_TRANSACTIONS = """
INSERT INTO transactions (id, merchant_id, outlet_id, terminal_id, kind, status, amount, reference,
                          provider_reference, fee_bps, paid_at, created_at, updated_at)
SELECT 'txn_' || lpad(i::text, 10, '0'), t.merchant_id, t.outlet_id, t.id, 'static', 'paid',
       1000 + (i::bigint * 7919) % 500000, 'REF' || upper(substr(md5('r' || i), 1, 17)),
       'RRN' || upper(substr(md5('p' || i), 1, 17)), 70, now() - (i || ' seconds')::interval,
       now() - (i || ' seconds')::interval, now()
FROM generate_series($1::int, $2::int) AS i
JOIN terminals t ON t.id = 'ter_' || lpad((5 + i % ($3::int * 5))::text, 9, '0');
"""


async def seed(conn: asyncpg.Connection, merchants: int, devices: int, transactions: int) -> None:
    started = time.monotonic()
    for statement in SEED.strip().split(";\n"):
        args = [a for a, n in ((merchants, "$1"), (devices, "$2")) if n in statement]
        await conn.execute(statement, *args) if args else await conn.execute(statement)
    step = 100_000
    for first in range(1, transactions + 1, step):
        await conn.execute(SEED_TRANSACTIONS, first, min(first + step - 1, transactions), merchants)
        print(f"  {min(first + step - 1, transactions):,} transactions", flush=True)
    await conn.execute("ANALYZE")
    print(f"seeded in {time.monotonic() - started:.0f} s", flush=True)


def md5_of(text: str) -> str:
    """What the seed's ``md5(...)`` made for a row (lower-case hex)."""
    return hashlib.md5(text.encode()).hexdigest()


def searches(merchants: int, devices: int, transactions: int) -> dict[str, tuple[str, Callable[[], list[Any]]]]:
    """Each search: the list statement and a function giving one run's parameters (a fresh term)."""
    pick = random.Random(27)

    def merchant(term: str) -> list[Any]:
        return [None, LIMIT + 1, None, None, term, contains_pattern(term)]

    def transaction(term: str, amount: int | None = None) -> list[Any]:
        return [None, LIMIT + 1, None, None, None, None, None, term, amount]

    def amount() -> list[Any]:
        value = 1000 + (pick.randint(1, transactions) * 7919) % 500000
        return transaction(str(value), value)

    return {
        "merchant, part of the name": ("list_merchants", lambda: merchant(md5_of(str(pick.randint(1, merchants)))[:6])),
        "merchant, code": ("list_merchants", lambda: merchant(f"M{pick.randint(1, merchants):06d}")),
        "merchant, NMID": ("list_merchants", lambda: merchant(f"ID{pick.randint(1, merchants):013d}")),
        "terminal, code": (
            "list_terminals",
            lambda: [None, LIMIT + 1, None, None, None, None, f"T{pick.randint(5, merchants * 5 + 4):07d}"],
        ),
        "device, part of the serial": (
            "device_page",
            lambda: [
                None,
                LIMIT + 1,
                None,
                None,
                None,
                None,
                None,
                None,
                contains_pattern(md5_of(f"d{pick.randint(1, devices)}")[2:8]),
            ],
        ),  # fmt: skip
        "transaction, RRN": (
            "list_transactions",
            lambda: transaction("RRN" + md5_of(f"p{pick.randint(1, transactions)}")[:17].upper()),
        ),
        "transaction, reference": (
            "list_transactions",
            lambda: transaction("REF" + md5_of(f"r{pick.randint(1, transactions)}")[:17].upper()),
        ),
        "transaction, amount": ("list_transactions", amount),
    }


async def run(quick: bool, runs: int) -> tuple[dict[str, Any], list[dict[str, Any]], tuple[str, str]]:
    merchants, devices, transactions = (200, 10_000, 100_000) if quick else (2_000, 100_000, 1_000_000)
    load_before = uptime()
    results = []
    with tempfile.TemporaryDirectory(prefix="qris-bench-search-") as tmp:
        postgres = EmbeddedPostgres(Path(tmp))
        dsn = await postgres.start()
        try:
            conn = await asyncpg.connect(dsn)
            try:
                await migrate(conn)
                await seed(conn, merchants, devices, transactions)
                for label, (name, params) in searches(merchants, devices, transactions).items():
                    statement = await conn.prepare(QUERIES[name])
                    times, found = [], []
                    for _ in range(runs):
                        args = params()
                        started = time.perf_counter()
                        rows = await statement.fetch(*args)
                        times.append((time.perf_counter() - started) * 1000)
                        found.append(len(rows))
                    times.sort()
                    result = {
                        "label": label,
                        "p50": statistics.median(times),
                        "p95": times[max(0, int(len(times) * 0.95) - 1)],
                        "rows": statistics.median(found),
                    }
                    results.append(result)
                    print(f"{label}: p50 {result['p50']:.2f} ms, p95 {result['p95']:.2f} ms, rows {result['rows']}")
            finally:
                await conn.close()
        finally:
            await postgres.stop()
    sizes = {"merchants": merchants, "terminals": merchants * 5, "devices": devices, "transactions": transactions}
    return sizes, results, (load_before, uptime())


def render(sizes: dict[str, Any], results: list[dict[str, Any]], load: tuple[str, str], runs: int) -> str:
    lines = [
        BEGIN,
        "## Search",
        "",
        f'`bench/search.py`: the list statements with `q` (docs/console.md "Search"), {runs} different',
        "terms each, a first page of 50, one connection, over "
        + ", ".join(f"{count:,} {what}" for what, count in sizes.items())
        + ". Statement time only (the HTTP layer is every list's: see the sections above).",
        "",
        *machine_rows(machine(), load),
        "",
        "| search | p50 (ms) | p95 (ms) | rows (median) |",
        "|---|---|---|---|",
        *(f"| {r['label']} | {r['p50']:.2f} | {r['p95']:.2f} | {r['rows']:g} |" for r in results),
        END,
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the rows, to check the bench runs")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--no-write", action="store_true", help="print the section, leave docs/performance.md alone")
    args = parser.parse_args()
    sizes, results, load = asyncio.run(run(args.quick, args.runs))
    text = render(sizes, results, load, args.runs)
    publish(text, BEGIN, END, no_write=args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
