"""The cost of the merchant's "hari ini" page: N open tills polling ``GET /merchant/today`` every 2 s.

Starts ``serve`` with its own embedded PostgreSQL (as the other benches do), onboards one merchant with a
terminal and a few hundred paid payments today (real signed callbacks), logs in N merchant users, and
lets each poll as the page does (one request, then 2 s, then the next) for ``--seconds``. Reported: the
requests per second the tills make, the answer's p50/p95, and the CPU the platform spent (the serve
process and its children, embedded PostgreSQL included) as a share of one core.

Usage: ``.venv/bin/python bench/today_poll.py [--tills 10,50,200] [--seconds 30] [--no-write]``.
Writes the "Merchant 'hari ini' poll" section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
import psutil
from common import machine_rows, write_section
from http_payments import ADMIN_TOKEN, WEBHOOK_SECRET, machine, serve_process, uptime

from qris_soundbox.tools.api import AdminApi, callback_body, callback_headers

BEGIN, END = "<!-- today-poll:begin -->", "<!-- today-poll:end -->"
POLL_S = 2.0
PASSWORD = "bench today password"


def cpu_seconds(pid: int) -> float:
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


async def seed(base_url: str, payments: int) -> str:
    """One merchant with ``payments`` paid today; its id."""
    async with AdminApi(base_url, ADMIN_TOKEN) as api:
        onboarded = await api.onboard_terminal("Warung Bench Hari Ini")
    ids = {"merchant_id": onboarded["merchant"]["id"], "terminal_id": onboarded["terminal"]["id"]}
    async with aiohttp.ClientSession(base_url) as http:
        for _ in range(payments):
            raw = json.dumps(callback_body(10_000, terminal_id=ids["terminal_id"])).encode()
            async with http.post(
                "/integrations/qris/callback", data=raw, headers=callback_headers(WEBHOOK_SECRET, raw)
            ) as response:
                assert response.status == 200, await response.text()
    return ids["merchant_id"]


async def till_tokens(base_url: str, merchant_id: str, count: int) -> list[str]:
    tokens = []
    async with aiohttp.ClientSession(base_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as http:
        for number in range(count):
            email = f"kasir{number}-{time.monotonic_ns()}@bench.test"
            async with http.post(
                "/admin/merchant-users",
                json={"email": email, "name": f"Kasir {number}", "role": "viewer", "merchant_id": merchant_id},
            ) as response:
                password = (await response.json())["temporary_password"]
            async with http.post("/merchant/login", json={"email": email, "password": password}) as response:
                tokens.append((await response.json())["token"])
    return tokens


async def poll_for(base_url: str, tokens: list[str], seconds: float, pid: int) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + seconds

    async def till(http: aiohttp.ClientSession, token: str, offset: float) -> None:
        nonlocal errors
        await asyncio.sleep(offset)  # tills opened at different moments, not in lockstep
        while time.monotonic() < stop_at:
            started = time.monotonic()
            async with http.get("/merchant/today", headers={"Authorization": f"Bearer {token}"}) as response:
                await response.read()
                errors += response.status != 200
            latencies.append(time.monotonic() - started)
            await asyncio.sleep(POLL_S)

    cpu_before, wall_before = cpu_seconds(pid), time.monotonic()
    async with aiohttp.ClientSession(base_url, connector=aiohttp.TCPConnector(limit=0)) as http:
        await asyncio.gather(*(till(http, token, POLL_S * i / len(tokens)) for i, token in enumerate(tokens)))
    wall = time.monotonic() - wall_before
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "requests_per_s": len(latencies) / wall,
        "p50_ms": cuts[49] * 1000,
        "p95_ms": cuts[94] * 1000,
        "cpu_share": (cpu_seconds(pid) - cpu_before) / wall,
        "errors": errors,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tills", default="10,50,200", help="comma-separated numbers of open tills")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--payments", type=int, default=200, help="payments today on the merchant")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    counts = [int(n) for n in args.tills.split(",")]
    load_before = uptime()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-today-") as workdir:
        async with serve_process(Path(workdir)) as platform:
            merchant_id = await seed(platform.base_url, args.payments)
            tokens = await till_tokens(platform.base_url, merchant_id, max(counts))
            for count in counts:
                figures = await poll_for(platform.base_url, tokens[:count], args.seconds, platform.pid)
                rows.append((count, figures))
                print(count, figures, flush=True)
    load_after = uptime()
    lines = [
        BEGIN,
        "## Merchant 'hari ini' poll",
        "",
        f"`bench/today_poll.py --tills {args.tills} --seconds {args.seconds:g} --payments {args.payments}`: each open"
        f" till polls `GET /merchant/today` every {POLL_S:g} s (the page's poll), on one merchant with"
        f" {args.payments} payments today. CPU is the platform's (serve and its embedded PostgreSQL) as a share of one core.",
        "",
        *machine_rows(machine(), (load_before, load_after)),
        "",
        "| open tills | requests/s | p50 | p95 | platform CPU (one core = 100 %) | errors |",
        "|---|---|---|---|---|---|",
        *(
            f"| {count} | {f['requests_per_s']:.1f} | {f['p50_ms']:.1f} ms | {f['p95_ms']:.1f} ms |"
            f" {f['cpu_share'] * 100:.1f} % | {f['errors']:.0f} |"
            for count, f in rows
        ),
        "",
        END,
    ]
    if not args.no_write:
        write_section("\n".join(lines), BEGIN, END)
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
