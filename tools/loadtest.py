"""``qris-soundbox loadtest``: the earlier implementation's ``npm run load:test`` (and
``load:test:staging`` as ``--profile staging``), with a saved JSON report.

It creates its own merchant, terminal and devices through the admin API
(``Load Merchant <stamp>``, serials ``LOAD-<stamp>-…``; never deleted, ledger
rows being immutable), then runs bounded bursts against the public routes:

- ``transaction_create``  POST /admin/transactions (a dynamic QR), ``LOAD_CALLBACKS`` of them
- ``callback_paid``       a signed paid callback for each of those transactions
- ``heartbeat``           POST /device/heartbeat with device credentials, ``LOAD_HEARTBEATS``
- ``dynamic_qr``          POST /device/transactions/dynamic-qr (generic-screen device), ``LOAD_DYNAMIC_QR``
- ``observability_summary`` and ``transactions_list``  GET reads, ``LOAD_READS`` each
- ``export_job``          (staging profile) POST /admin/exports/settlement-adjustments, then waits for completion
- ``health``              GET /health: the trivial route, the baseline every figure is compared with

The client is aiohttp with a connector limit of ``LOAD_CONCURRENCY``: httpx's async
pool is ~35× slower on this kind of machine and would measure itself
(the shared note notes/load-generation.md). Each scenario reports count, errors,
throughput and p50/p95/p99 latency beside /health's from the same run.
A non-loopback ``BASE_URL`` is refused unless ``--allow-remote``.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import platform as py_platform
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from qris_soundbox.tools.api import (
    BASE_URL_HELP,
    AdminApi,
    ApiError,
    DeviceCredential,
    admin_token,
    callback_body,
    callback_headers,
    default_base_url,
    device_headers,
    run_stamp,
    webhook_secret,
)
from qris_soundbox.tools.stats import latency_summary

MAX_COUNT = 100_000  # per scenario: a typo must not become a day-long flood
# (flag, env name, default, help): the seed's names and its documented example values.
COUNTS = (
    ("callbacks", "LOAD_CALLBACKS", 30, "dynamic QRs created, then paid by signed callbacks"),
    ("heartbeats", "LOAD_HEARTBEATS", 60, "HTTP heartbeats"),
    ("dynamic_qr", "LOAD_DYNAMIC_QR", 30, "device dynamic QR requests"),
    ("reads", "LOAD_READS", 30, "each of the two admin reads"),
    ("concurrency", "LOAD_CONCURRENCY", 10, "requests in flight (aiohttp connector limit)"),
    ("devices", "LOAD_DEVICES", 4, "devices sharing the heartbeats (each has its own rate limit)"),
    ("exports", "LOAD_EXPORTS", 3, "export jobs (staging profile)"),
    ("health", "LOAD_HEALTH", 0, "GET /health baseline requests (default: the largest other count)"),
    ("max_seconds", "LOAD_MAX_SECONDS", 300, "stop starting requests after this many seconds"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    load = subparsers.add_parser(
        "loadtest",
        help="load test of the HTTP and payment paths with a saved JSON report",
        description="Needs $ADMIN_TOKEN and $INTEGRATION_WEBHOOK_SECRET of the instance. Counts come from the flags,"
        " else the LOAD_* variables of the earlier implementation.",
    )
    load.add_argument("--base-url", default=default_base_url(), help=BASE_URL_HELP)
    load.add_argument("--admin-token", default=None, help="default: $ADMIN_TOKEN, else prompted")
    for name, env, default, text in COUNTS:
        load.add_argument(
            f"--{name.replace('_', '-')}",
            type=int,
            default=None,
            metavar="N",
            help=f"{text} (${env}, default {default})",
        )
    load.add_argument(
        "--profile",
        choices=("local", "staging"),
        default="local",
        help="staging adds async export jobs (npm run load:test:staging)",
    )
    load.add_argument(
        "--report-file",
        type=Path,
        default=None,
        help="default: $LOAD_REPORT_FILE, else reports/load-<UTC timestamp>.json",
    )
    load.add_argument("--allow-remote", action="store_true", help="allow a BASE_URL that is not this machine")
    load.set_defaults(handler=_loadtest)


@dataclass
class LoadConfig:
    base_url: str
    admin_token: str = field(repr=False)
    webhook_secret: str = field(repr=False)
    callbacks: int = 30
    heartbeats: int = 60
    dynamic_qr: int = 30
    reads: int = 30
    concurrency: int = 10
    devices: int = 4
    exports: int = 3
    health: int = 0
    max_seconds: int = 300
    profile: str = "local"

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("admin_token", "webhook_secret")}


def is_loopback(base_url: str) -> bool:
    host = urlsplit(base_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _count(args: argparse.Namespace, name: str, env: str, default: int) -> int:
    given = getattr(args, name)
    if given is None:
        raw = os.environ.get(env)
        try:
            given = int(raw) if raw else default
        except ValueError:
            sys.exit(f"qris-soundbox: {env} must be a whole number")
    if not 0 <= given <= MAX_COUNT:
        sys.exit(f"qris-soundbox: {env} (--{name.replace('_', '-')}) must be between 0 and {MAX_COUNT}")
    return given


@dataclass
class Burst:
    """One scenario's requests: every latency (successes and errors alike) and the errors by kind."""

    name: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    truncated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def report(self, health: Burst | None) -> dict[str, Any]:
        count = len(self.latencies_ms)
        figures: dict[str, Any] = {
            "count": count,
            "errors": sum(self.errors.values()),
            "error_kinds": dict(self.errors),
            "seconds": round(self.seconds, 3),
            "throughput_rps": round(count / self.seconds, 1) if self.seconds else 0.0,
            "latency": latency_summary(self.latencies_ms),
            "truncated": self.truncated,
            **self.extra,
        }
        if health is not None and health is not self and health.latencies_ms and count:
            base = health.report(None)
            figures["vs_health"] = {
                # how many times slower than /health at the median, and what share of its throughput
                "p50": round(figures["latency"]["p50_ms"] / base["latency"]["p50_ms"], 2)
                if base["latency"]["p50_ms"]
                else None,
                "throughput": round(figures["throughput_rps"] / base["throughput_rps"], 3)
                if base["throughput_rps"]
                else None,
            }
        return figures


