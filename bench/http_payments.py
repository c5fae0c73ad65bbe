"""HTTP and payment path: the load test's scenarios plus callback → announcement latency.

Starts the platform itself (``qris-soundbox serve`` in a subprocess, embedded
PostgreSQL in a temporary directory, free ports, rate limits off so the
figures are the server's, not the limiter's), then from this process (uvloop):

1. the ``loadtest`` scenarios (tools/loadtest.py, aiohttp, connector limit =
   concurrency) with ``GET /health`` as the same run's baseline;
2. the announcement latency: real MQTT devices (aiomqtt) bound to terminals,
   each acking what it hears, and signed static-QR callbacks; latency =
   downlink received − callback sent (one clock, this process), p50/p95/p99,
   first one callback at a time, then 16 in flight over 8 devices.

Usage: ``.venv/bin/python bench/http_payments.py [--quick] [--no-write]``.
Writes the "HTTP and payment path" section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform as py_platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
from common import DOC, HOST, free_port, machine_rows, write_section

from qris_soundbox.tools.api import AdminApi, DeviceCredential, callback_body, callback_headers
from qris_soundbox.tools.loadtest import LoadConfig, LoadTest
from qris_soundbox.tools.stats import latency_summary

BEGIN, END = "<!-- http-payments:begin -->", "<!-- http-payments:end -->"
ADMIN_TOKEN = "bench-admin-token"
WEBHOOK_SECRET = "bench-webhook-secret"


@dataclass(frozen=True)
class Plan:
    health: int
    callbacks: int
    heartbeats: int
    dynamic_qr: int
    reads: int
    concurrency: int
    sequential_announcements: int
    concurrent_announcements: int
    announcement_devices: int = 8
    announcement_concurrency: int = 16


FULL = Plan(
    health=4000,
    callbacks=1000,
    heartbeats=2000,
    dynamic_qr=1000,
    reads=300,
    concurrency=32,
    sequential_announcements=200,
    concurrent_announcements=800,
)
QUICK = Plan(
    health=400,
    callbacks=100,
    heartbeats=200,
    dynamic_qr=100,
    reads=50,
    concurrency=32,
    sequential_announcements=30,
    concurrent_announcements=100,
)


@contextlib.asynccontextmanager
async def platform_process(workdir: Path):
    """``serve`` on free ports with its own embedded PostgreSQL; yields (base URL, server pid)."""
    http_port, mqtt_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("PG")}
    env.update(
        ADMIN_TOKEN=ADMIN_TOKEN,
        INTEGRATION_WEBHOOK_SECRET=WEBHOOK_SECRET,
        RATE_LIMIT_ENABLED="false",
        LOG_LEVEL="WARNING",
        EXPORT_STORAGE_DIR=str(workdir / "exports"),
    )
    log = (workdir / "serve.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qris_soundbox.tools.cli",
            "serve",
            "--data-dir",
            str(workdir / "var"),
            "--http-port",
            str(http_port),
            "--mqtt-port",
            str(mqtt_port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    base_url = f"http://{HOST}:{http_port}"
    try:
        deadline = time.monotonic() + 120
        async with aiohttp.ClientSession() as http:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"serve exited with {process.returncode}: see {workdir / 'serve.log'}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{base_url}/health/deep") as response:
                        if response.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise TimeoutError("the platform did not become healthy within 120 s")
                await asyncio.sleep(0.3)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


class Listener:
    """A provisioned device on a real MQTT session: records when each payment arrives and acks it."""

    def __init__(self, credential: DeviceCredential, terminal_id: str) -> None:
        self.credential = credential
        self.terminal_id = terminal_id
        self.received: dict[str, float] = {}
        self.arrived = asyncio.Event()

    async def run(self, ready: asyncio.Event) -> None:
        device_id = self.credential.device_id
        async with aiomqtt.Client(
            self.credential.broker_host,
            self.credential.broker_port,
            username=device_id,
            password=self.credential.secret,
            identifier=device_id,
            timeout=10,
        ) as client:
            await client.subscribe(f"devices/{device_id}/downlink/#", qos=1)
            ready.set()
            async for message in client.messages:
                now = time.perf_counter()
                body = json.loads(message.payload)
                if body.get("type") == "payment":
                    self.received.setdefault(body["transaction_id"], now)
                    self.arrived.set()
                    await client.publish(
                        f"devices/{device_id}/uplink/payment/ack", json.dumps({"message_id": body["message_id"]}), qos=1
                    )


async def announcement_latency(base_url: str, plan: Plan) -> dict[str, Any]:
    async with AdminApi(base_url, ADMIN_TOKEN) as api:
        listeners = []
        for i in range(plan.announcement_devices):
            terminal_id = (await api.onboard_terminal(f"Bench Merchant {i + 1}"))["terminal"]["id"]
            credential = await api.provision_device(f"BENCH-{i + 1:03d}", "generic-audio", terminal_id)
            listeners.append(Listener(credential, terminal_id))
    readies = [asyncio.Event() for _ in listeners]
    tasks = [asyncio.create_task(listener.run(ready)) for listener, ready in zip(listeners, readies, strict=True)]
    try:
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 15)
        async with aiohttp.ClientSession(base_url, connector=aiohttp.TCPConnector(limit=32)) as http:
            sent: dict[str, tuple[float, Listener]] = {}
            answered_ms: list[float] = []

            async def pay(listener: Listener, amount: int) -> None:
                raw = json.dumps(callback_body(amount, terminal_id=listener.terminal_id)).encode()
                started = time.perf_counter()
                async with http.post(
                    "/integrations/qris/callback", data=raw, headers=callback_headers(WEBHOOK_SECRET, raw)
                ) as response:
                    body = await response.json()
                if response.status == 200:
                    answered_ms.append((time.perf_counter() - started) * 1000)
                    sent[body["transaction_id"]] = (started, listener)

            results = {}
            for phase, count, in_flight in (
                ("one at a time", plan.sequential_announcements, 1),
                (
                    f"{plan.announcement_concurrency} in flight over {len(listeners)} devices",
                    plan.concurrent_announcements,
                    plan.announcement_concurrency,
                ),
            ):
                sent.clear()
                answered_ms.clear()
                indexes = iter(range(count))

                async def worker(order: Iterator[int]) -> None:
                    for i in order:
                        await pay(listeners[i % len(listeners)], 1_000 + i)

                await asyncio.gather(*(worker(indexes) for _ in range(in_flight)))
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and any(
                    t not in listener.received for t, (_, listener) in sent.items()
                ):
                    await asyncio.sleep(0.05)
                latencies = [
                    (listener.received[t] - s) * 1000 for t, (s, listener) in sent.items() if t in listener.received
                ]
                results[phase] = {
                    **latency_summary(latencies),
                    "callbacks": count,
                    "accepted": len(sent),
                    "not_announced_within_10s": len(sent) - len(latencies),
                    "callback_answer": latency_summary(answered_ms),
                }
            return results
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def machine() -> dict[str, str]:
    cpu, ram = "unknown", "unknown"
    with contextlib.suppress(OSError):
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            cpu,
        )
        kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        ram = f"{kib / 2**20:.1f} GiB"
    return {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "RAM": ram,
        "Python": py_platform.python_version(),
        "litestar": version("litestar"),
        "aiohttp (client)": version("aiohttp"),
    }


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def render(
    plan: Plan,
    report: dict[str, Any],
    announcements: dict[str, Any],
    info: dict[str, str],
    load: tuple[str, str],
    seconds: float,
) -> str:
    lines = [
        BEGIN,
        "",
        "## HTTP and payment path",
        "",
        f"`bench/http_payments.py{' --quick' if plan is QUICK else ''}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())},"
        f" {seconds:.0f} s. The platform (`serve`, embedded PostgreSQL, rate limits off) and the load generator"
        f" (aiohttp, {plan.concurrency} connections, uvloop) share the machine.",
        "",
        *machine_rows(info, load),
        "",
        "| scenario | requests | errors | req/s | p50 ms | p95 ms | p99 ms | p50 vs /health | req/s vs /health |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in report["scenarios"].items():
        lat, vs = s["latency"], s.get("vs_health")
        versus = f"{vs['p50']:.2f}× | {vs['throughput']:.0%}" if vs else "baseline | baseline"
        lines.append(
            f"| {name} | {s['count']:,} | {s['errors']} | {s['throughput_rps']:,.0f} | {lat['p50_ms']:.2f}"
            f" | {lat['p95_ms']:.2f} | {lat['p99_ms']:.2f} | {versus} |"
        )
    lines += [
        "",
        "Callback → announcement on the device (signed static-QR callback sent → payment downlink received"
        " by a real MQTT device, which acks it):",
        "",
        "| load | callbacks | announced | p50 ms | p95 ms | p99 ms | max ms | callback answered p50 / p99 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for phase, a in announcements.items():
        answer = a["callback_answer"]
        lines.append(
            f"| {phase} | {a['callbacks']:,} | {a['count']:,} | {a['p50_ms']:.2f} | {a['p95_ms']:.2f}"
            f" | {a['p99_ms']:.2f} | {a['max_ms']:.2f} | {answer['p50_ms']:.2f} / {answer['p99_ms']:.2f} |"
        )
    lines += ["", END]
    return "\n".join(lines)


async def run(plan: Plan) -> tuple[dict[str, Any], dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="qris-bench-http-") as tmp:
        async with platform_process(Path(tmp)) as base_url:
            config = LoadConfig(
                base_url=base_url,
                admin_token=ADMIN_TOKEN,
                webhook_secret=WEBHOOK_SECRET,
                health=plan.health,
                callbacks=plan.callbacks,
                heartbeats=plan.heartbeats,
                dynamic_qr=plan.dynamic_qr,
                reads=plan.reads,
                concurrency=plan.concurrency,
                devices=8,
                max_seconds=240,
            )
            print("load test scenarios:", flush=True)
            report = await LoadTest(config, out=lambda line: print(line, flush=True)).run()
            print("callback → announcement latency ...", flush=True)
            announcements = await announcement_latency(base_url, plan)
    return report, announcements


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the requests, to check the bench runs")
    parser.add_argument("--no-write", action="store_true", help="print the section, leave docs/performance.md alone")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    import uvloop

    before, started = uptime(), time.monotonic()
    report, announcements = uvloop.run(run(plan))
    text = render(plan, report, announcements, machine(), (before, uptime()), time.monotonic() - started)
    print(text)
    if not args.no_write:
        write_section(text, BEGIN, END)
        print(f"written to {DOC}")
    return 1 if report["totals"]["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
