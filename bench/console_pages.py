"""Console pages at fleet scale: how long each page takes to show its first content.

Starts the platform (``serve`` in a subprocess with its own embedded PostgreSQL, as
``http_payments.py`` does), then seeds it:

- 20 merchants with 5 terminals each, and 10,000 devices, over the admin API;
- 100,000 transactions spread over the last 30 days, copied straight into the
  database (``COPY``: the pages read them, nothing needs them to have been paid
  through the callback; 100,000 signed callbacks would only measure the callback);
- 40 payments through the real signed callback and a settlement batch of them.

Then Debian's Chromium (Playwright) opens every console page ``--runs`` times in one
logged-in tab and reads the page's ``console-ready`` performance mark (set when its
first content is on screen: the list's first page, the dashboard's figures) and the
navigation timing's ``domContentLoaded``, both from the start of the navigation.

Usage: ``.venv/bin/python bench/console_pages.py [--quick] [--runs N] [--no-write]``.
Writes the "Console pages" section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
from common import machine_rows, write_section
from playwright.async_api import Page, async_playwright
from serving import ADMIN_TOKEN, WEBHOOK_SECRET, machine, platform_process, uptime

from qris_soundbox.control_plane.console import PAGES
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.db import Database
from qris_soundbox.core.embedded_pg import EmbeddedPostgres
from qris_soundbox.core.ids import new_id
from qris_soundbox.core.users import service as users
from qris_soundbox.tools.api import AdminApi, callback_body, callback_headers

BEGIN, END = "<!-- console-pages:begin -->", "<!-- console-pages:end -->"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]  # fmt: skip
PASSWORD = "bench console password"
ACTOR = AuditActor(actor_type="system", actor_id="bench")
TRANSACTION_COLUMNS = ("id", "merchant_id", "outlet_id", "terminal_id", "kind", "status", "amount", "reference",
                       "provider_reference", "fee_bps", "paid_at", "created_at", "updated_at")  # fmt: skip


async def seed_over_api(base_url: str, devices: int) -> dict[str, Any]:
    """Merchants, terminals and devices as an operator makes them; a few paid payments and a batch."""
    async with AdminApi(base_url, ADMIN_TOKEN) as api:
        terminals: list[dict[str, Any]] = []
        for n in range(20):
            made = await api.onboard_terminal(f"Warung Bench {n}", approve=True, qris_ready=True)
            terminals.append(made["terminal"])
            for k in range(4):
                terminals.append(await api.create_terminal(made["outlet"]["id"], {"name": f"Kasir {k + 2}"}))
        semaphore = asyncio.Semaphore(16)
        serial = f"BENCH-{secrets.token_hex(3)}"

        async def register(n: int) -> dict[str, Any]:
            async with semaphore:
                body = {"serial_number": f"{serial}-{n:05d}", "model": "generic-audio"}
                return await api.call("POST", "/admin/devices", json=body)

        registered = await asyncio.gather(*(register(n) for n in range(devices)))
        for device, terminal in zip(registered, terminals, strict=False):
            await api.call("POST", f"/admin/devices/{device['id']}/bind", json={"terminal_id": terminal["id"]})
    first = terminals[0]
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        paid = []
        for _ in range(40):
            body = msgspec.json.encode(callback_body(random.randint(1, 500) * 500, terminal_id=first["id"]))
            answer = await http.post(
                "/integrations/qris/callback", content=body, headers=callback_headers(WEBHOOK_SECRET, body)
            )
            paid.append(answer.json()["transaction_id"])
        batch = await http.post(
            "/admin/settlement-batches",
            json={"merchant_id": first["merchant_id"]},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
    return {
        "terminals": terminals,
        "device_id": registered[0]["id"],
        "transaction_id": paid[0],
        "batch_id": batch.json()["items"][0]["id"],
        "merchant_id": first["merchant_id"],
    }


def transaction_rows(terminals: list[dict[str, Any]], count: int) -> list[tuple[Any, ...]]:
    now = datetime.now(UTC)
    rows = []
    for n in range(count):
        terminal = terminals[n % len(terminals)]
        created = now - timedelta(seconds=random.uniform(0, 30 * 86400))
        status = random.choices(("paid", "pending", "expired", "failed"), weights=(80, 5, 12, 3))[0]
        paid = status == "paid"
        rows.append((
            new_id("txn"), terminal["merchant_id"], terminal["outlet_id"], terminal["id"], "static", status,
            random.randint(1, 400) * 500, f"B{n:019d}", f"BRRN{n:016d}" if paid else None, 70,
            created + timedelta(seconds=3) if paid else None, created, created,
        ))  # fmt: skip
    return rows


async def seed_in_database(workdir: Path, terminals: list[dict[str, Any]], transactions: int) -> None:
    """The bulk transactions, and a logged-in admin and merchant owner for the browser."""
    dsn = await EmbeddedPostgres(workdir / "var").start()  # joins the platform's running server
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "transactions", records=transaction_rows(terminals, transactions), columns=TRANSACTION_COLUMNS
        )
        await conn.execute("ANALYZE transactions")
    finally:
        await conn.close()
    db = await Database.connect(dsn, min_size=1, max_size=2)
    try:
        async with db.transaction() as tx:
            for kind, merchant_id in (("admin", None), ("merchant", terminals[0]["merchant_id"])):
                role = "admin" if kind == "admin" else "owner"
                await users.create_user(
                    tx, ACTOR, kind, email=f"bench@{kind}.test", name="Bench", role=role,
                    password=PASSWORD, merchant_id=merchant_id,
                )  # fmt: skip
    finally:
        await db.close()


def page_paths(world: dict[str, Any]) -> list[str]:
    ids = {
        "admin-merchant-detail": world["merchant_id"],
        "admin-device-detail": world["device_id"],
        "admin-transaction-detail": world["transaction_id"],
        "admin-settlement-batch-detail": world["batch_id"],
        "merchant-settlement-batch-detail": world["batch_id"],
    }
    pages = [f"{slug}?id={ids[slug]}" if slug in ids else slug for slug in PAGES if not slug.endswith("-login")]
    # Filters that match few rows make the database look further than the first page.
    return pages + [
        "admin-transactions?status=failed",
        "admin-device-registry?status=active",
        "merchant-transactions?status=expired",
    ]


async def log_in(page: Page, base_url: str, kind: str) -> None:
    await page.goto(f"{base_url}/ui/{kind}-login")
    await page.fill("input[name=email]", f"bench@{kind}.test")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"**/ui/{'admin-dashboard-overview' if kind == 'admin' else 'merchant-profile'}")


READ_TIMING = """() => {
  const ready = performance.getEntriesByName("console-ready")[0];
  const nav = performance.getEntriesByType("navigation")[0];
  return { ready: ready.startTime, dcl: nav.domContentLoadedEventEnd, errors: document.querySelectorAll("#content .error").length };
}"""


async def measure(base_url: str, paths: list[str], runs: int) -> list[dict[str, Any]]:
    results = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            for kind in ("admin", "merchant"):
                context = await browser.new_context(viewport={"width": 1280, "height": 900})
                page = await context.new_page()
                await log_in(page, base_url, kind)
                for path in (p for p in paths if p.startswith(kind)):
                    timings = []
                    for _ in range(runs):
                        await page.goto(f"{base_url}/ui/{path}")
                        await page.wait_for_selector("body[data-ready]", state="attached")
                        timings.append(await page.evaluate(READ_TIMING))
                    if any(t["errors"] for t in timings):
                        raise RuntimeError(f"{path} showed an error: see the platform's log")
                    ready = sorted(t["ready"] for t in timings)
                    results.append({
                        "page": path.replace("?id=", " ").split(" ")[0], "ready_p50": statistics.median(ready), "ready_max": ready[-1],
                        "dcl_p50": statistics.median(t["dcl"] for t in timings),
                    })  # fmt: skip
                await context.close()
        finally:
            await browser.close()
    return results


def render(results: list[dict[str, Any]], counts: dict[str, int], runs: int, load: tuple[str, str], took: float) -> str:
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    worst = max(r["ready_max"] for r in results)
    lines = [
        BEGIN,
        "",
        "## Console pages",
        "",
        f"`bench/console_pages.py`, {started}, {took:.0f} s. The platform (`serve`, embedded PostgreSQL) and "
        f"Chromium share the machine; {counts['devices']:,} devices, {counts['transactions']:,} transactions "
        f"(+ 40 paid through the callback), 20 merchants with 100 terminals. Each page opened {runs} times in "
        "one logged-in tab; *ready* is the page's `console-ready` mark (its first content on screen: the list's "
        "first page, the dashboard's figures), *DOMContentLoaded* the navigation timing's, both from the start "
        "of the navigation.",
        "",
        *machine_rows(
            {k: v for k, v in machine().items() if k != "aiohttp (client)"} | {"Chromium": "Debian package"}, load
        ),
        "",
        "| page | ready p50 ms | ready max ms | DOMContentLoaded p50 ms |",
        "|---|---|---|---|",
        *(f"| {r['page']} | {r['ready_p50']:.0f} | {r['ready_max']:.0f} | {r['dcl_p50']:.0f} |" for r in results),
        "",
        f"Slowest page, slowest run: {worst:.0f} ms (target: usable within 1,000 ms).",
        "",
        END,
    ]
    return "\n".join(lines)


async def run(devices: int, transactions: int, runs: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="qris-bench-console-") as tmp:
        workdir = Path(tmp)
        async with platform_process(workdir) as base_url:
            world = await seed_over_api(base_url, devices)
            await seed_in_database(workdir, world["terminals"], transactions)
            return await measure(base_url, page_paths(world), runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 devices and 10,000 transactions")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print the section, leave docs/performance.md alone")
    args = parser.parse_args()
    counts = {"devices": 1_000, "transactions": 10_000} if args.quick else {"devices": 10_000, "transactions": 100_000}
    before = uptime()
    started = time.monotonic()
    results = asyncio.run(run(counts["devices"], counts["transactions"], args.runs))
    section = render(results, counts, args.runs, (before, uptime()), time.monotonic() - started)
    print(section)
    if not args.no_write:
        write_section(section, BEGIN, END)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