# A request: given its index, send it and answer None (as expected) or an error label.
Send = Callable[[int], Awaitable[str | None]]


async def timed(result: Burst, request: Awaitable[str | None]) -> str | None:
    """Await one request, noting its latency (error or not) and its error label, if any, on ``result``."""
    started = time.perf_counter()
    try:
        error = await request
    except (aiohttp.ClientError, TimeoutError) as exc:
        error = f"transport {type(exc).__name__}"
    result.latencies_ms.append((time.perf_counter() - started) * 1000)
    if error:
        result.errors[error] += 1
    return error


async def burst(name: str, count: int, concurrency: int, send: Send, deadline: float) -> Burst:
    result = Burst(name)
    indexes = iter(range(count))  # shared by the workers: each index is sent once

    async def worker() -> None:
        for index in indexes:
            if time.monotonic() > deadline:
                result.truncated = True
                return
            await timed(result, send(index))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    result.seconds = time.perf_counter() - started
    return result


async def expect_status(response_cm: Any, status: int) -> tuple[str | None, Any]:
    """Read the whole answer (its time counts); None and the JSON if ``status``, else "<status> <code>"."""
    async with response_cm as response:
        raw = await response.read()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    if response.status == status:
        return None, body
    code = body.get("error", {}).get("code") if isinstance(body, dict) else None
    return f"{response.status} {code or 'unexpected'}", body


class LoadTest:
    def __init__(self, config: LoadConfig, out: Callable[[str], None] = print) -> None:
        self.config = config
        self.out = out
        self.stamp = run_stamp()
        self.admin = {"Authorization": f"Bearer {config.admin_token}"}

    async def setup(self) -> dict[str, Any]:
        """Its own merchant, terminal and devices, through the admin API (as an operator would)."""
        async with AdminApi(self.config.base_url, self.config.admin_token) as api:
            onboarded = await api.onboard_terminal(f"Load Merchant {self.stamp}")
            self.terminal_id = onboarded["terminal"]["id"]
            self.merchant_id = onboarded["merchant"]["id"]
            self.screen = await api.provision_device(f"LOAD-{self.stamp}-QR", "generic-screen", self.terminal_id)
            self.speakers: list[DeviceCredential] = [
                await api.provision_device(f"LOAD-{self.stamp}-{i + 1:03d}", "generic-audio")
                for i in range(max(1, self.config.devices))
            ]
        return {
            "merchant_id": self.merchant_id,
            "terminal_id": self.terminal_id,
            "screen_device_id": self.screen.device_id,
            "heartbeat_devices": [d.device_id for d in self.speakers],
        }

    async def run(self) -> dict[str, Any]:
        config = self.config
        started_at = datetime.now(UTC)
        load_before = os.getloadavg()
        setup = await self.setup()
        deadline = time.monotonic() + config.max_seconds
        connector = aiohttp.TCPConnector(limit=config.concurrency)
        timeout = aiohttp.ClientTimeout(total=30)
        bursts: list[Burst] = []
        async with aiohttp.ClientSession(config.base_url, connector=connector, timeout=timeout) as http:
            self.http = http
            health_count = config.health or max(config.callbacks, config.heartbeats, config.dynamic_qr, config.reads, 1)
            plan: list[tuple[str, int, Send]] = [
                ("health", health_count, self.health),
                ("transaction_create", config.callbacks, self.transaction_create),
                ("callback_paid", config.callbacks, self.callback_paid),
                ("heartbeat", config.heartbeats, self.heartbeat),
                ("dynamic_qr", config.dynamic_qr, self.dynamic_qr),
                ("observability_summary", config.reads, self.observability_summary),
                ("transactions_list", config.reads, self.transactions_list),
            ]
            if config.profile == "staging":
                plan.append(("export_job", config.exports, self.export_job))
            self.created: list[tuple[str, int]] = []
            self.export_ids: list[str] = []
            for name, count, send in plan:
                if name == "callback_paid":
                    count = len(self.created)  # one callback per transaction that was created
                result = await burst(name, count, config.concurrency, send, deadline)
                if name == "export_job":
                    result.extra = await self.exports_finished(deadline)
                bursts.append(result)
                self.out(f"  {name:<22} {len(result.latencies_ms):>6} requests, {sum(result.errors.values())} errors")
        health = bursts[0]
        scenarios = {b.name: b.report(health) for b in bursts}
        total = sum(s["count"] for s in scenarios.values())
        return {
            "started_at": started_at.isoformat(),
            "finished_at": datetime.now(UTC).isoformat(),
            "base_url": config.base_url,
            "config": config.public(),
            "setup": setup,
            "machine": {
                "python": py_platform.python_version(),
                "cpus": os.cpu_count(),
                "platform": py_platform.platform(),
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
            },
            "scenarios": scenarios,
            "totals": {
                "requests": total,
                "errors": sum(s["errors"] for s in scenarios.values()),
                "truncated": any(s["truncated"] for s in scenarios.values()),
            },
        }

    # ---- the requests ------------------------------------------------------------------------------------

    async def health(self, _index: int) -> str | None:
        return (await expect_status(self.http.get("/health"), 200))[0]

    async def transaction_create(self, index: int) -> str | None:
        return await self.create_transaction(10_000 + index, self.created)

    async def create_transaction(self, amount: int, created: list[tuple[str, int]]) -> str | None:
        """A dynamic QR for ``amount``; (its id, amount) is appended to ``created`` when it was made."""
        error, body = await expect_status(
            self.http.post(
                "/admin/transactions", json={"terminal_id": self.terminal_id, "amount": amount}, headers=self.admin
            ),
            201,
        )
        if error is None:
            created.append((body["id"], amount))
        return error

    async def callback_paid(self, index: int) -> str | None:
        return await self.pay(*self.created[index])

    async def pay(self, transaction_id: str, amount: int) -> str | None:
        """The acquirer's signed paid callback for one dynamic QR."""
        raw = json.dumps(callback_body(amount, transaction_id=transaction_id)).encode()
        return (
            await expect_status(
                self.http.post(
                    "/integrations/qris/callback", data=raw, headers=callback_headers(self.config.webhook_secret, raw)
                ),
                200,
            )
        )[0]

    async def heartbeat(self, index: int) -> str | None:
        device = self.speakers[index % len(self.speakers)]
        body = {"battery_level": 80, "network_strength": 70, "firmware_version": "loadtest-1", "uptime_s": index}
        return (
            await expect_status(self.http.post("/device/heartbeat", json=body, headers=device_headers(device)), 200)
        )[0]

    async def dynamic_qr(self, index: int) -> str | None:
        return (
            await expect_status(
                self.http.post(
                    "/device/transactions/dynamic-qr",
                    json={"amount": 5_000 + index},
                    headers=device_headers(self.screen),
                ),
                201,
            )
        )[0]

    async def observability_summary(self, _index: int) -> str | None:
        return (await expect_status(self.http.get("/admin/observability/summary", headers=self.admin), 200))[0]

    async def transactions_list(self, _index: int) -> str | None:
        return (
            await expect_status(self.http.get("/admin/transactions", params={"limit": "50"}, headers=self.admin), 200)
        )[0]

    async def export_job(self, _index: int) -> str | None:
        error, body = await expect_status(
            self.http.post(
                "/admin/exports/settlement-adjustments", json={"merchant_id": self.merchant_id}, headers=self.admin
            ),
            201,
        )
        if error is None:
            self.export_ids.append(body["id"])
        return error

    async def exports_finished(self, deadline: float) -> dict[str, Any]:
        """The staging profile's jobs run on the export worker: wait (bounded) until each finished."""
        started = time.perf_counter()
        statuses: dict[str, str] = {}
        while time.monotonic() < deadline:
            for job_id in self.export_ids:
                if statuses.get(job_id) not in ("completed", "failed"):
                    _, body = await expect_status(self.http.get(f"/admin/exports/{job_id}", headers=self.admin), 200)
                    statuses[job_id] = (body or {}).get("status", "unknown")
            if all(s in ("completed", "failed") for s in statuses.values()):
                break
            await asyncio.sleep(0.5)
        return {
            "jobs": dict(Counter(statuses.values())),
            "seconds_until_finished": round(time.perf_counter() - started, 1),
        }


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"{'scenario':<22} {'count':>6} {'errors':>6} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
        f"  vs /health (p50 ×, share of req/s)"
    ]
    for name, s in report["scenarios"].items():
        lat = s["latency"]
        vs = s.get("vs_health")
        versus = f"{vs['p50']}×, {vs['throughput']:.0%}" if vs and vs["p50"] and vs["throughput"] is not None else "—"
        lines.append(
            f"{name:<22} {s['count']:>6} {s['errors']:>6} {s['throughput_rps']:>8.1f} {lat['p50_ms']:>8.2f}"
            f" {lat['p95_ms']:>8.2f} {lat['p99_ms']:>8.2f}  {versus}"
        )
        if s["error_kinds"]:
            lines.append(f"{'':<22} errors: {', '.join(f'{k} ×{v}' for k, v in s['error_kinds'].items())}")
    return "\n".join(lines)


def write_report(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


def _loadtest(args: argparse.Namespace) -> None:
    if not is_loopback(args.base_url) and not args.allow_remote:
        sys.exit(f"qris-soundbox: {args.base_url} is not this machine; loading another machine needs --allow-remote")
    counts = {name: _count(args, name, env, default) for name, env, default, _ in COUNTS}
    if counts["concurrency"] < 1:
        sys.exit("qris-soundbox: LOAD_CONCURRENCY (--concurrency) must be at least 1")
    config = LoadConfig(
        base_url=args.base_url.rstrip("/"),
        admin_token=admin_token(args.admin_token),
        webhook_secret=webhook_secret(),
        profile=args.profile,
        **counts,
    )
    report_file = args.report_file or Path(
        os.environ.get("LOAD_REPORT_FILE") or f"reports/load-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    )
    print(
        f"load test against {config.base_url}: concurrency {config.concurrency}, profile {config.profile}", flush=True
    )
    try:
        report = asyncio.run(LoadTest(config, out=lambda line: print(line, flush=True)).run())
    except ApiError as exc:
        sys.exit(f"qris-soundbox: load test setup failed: {exc}")
    write_report(report, report_file)
    print(format_report(report))
    totals = report["totals"]
    print(
        f"{totals['requests']} requests, {totals['errors']} errors{', TRUNCATED by --max-seconds' if totals['truncated'] else ''};"
        f" report saved to {report_file}",
        flush=True,
    )
    if any("429" in kind for s in report["scenarios"].values() for kind in s["error_kinds"]):
        print(
            "note: 429 rate_limited answers: the server's RATE_LIMIT_* limits were reached"
            " (RATE_LIMIT_ENABLED=false on a test instance measures past them)",
            flush=True,
        )
    sys.exit(1 if totals["errors"] else 0)
