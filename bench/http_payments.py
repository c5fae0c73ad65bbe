"""HTTP and payment path: every figure of issue 17, in one run, against its target.

This process provisions an embedded PostgreSQL in a temporary directory with
``--devices`` MQTT devices (``provisioned_fleet`` of bench/broker_scale.py:
secrets hashed as a rotation does, one INSERT), starts ``qris-soundbox serve``
on it (``DATABASE_URL``, free ports, rate limits off so the figures are the
server's, not the limiter's; ``--serve-arg`` passed through), onboards the load
test's merchant, terminal, dynamic-QR screen and 32 heartbeat devices through
the admin API (tools/loadtest.py), binds every fleet device to a terminal of
its own in SQL, then measures from this process (uvloop, aiohttp with a
connector limit of 32):

1. ``GET /health`` at 32 concurrent clients: the same run's baseline.
2. The seed mix at 32 concurrent clients, each taking the next operation of a
   shuffled cycle in the seed's proportions (tools/loadtest.py COUNTS): 30
   transaction create + signed paid callback for it, 60 HTTP heartbeats
   (spread over 32 devices), 30 device dynamic QRs, 30 observability reads.
3. Signed static-QR callbacks alone (terminal_id, unique event ids) at 32
   concurrency, then the database floor: the callback's SQL effects (claim,
   transaction, two events, status update, three ledger rows, outbox row and
   pg_notify, completion, audit row; one transaction) issued directly with
   asyncpg on 32 connections against the same database.
   Steps 1 and 2 alternate in rounds, as do the two halves of step 3, so that
   a figure and the one it is set against share the machine's neighbours.
4. Callback → announcement: the fleet connected (the hand-written MQTT client
   of broker_scale.py, real device auth), signed static-QR callbacks at a
   steady rate, each to another device's terminal; latency = callback sent →
   payment downlink heard by the device, which acks it; lost, and heard again
   after the ack.
5. MQTT heartbeat: nothing answers one, so what is measured is the broker's
   round trip (heartbeat PUBLISH at QoS 1 → PUBACK) and the time until the
   heartbeat is visible in PostgreSQL, by probe devices while step 4 runs.
6. ``--profile``: ``pg_stat_statements`` over the mix of step 2 (the embedded
   server is restarted with it loaded), and py-spy (the ``bench`` extra) on
   the server's processes during a second mix of the same kind.

Usage: ``.venv/bin/python bench/http_payments.py [--quick] [--profile] [--serve-arg="--workers 2"] [--no-write]``.
Writes the "HTTP and payment path" section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil
from common import DOC, HOST, machine_rows, write_section
from fleet import (
    CONNECT_CONCURRENCY,
    Client,
    announcement_client,
    latency_percentiles,
    open_client,
    provisioned_fleet,
    raise_fd_limit,
)
from fleet import publish_packet as mqtt_publish
from serving import ADMIN_TOKEN, CONCURRENCY, WEBHOOK_SECRET, enable_pg_stat_statements, machine, serve_process, uptime

from qris_soundbox.core.ids import new_id
from qris_soundbox.core.outbox import CHANNEL, downlink_topic
from qris_soundbox.tools.api import callback_body, callback_headers
from qris_soundbox.tools.loadtest import Burst, LoadConfig, LoadTest, burst, expect_status, timed

BEGIN, END = "<!-- http-payments:begin -->", "<!-- http-payments:end -->"
CORES = os.cpu_count() or 1
HEARTBEAT_DEVICES = 32
PROBES = 4  # fleet devices bound to no terminal: the MQTT heartbeat probes
PROBE_POLL_S = 0.01  # how often a probe looks for its heartbeat in PostgreSQL
PROBE_PAUSE_S = 0.25  # between one probe's heartbeats
PUBLISHED_BASELINE_RPS = 325  # the earlier implementation's published figure (issue 17)
ISSUE_MIX_RPS = 680  # the earlier implementation's mix as measured in issue 17's text
MIX_WEIGHTS = {"pay": 30, "heartbeat": 60, "dynamic_qr": 30, "observability_summary": 30}
FLOOR, CALLBACKS = "database floor (asyncpg, same effects)", "static-QR callbacks alone"
# Each device route alone, in rounds with a /health burst of their own: its p95 against /health's.
HEALTH_BESIDE, HEARTBEAT_ALONE, DYNAMIC_QR_ALONE = (
    "/health (beside the routes alone)",
    "HTTP heartbeat alone",
    "dynamic QR alone",
)
ALONE = (HEALTH_BESIDE, HEARTBEAT_ALONE, DYNAMIC_QR_ALONE)
MIX_OPERATIONS = ("transaction_create", "callback_paid", "heartbeat", "dynamic_qr", "observability_summary")


@dataclass(frozen=True)
class Plan:
    seconds: float  # each of: /health, the mix, callbacks alone, the database floor
    rounds: int  # /health and the mix alternate, as do the callbacks and the floor, in this many rounds
    devices: int  # MQTT devices connected and bound to terminals
    rate: int  # callbacks per second for the announcement latency (first a quarter of it, a third as long)
    announce_s: float  # after one second of warm-up, which is not counted
    profile_s: float


FULL = Plan(seconds=20, rounds=4, devices=5_000, rate=200, announce_s=30, profile_s=10)
QUICK = Plan(seconds=3, rounds=1, devices=300, rate=100, announce_s=4, profile_s=3)


async def bind_fleet(pool: asyncpg.Pool, load: LoadTest, device_ids: list[str]) -> list[str]:
    """A terminal of its own for each device, next to the load test's terminal, and the device bound to it
    (as ``POST /admin/devices/{id}/bind`` leaves it), in two statements; returns the terminal ids in order."""
    terminal_ids = [new_id("ter") for _ in device_ids]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO terminals (id, outlet_id, merchant_id, name, terminal_code)"
            " SELECT t.id, l.outlet_id, l.merchant_id, 'Bench ' || t.n, 'B' || t.n FROM terminals l,"
            " unnest($2::text[]) WITH ORDINALITY AS t (id, n) WHERE l.id = $1",
            load.terminal_id,
            terminal_ids,
        )
        await conn.execute(
            "UPDATE devices d SET terminal_id = b.terminal_id, bound_at = now() FROM unnest($1::text[], $2::text[])"
            " AS b (device_id, terminal_id) WHERE d.id = b.device_id",
            device_ids,
            terminal_ids,
        )
    return terminal_ids


def static_callback(http: aiohttp.ClientSession, terminal_id: str, amount: int) -> Any:
    raw = json.dumps(callback_body(amount, terminal_id=terminal_id)).encode()
    return http.post("/integrations/qris/callback", data=raw, headers=callback_headers(WEBHOOK_SECRET, raw))


async def for_seconds(name: str, seconds: float, send: Any) -> Burst:
    """``send(index)`` from CONCURRENCY workers until ``seconds`` have passed."""
    return await burst(name, 10**9, CONCURRENCY, send, time.monotonic() + seconds)


Phase = Callable[[float], Awaitable[dict[str, Burst]]]  # runs for the seconds given: its figures by name


def single(name: str, send: Any) -> Phase:
    async def phase(seconds: float) -> dict[str, Burst]:
        return {name: await for_seconds(name, seconds, send)}

    return phase


class CpuMeter:
    """CPU seconds (user + system) used so far by each side: the server's processes, PostgreSQL's, and this
    load generator. Per request, it says where a request's cost lands and how far two cores can go."""

    def __init__(self, server_pid: int, postmaster_pid: int) -> None:
        self._roots = {"server": psutil.Process(server_pid), "PostgreSQL": psutil.Process(postmaster_pid)}
        self._seen: dict[int, psutil.Process] = {}

    def read(self) -> dict[str, float]:
        used = {"load generator": _cpu(psutil.Process())}
        for side, root in self._roots.items():
            with contextlib.suppress(psutil.Error):
                used[side] = sum(_cpu(p) for p in [root, *root.children(recursive=True)])
        return used


def _cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.Error:  # it exited between the listing and the reading
        return 0.0
    return times.user + times.system + times.children_user + times.children_system


async def alternating(
    rounds: int, seconds: float, *phases: tuple[str, Phase], meter: CpuMeter | None = None
) -> tuple[dict[str, Burst], dict[str, dict[str, float]]]:
    """``phases`` in turn, ``rounds`` times, ``seconds`` each in all: on a machine others share, a figure and
    the one it is divided by see the same neighbours. The rounds of each figure are added up, and so is the
    CPU each side used during each phase (by the phase's label)."""
    totals: dict[str, Burst] = {}
    cpu: dict[str, dict[str, float]] = {}
    for _ in range(rounds):
        for label, phase in phases:
            before = meter.read() if meter else {}
            parts = await phase(seconds / rounds)
            after = meter.read() if meter else {}
            spent = cpu.setdefault(label, {})
            for side in after:
                spent[side] = spent.get(side, 0.0) + after[side] - before.get(side, after[side])
            for name, part in parts.items():
                total = totals.setdefault(name, Burst(name))
                total.latencies_ms += part.latencies_ms
                total.errors.update(part.errors)
                total.seconds += part.seconds
    return totals, cpu


async def seed_mix(load: LoadTest, seconds: float) -> dict[str, Burst]:
    """The seed's operations in its proportions, interleaved: each worker takes the next of a shuffled cycle;
    a transaction create is followed by the paid callback for that transaction, by the same worker."""
    cycle = [name for name, weight in MIX_WEIGHTS.items() for _ in range(weight)]
    random.Random(17).shuffle(cycle)
    results = {name: Burst(name) for name in MIX_OPERATIONS}
    indexes, deadline = count(), time.monotonic() + seconds

    async def worker() -> None:
        for index in indexes:
            if time.monotonic() > deadline:
                return
            operation = cycle[index % len(cycle)]
            if operation == "pay":
                created: list[tuple[str, int]] = []
                if await timed(results["transaction_create"], load.create_transaction(10_000 + index, created)) is None:
                    await timed(results["callback_paid"], load.pay(*created[0]))
            else:
                await timed(results[operation], getattr(load, operation)(index))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    for result in results.values():
        result.seconds = time.perf_counter() - started
    return results


# ---- the database floor: a static-QR callback's SQL effects, issued directly ------------------------------------

FLOOR_STATEMENTS = (
    "INSERT INTO acquirer_callbacks (event_id, provider_reference, status, amount, response)"
    " VALUES ($1, $2, 'paid', $3, '{}'::jsonb) ON CONFLICT DO NOTHING RETURNING event_id",
    "INSERT INTO transactions (id, merchant_id, outlet_id, terminal_id, device_id, kind, status, amount, reference,"
    " qr_payload, fee_bps, expires_at) VALUES ($1, $2, $3, $4, NULL, 'static', 'pending', $5, $6, NULL, $7, NULL)"
    " RETURNING *",
    "INSERT INTO transaction_events (id, transaction_id, event_type, from_status, to_status, source, payload)"
    " VALUES ($1, $2, $3, $4, $5, 'callback', $6::jsonb)",
    "UPDATE transactions SET status = 'paid', paid_at = $2, provider_reference = COALESCE($3, provider_reference),"
    " failure_reason = NULL, updated_at = now() WHERE id = $1 RETURNING *",
    "INSERT INTO ledger_entries (id, transaction_id, merchant_id, entry_type, amount) VALUES ($1, $2, $3, $4, $5)",
    "INSERT INTO device_outbox (id, message_id, device_id, kind, topic, payload, expires_at, transaction_id)"
    " VALUES ($1, $2, $3, 'payment', $4, $5::jsonb, $6, $7)",
    "SELECT pg_notify($1, $2)",
    "UPDATE acquirer_callbacks SET transaction_id = $2, response = $3::jsonb WHERE event_id = $1",
    "INSERT INTO audit_logs (id, actor_type, actor_id, actor_role, action, entity_type, entity_id, merchant_id,"
    " request_id, ip, payload) VALUES ($1, 'acquirer', NULL, NULL, 'qris.callback.applied', 'transaction', $2, $3,"
    " $4, $5, $6::jsonb)",
)


@contextlib.asynccontextmanager
async def database_floor(dsn: str, terminal: asyncpg.Record, device_id: str) -> AsyncIterator[Phase]:
    """The effects of one paid static-QR callback on a terminal with a bound soundbox, in one transaction per
    callback, statement by statement, from CONCURRENCY connections of their own (no pool, no reset query)."""
    claim, insert, event, settle, ledger, outbox, notify, complete, audit = FLOOR_STATEMENTS
    connections: asyncio.Queue[asyncpg.Connection] = asyncio.Queue()
    for _ in range(CONCURRENCY):
        connections.put_nowait(await asyncpg.connect(dsn))
    topic = downlink_topic(device_id, "payment")

    async def one(index: int) -> None:
        amount, paid_at, merchant_id = 1_000 + index, datetime.now(UTC), terminal["merchant_id"]
        fee = amount * terminal["fee_bps"] // 10_000
        event_id, rrn, txn, message_id = f"evt-{new_id('flr')}", f"RRN{new_id('flr')}", new_id("txn"), new_id("msg")
        body = {
            "message_id": message_id,
            "type": "payment",
            "transaction_id": txn,
            "amount": amount,
            "currency": "IDR",
            "paid_at": paid_at.isoformat(),
            "announcement": {"format": "amount_only", "language": "id", "amount": amount},
        }
        response = {"transaction_id": txn, "status": "paid", "duplicate": False}
        audited = {"event_id": event_id, "status": "paid", "amount": amount, "secret_index": 0}
        conn = await connections.get()
        try:
            async with conn.transaction():
                await conn.fetchval(claim, event_id, rrn, amount)
                where = (terminal["merchant_id"], terminal["outlet_id"], terminal["id"])
                await conn.fetchrow(insert, txn, *where, amount, new_id("ref")[-20:], terminal["fee_bps"])
                await conn.execute(event, new_id("tev"), txn, "created", None, "pending", '{"kind": "static"}')
                await conn.fetchrow(settle, txn, paid_at, rrn)
                await conn.execute(
                    event, new_id("tev"), txn, "paid", "pending", "paid", json.dumps({"event_id": event_id})
                )
                for entry_type, value in (
                    ("gross_income", amount),
                    ("platform_fee", fee),
                    ("merchant_payable", amount - fee),
                ):
                    await conn.execute(ledger, new_id("led"), txn, merchant_id, entry_type, value)
                expires = paid_at + timedelta(seconds=60)
                await conn.execute(outbox, new_id("obx"), message_id, device_id, topic, json.dumps(body), expires, txn)
                await conn.execute(notify, CHANNEL, device_id)
                await conn.execute(complete, event_id, txn, json.dumps(response))
                await conn.execute(audit, new_id("aud"), txn, merchant_id, new_id("req"), HOST, json.dumps(audited))
        finally:
            connections.put_nowait(conn)

    try:
        yield single(FLOOR, one)
    finally:
        while not connections.empty():
            await connections.get_nowait().close()


# ---- callback → announcement, and the MQTT heartbeat probes ------------------------------------------------------


async def connect_fleet(port: int, ids: list[str], secrets: list[str], received: dict[str, float], repeats: list[str]):
    semaphore = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(device_id: str, secret: str) -> object:
        async with semaphore:
            return await announcement_client(port, device_id, secret, received, repeats)

    started = time.perf_counter()
    clients = await asyncio.gather(*(one(d, s) for d, s in zip(ids, secrets, strict=True)))
    return clients, len(ids) / (time.perf_counter() - started)


async def heartbeat_probe(client: Client, device_id: str, pool: asyncpg.Pool, stop: asyncio.Event) -> dict[str, list]:
    """Heartbeats one at a time: PUBLISH (QoS 1) → PUBACK, then until PostgreSQL shows it."""
    loop = asyncio.get_running_loop()
    topic = f"devices/{device_id}/uplink/heartbeat".encode()
    puback_s: list[float] = []
    visible_s: list[float] = []
    for sequence in count(1):
        if stop.is_set():
            break
        acked: asyncio.Future[None] = loop.create_future()
        client.on_puback = lambda acked=acked: acked.done() or acked.set_result(None)
        payload = {"battery_level": 80, "network_strength": 70, "firmware_version": "bench-1", "uptime_s": sequence}
        sent = time.perf_counter()
        client.write(mqtt_publish(topic, json.dumps(payload).encode(), 1, sequence % 65535 + 1))
        await asyncio.wait_for(acked, 10)
        puback_s.append(time.perf_counter() - sent)
        while time.perf_counter() - sent < 5:
            shown = await pool.fetchval("SELECT (heartbeat->>'uptime_s')::int FROM devices WHERE id = $1", device_id)
            if shown == sequence:
                visible_s.append(time.perf_counter() - sent)
                break
            await asyncio.sleep(PROBE_POLL_S)
        await asyncio.sleep(PROBE_PAUSE_S)
    return {"puback": puback_s, "visible": visible_s}


@dataclass
class Heard:
    """What the fleet's devices heard: when each transaction's payment first arrived, and repeats after an ack."""

    received: dict[str, float]
    repeats: list[str]


async def paced_callbacks(base_url: str, terminals: list[str], heard: Heard, rate: int, seconds: float) -> dict:
    """Signed static-QR callbacks at ``rate`` for a second of warm-up (not counted) and ``seconds`` more, each
    to the next terminal; callback sent → its payment heard by the terminal's device."""
    sent: dict[str, float] = {}
    answered_ms: list[float] = []
    errors: Counter[str] = Counter()
    repeats_before = len(heard.repeats)
    total = int(rate * (seconds + 1))
    async with aiohttp.ClientSession(base_url, connector=aiohttp.TCPConnector(limit=256)) as http:

        async def callback(index: int) -> None:
            started = time.perf_counter()
            try:
                terminal = terminals[index % len(terminals)]
                error, body = await expect_status(static_callback(http, terminal, 2_000 + index), 200)
            except (aiohttp.ClientError, TimeoutError) as exc:
                error, body = f"transport {type(exc).__name__}", None
            if error:
                errors[error] += 1
            elif index >= rate:
                answered_ms.append((time.perf_counter() - started) * 1000)
                sent[body["transaction_id"]] = started

        start, pending = time.perf_counter(), []
        for index in range(total):
            await asyncio.sleep(max(0.0, start + index / rate - time.perf_counter()))
            pending.append(asyncio.create_task(callback(index)))
        offered = total / (time.perf_counter() - start)
        await asyncio.gather(*pending)
        answered = total / (time.perf_counter() - start)
    deadline = time.perf_counter() + 15
    while not set(sent) <= set(heard.received) and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    latencies = [heard.received[txn] - at for txn, at in sent.items() if txn in heard.received]
    return {
        "rate": rate,
        "seconds": seconds,
        "offered_rate": offered,
        "answered_rate": answered,
        "sent": len(sent),
        "lost": len(sent) - len(latencies),
        "repeats": len(heard.repeats) - repeats_before,
        "errors": dict(errors),
        "latency": latency_percentiles(latencies),
        "answered": latency_percentiles([ms / 1000 for ms in answered_ms]),
    }


async def announcements(
    base_url: str, port: int, fleet: tuple[list[str], list[str]], terminals: list[str], probes: tuple, pool, plan: Plan
) -> dict[str, Any]:
    """The fleet connected; callbacks at a quarter of the target rate, then at the target rate with the MQTT
    heartbeat probes running."""
    ids, secrets = fleet
    heard = Heard({}, [])
    print(f"  connecting {len(ids):,} devices ...", flush=True)
    clients, connect_rate = await connect_fleet(port, ids, secrets, heard.received, heard.repeats)
    probe_clients = [await open_client(port, device_id, secret) for device_id, secret in zip(*probes, strict=True)]
    stop = asyncio.Event()
    probing: list[asyncio.Task[dict[str, list]]] = []
    try:
        quarter = await paced_callbacks(base_url, terminals, heard, plan.rate // 4, round(plan.announce_s / 3))
        print(f"  at {plan.rate // 4}/s: {quarter}", flush=True)
        probing = [
            asyncio.create_task(heartbeat_probe(client, device_id, pool, stop))
            for client, device_id in zip(probe_clients, probes[0], strict=True)
        ]
        target = await paced_callbacks(base_url, terminals, heard, plan.rate, plan.announce_s)
        print(f"  at {plan.rate}/s: {target}", flush=True)
        stop.set()
        probed = await asyncio.gather(*probing)
    finally:
        stop.set()
        for task in probing:
            task.cancel()
        for client in [*clients, *probe_clients]:
            client.close()  # type: ignore[attr-defined]
    return {
        "devices": len(ids),
        "connect_rate": connect_rate,
        "quarter": quarter,
        "target": target,
        "mqtt_puback": latency_percentiles([s for p in probed for s in p["puback"]]),
        "mqtt_visible": latency_percentiles([s for p in probed for s in p["visible"]]),
        "probes": sum(len(p["puback"]) for p in probed),
    }


# ---- --profile: pg_stat_statements over the mix, py-spy on the server ------------------------------------------


async def statements_summary(pool: asyncpg.Pool, requests: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT query, calls, total_exec_time, mean_exec_time FROM pg_stat_statements"
        " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND query NOT ILIKE '%pg_stat_statements%' ORDER BY total_exec_time DESC"
    )
    every = {"query": "(all statements)", "calls": sum(r["calls"] for r in rows)}
    every["total_ms"] = sum(r["total_exec_time"] for r in rows)
    top = [
        {"query": " ".join(r["query"].split()), "calls": r["calls"], "total_ms": r["total_exec_time"]}
        for r in rows[:12]
    ]
    return [
        {**row, "per_request": row["calls"] / requests, "mean_ms": row["total_ms"] / row["calls"]}
        for row in [every, *top]
    ]


async def py_spy(pid: int, seconds: float, out: Path) -> dict[str, Any]:
    """``py-spy record`` of the server and its child processes; the top functions by own and inclusive samples."""
    command = [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid), "--subprocesses"]
    # Blocking (the default): each sample pauses the process for a moment, so its stacks are whole, never torn.
    command += ["--duration", str(int(seconds)), "--rate", "100", "--format", "raw", "-o", str(out)]
    process = await asyncio.create_subprocess_exec(*command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, stderr = await process.communicate()
    if process.returncode != 0 or not out.exists():
        return {"error": stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {process.returncode}"]}
    stacks: list[tuple[list[str], int]] = []
    for line in out.read_text().splitlines():
        stack, _, weight = line.rpartition(" ")
        frames = [frame_name(f) for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if frames:
            stacks.append((frames, int(weight)))
    samples = sum(n for _, n in stacks)
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, n in stacks:
        own[frames[-1]] += n
        for name in set(frames):
            inclusive[name] += n
    for name in entry_frames(stacks, samples):
        del inclusive[name]
    return {"samples": samples, "own": own.most_common(20), "inclusive": inclusive.most_common(20)}


def entry_frames(stacks: list[tuple[list[str], int]], samples: int) -> set[str]:
    """The frames every busy moment runs under (``main``, the event loop's ``run``...): the outermost frames
    shared by at least 80% of the samples, which say nothing about where the time goes."""
    entry: set[str] = set()
    for depth in count():
        here: Counter[str] = Counter()
        for frames, n in stacks:
            if len(frames) > depth:
                here[frames[depth]] += n
        if not here or here.most_common(1)[0][1] < 0.8 * samples:
            return entry
        frame = here.most_common(1)[0][0]
        entry.add(frame)
        stacks = [(frames, n) for frames, n in stacks if len(frames) > depth and frames[depth] == frame]
    return entry


def frame_name(frame: str) -> str:
    """``function (path/to/file.py:123)`` → ``function (file.py)``: a function's samples over all its lines."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    short = "/".join(parts[parts.index("site-packages") + 1 :] if "site-packages" in parts else parts[-2:])
    return f"{name} ({short})"


# ---- the run ---------------------------------------------------------------------------------------------------------


async def run(plan: Plan, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    facts: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="qris-bench-http-") as tmp:
        workdir = Path(tmp)
        print(f"provisioning {plan.devices + PROBES:,} MQTT devices ...", flush=True)
        async with provisioned_fleet(workdir, plan.devices + PROBES, facts) as (db, credentials):
            results["database"] = facts["database"]
            note = None
            if args.profile:
                note = await enable_pg_stat_statements(db, workdir, facts["database"] == "DATABASE_URL")
            results["statements_note"] = note
            async with serve_process(workdir, str(facts["dsn"]), args.serve_args) as platform:
                base_url = platform.base_url
                config = LoadConfig(base_url, ADMIN_TOKEN, WEBHOOK_SECRET, devices=HEARTBEAT_DEVICES)
                load = LoadTest(config)
                print("onboarding the load test's merchant and devices through the admin API ...", flush=True)
                await load.setup()
                terminals = await bind_fleet(db.pool, load, credentials.ids[: plan.devices])
                terminal = await db.pool.fetchrow(
                    "SELECT t.id, t.outlet_id, t.merchant_id, COALESCE(m.fee_bps, 0) AS fee_bps"
                    " FROM terminals t JOIN merchants m ON m.id = t.merchant_id WHERE t.id = $1",
                    load.terminal_id,
                )
                connector = aiohttp.TCPConnector(limit=CONCURRENCY)
                timeout = aiohttp.ClientTimeout(total=30)
                async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as http:
                    load.http = http
                    if args.profile and note is None:
                        await db.pool.execute("SELECT pg_stat_statements_reset()")
                    postmaster = psutil.Process(await db.pool.fetchval("SELECT pg_backend_pid()")).ppid()
                    meter = CpuMeter(platform.pid, postmaster)
                    print(f"GET /health and the seed mix, {plan.rounds} rounds ...", flush=True)
                    mix, results["cpu"] = await alternating(
                        plan.rounds,
                        plan.seconds,
                        ("/health", single("health", load.health)),
                        ("seed mix", lambda s: seed_mix(load, s)),
                        meter=meter,
                    )
                    results["health"] = mix.pop("health")
                    results["mix"] = mix
                    if args.profile:
                        requests = sum(len(b.latencies_ms) for b in mix.values())
                        if note is None:
                            results["statements"] = await statements_summary(db.pool, requests)
                        print("the seed mix again, with py-spy on the server ...", flush=True)
                        profiled = asyncio.create_task(seed_mix(load, plan.profile_s + 2))
                        await asyncio.sleep(1)
                        results["py_spy"] = await py_spy(platform.pid, plan.profile_s, workdir / "py-spy.txt")
                        await profiled
                    print(f"static-QR callbacks alone and the database floor, {plan.rounds} rounds ...", flush=True)
                    callbacks = single(
                        CALLBACKS, lambda i: expect_ok(static_callback(http, load.terminal_id, 1_000 + i))
                    )
                    async with database_floor(str(facts["dsn"]), terminal, load.screen.device_id) as floor:
                        figures, cpu = await alternating(
                            plan.rounds, plan.seconds, (CALLBACKS, callbacks), (FLOOR, floor), meter=meter
                        )
                    results.update(figures)
                    results["cpu"].update(cpu)
                    print(f"HTTP heartbeats alone and dynamic QRs alone, beside /health, {plan.rounds} rounds ...")
                    figures, cpu = await alternating(
                        plan.rounds,
                        plan.seconds / 2,
                        (HEALTH_BESIDE, single(HEALTH_BESIDE, load.health)),
                        (HEARTBEAT_ALONE, single(HEARTBEAT_ALONE, load.heartbeat)),
                        (DYNAMIC_QR_ALONE, single(DYNAMIC_QR_ALONE, load.dynamic_qr)),
                        meter=meter,
                    )
                    results.update(figures)
                    results["cpu"].update(cpu)
                print(
                    f"callback → announcement at {plan.rate}/s with {plan.devices:,} devices connected ...", flush=True
                )
                fleet = (credentials.ids[: plan.devices], credentials.secrets[: plan.devices])
                probes = (credentials.ids[plan.devices :], credentials.secrets[plan.devices :])
                results["announce"] = await announcements(
                    base_url, platform.mqtt_port, fleet, terminals, probes, db.pool, plan
                )
    return results


async def expect_ok(response_cm: Any) -> str | None:
    return (await expect_status(response_cm, 200))[0]


# ---- the report ------------------------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def render(
    plan: Plan, quick: bool, args: argparse.Namespace, r: dict[str, Any], load: tuple[str, str], seconds: float
) -> str:
    health = r["health"].report(None)
    mix = {name: b.report(r["health"]) for name, b in r["mix"].items()}
    mix_requests = sum(s["count"] for s in mix.values())
    mix_seconds = max(s["seconds"] for s in mix.values())
    mix_rps = mix_requests / mix_seconds
    mix_errors = sum(s["errors"] for s in mix.values())
    callbacks, floor = r[CALLBACKS].report(None), r[FLOOR].report(None)
    share = callbacks["throughput_rps"] / floor["throughput_rps"]
    a = r["announce"]
    t, q = a["target"], a["quarter"]
    sent, lost, repeats = (t[key] + q[key] for key in ("sent", "lost", "repeats"))
    h95 = health["latency"]["p95_ms"]
    flags = " ".join(
        ["--quick"] * quick + ["--profile"] * args.profile + [f'--serve-arg="{x}"' for x in args.serve_arg]
    )
    serve = " ".join(["serve", *args.serve_args]) if args.serve_args else "serve (no extra arguments)"
    lines = [
        BEGIN,
        "",
        "## HTTP and payment path",
        "",
        f"`bench/http_payments.py{' ' + flags if flags else ''}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())},"
        f" {seconds:.0f} s. The platform (`{serve}`, rate limits off) on {r['database']}, and the load generator"
        f" (this process: aiohttp, {CONCURRENCY} connections, uvloop; the MQTT devices) share the machine's"
        " cores with each other and with other developers' work (see the load).",
        "",
        *machine_rows(machine(), load),
        "",
        f"Targets of issue 17. Baseline: the earlier implementation published {PUBLISHED_BASELINE_RPS} req/s;"
        f" its mix measured ~{ISSUE_MIX_RPS:,} req/s on this machine (13% of /health, issue 17).",
        "",
        "| figure | target | measured | |",
        "|---|---|---|---|",
        f"| seed mix, {CONCURRENCY} clients | ≥ 3,250 req/s (earlier: {PUBLISHED_BASELINE_RPS} published,"
        f" ~{ISSUE_MIX_RPS} measured) | {mix_rps:,.0f} req/s ({mix_rps / health['throughput_rps']:.0%} of /health's"
        f" {health['throughput_rps']:,.0f}) | {verdict(mix_rps >= 3250)} |",
        f"| seed mix errors | 0 | {mix_errors} | {verdict(mix_errors == 0)} |",
    ]
    for name, s in mix.items():
        p95 = s["latency"]["p95_ms"]
        lines.append(f"| mix: {name} p95 | ≤ 20 ms | {p95:.1f} ms | {verdict(p95 <= 20)} |")
    lines += [
        f"| static-QR callbacks ÷ database floor | ≥ 50% | {share:.0%} ({callbacks['throughput_rps']:,.0f} ÷"
        f" {floor['throughput_rps']:,.0f} req/s) | {verdict(share >= 0.5)} |",
        f"| callback → announcement p99, {a['devices']:,} devices, {t['rate']}/s | ≤ 50 ms |"
        f" {t['latency']['p99']:,.1f} ms | {verdict(t['latency']['p99'] <= 50)} |",
        f"| announcements lost | 0 | {lost} of {sent:,} | {verdict(lost == 0)} |",
        f"| announced again after the ack | 0 | {repeats} | {verdict(repeats == 0)} |",
    ]
    beside, heartbeat_alone, dynamic_qr_alone = (r[name].report(None) for name in ALONE)
    b95 = beside["latency"]["p95_ms"]
    for label, p95, base in (
        ("HTTP heartbeat p95 (mix)", mix["heartbeat"]["latency"]["p95_ms"], h95),
        ("dynamic QR p95 (mix)", mix["dynamic_qr"]["latency"]["p95_ms"], h95),
        ("HTTP heartbeat p95 (alone)", heartbeat_alone["latency"]["p95_ms"], b95),
        ("dynamic QR p95 (alone)", dynamic_qr_alone["latency"]["p95_ms"], b95),
        ("MQTT heartbeat p95 (PUBLISH → PUBACK)", a["mqtt_puback"]["p95"], h95),
    ):
        lines.append(f"| {label} | ≤ 2 × /health p95 = {2 * base:.1f} ms | {p95:.1f} ms | {verdict(p95 <= 2 * base)} |")
    lines += [
        "",
        f"Each HTTP figure over {plan.seconds:g} s at {CONCURRENCY} concurrent requests, in {plan.rounds} round{'s' * (plan.rounds > 1)}"
        " alternating /health with the mix and the callbacks with the floor (so that a ratio's two figures saw the"
        " same neighbours on the machine); the mix cycles through the"
        " seed's proportions (per 150: 30 transaction create each followed by its paid callback, 60 heartbeats over"
        f" {HEARTBEAT_DEVICES} devices, 30 dynamic QRs from one screen device, 30 observability reads). Static-QR"
        " callbacks go to the load test's terminal, whose bound device is offline (the outbox row is written, nothing"
        " is delivered). The floor issues the same callback's SQL effects (claim, insert transaction, two events,"
        " status update, three ledger rows, outbox row + `pg_notify`, completion, audit row: 12 statements"
        f" between BEGIN and COMMIT) from this process with asyncpg on {CONCURRENCY} connections of its own, without the"
        " server's reads (terminal, soundbox, device config) and without a pool reset. The HTTP heartbeat (32 devices)"
        f" and the device dynamic QR (one screen device) also run alone, {plan.seconds / 2:g} s each in the same rounds"
        " as a /health burst of their own, whose p95 their targets use.",
        "",
        "| scenario | requests | errors | req/s | p50 ms | p95 ms | p99 ms | req/s vs /health |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def row(name: str, s: dict[str, Any]) -> str:
        lat = s["latency"]
        vs = f"{s['throughput_rps'] / health['throughput_rps']:.0%}" if name != "/health" else "baseline"
        kinds = "; ".join(f"{k} ×{v}" for k, v in s["error_kinds"].items())
        return (
            f"| {name} | {s['count']:,} | {s['errors']}{f' ({kinds})' if kinds else ''} | {s['throughput_rps']:,.0f}"
            f" | {lat['p50_ms']:.2f} | {lat['p95_ms']:.2f} | {lat['p99_ms']:.2f} | {vs} |"
        )

    lines.append(row("/health", health))
    lines.append(
        f"| **seed mix, all operations** | {mix_requests:,} | {mix_errors} | {mix_rps:,.0f} | | | |"
        f" {mix_rps / health['throughput_rps']:.0%} |"
    )
    lines += [row(f"mix: {name}", s) for name, s in mix.items()]
    lines += [row(CALLBACKS, callbacks), row(FLOOR, floor)]
    lines += [row(name, s) for name, s in zip(ALONE, (beside, heartbeat_alone, dynamic_qr_alone), strict=True)]
    lines += [
        "",
        *cpu_lines(
            r,
            {
                "/health": health["count"],
                "seed mix": mix_requests,
                CALLBACKS: callbacks["count"],
                FLOOR: floor["count"],
                HEARTBEAT_ALONE: heartbeat_alone["count"],
                DYNAMIC_QR_ALONE: dynamic_qr_alone["count"],
            },
        ),
    ]
    lines += [
        "",
        f"Callback → announcement: {a['devices']:,} devices connected with real device auth"
        f" ({a['connect_rate']:,.0f} connects/s), each bound to a terminal of its own; signed static-QR callbacks at a"
        f" quarter of the target rate ({q['seconds']:g} s), then at the target rate ({t['seconds']:g} s), each after a"
        " second of warm-up that is not counted, each callback to the next device's terminal; latency = just before"
        " the HTTP request → the device hears the payment downlink (one clock, this process); each device acks with"
        " `devices/<id>/uplink/payment/ack`. When the server answers more slowly than the callbacks come, they queue"
        " (in the server and in the client's 256 connections), and the latency is mostly that queue. MQTT heartbeat:"
        f" nothing answers it, so {PROBES} probe devices (bound to no terminal) send one heartbeat at a time while the"
        " target rate runs: PUBLISH at QoS 1 → the broker's PUBACK, and → the heartbeat visible in PostgreSQL"
        f" (`devices.heartbeat`, polled every {PROBE_POLL_S * 1000:.0f} ms; MQTT heartbeats are written in batches,"
        " at most every 100 ms).",
        "",
        "| | sent at | answered at | counted | p50 ms | p95 ms | p99 ms | max ms | lost | heard again after ack |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for phase in (q, t):
        for what, key in (("callback → announcement", "latency"), ("callback answered (HTTP)", "answered")):
            f = phase[key]
            errors = sum(phase["errors"].values())
            tail = f"{phase['lost']} | {phase['repeats']}" if key == "latency" else f"{errors} errors |"
            lines.append(
                f"| {what}, {phase['rate']}/s | {phase['offered_rate']:,.0f}/s | {phase['answered_rate']:,.0f}/s"
                f" | {phase['sent']:,} | {f['p50']:,.1f} | {f['p95']:,.1f} | {f['p99']:,.1f} | {f['max']:,.1f} | {tail} |"
            )
    for label, key in (
        ("MQTT heartbeat → PUBACK", "mqtt_puback"),
        ("MQTT heartbeat → visible in PostgreSQL", "mqtt_visible"),
    ):
        p = a[key]
        lines.append(
            f"| {label}, {t['rate']}/s | | | {a['probes']:,} | {p['p50']:,.1f} | {p['p95']:,.1f} | {p['p99']:,.1f}"
            f" | {p['max']:,.1f} | | |"
        )
    lines += ["", *profile_lines(plan, r, args), END]
    return "\n".join(lines)


def cpu_lines(r: dict[str, Any], requests: dict[str, int]) -> list[str]:
    """CPU per request by side, and the rate two cores would allow if nothing else ran on them."""
    sides = ("server", "PostgreSQL", "load generator")
    lines = [
        "CPU time per request (user + system, from `/proc` through psutil, over the same phases): the server's"
        " processes, PostgreSQL's (every backend and helper of the postmaster) and the load generator (for the floor,"
        f" the floor's own client). *Two-core ceiling* = {CORES} × 1,000 ms ÷ the total: the rate at which these"
        " processes alone would fill the machine's cores.",
        "",
        "| phase | requests | server ms | PostgreSQL ms | load generator ms | total ms | two-core ceiling req/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, count_ in requests.items():
        spent = r["cpu"].get(label, {})
        if not count_ or not spent:
            continue
        per = {side: spent.get(side, 0.0) * 1000 / count_ for side in sides}
        total = sum(per.values())
        lines.append(
            f"| {label} | {count_:,} | {per['server']:.2f} | {per['PostgreSQL']:.2f} | {per['load generator']:.2f}"
            f" | {total:.2f} | {CORES * 1000 / total:,.0f} |"
        )
    return lines


def profile_lines(plan: Plan, r: dict[str, Any], args: argparse.Namespace) -> list[str]:
    if not args.profile:
        return [
            "No profile in this run (`--profile` adds pg_stat_statements over the mix and py-spy on the server).",
            "",
        ]
    lines = ["### Profile of the seed mix", ""]
    if r.get("statements"):
        lines += [
            "`pg_stat_statements` over the measured mix (statements per mix request, server-side execution time;"
            " round trips for BEGIN/COMMIT and the pool's reset count as statements):",
            "",
            "| statement | calls per request | mean ms | total ms |",
            "|---|---|---|---|",
        ]
        for s in r["statements"]:
            text = s["query"] if len(s["query"]) <= 100 else s["query"][:97] + "..."
            lines.append(
                f"| `{text.replace('|', '/')}` | {s['per_request']:.2f} | {s['mean_ms']:.3f} | {s['total_ms']:,.0f} |"
            )
        lines.append("")
    else:
        lines += [f"No per-statement figures: {r['statements_note']}.", ""]
    spy = r["py_spy"]
    if "error" in spy:
        return [*lines, f"py-spy did not record: {' '.join(spy['error'])}.", ""]
    lines += [
        f"py-spy on the server process(es) for {plan.profile_s:g} s during a second mix of the same kind (100 Hz,"
        f" active samples only: {spy['samples']:,}); share of the samples. asyncpg's protocol is compiled (Cython):"
        " its work shows as the Python frame that called it (`Connection._do_execute`, `execute`); so does uvloop's"
        " (`Runner.run`: the loop's own I/O work, and its waiting, which py-spy cannot tell apart in compiled code).",
        "",
        "| own time | | inclusive time | |",
        "|---|---|---|---|",
    ]
    for (own, n), (inc, m) in zip(spy["own"], spy["inclusive"], strict=False):
        lines.append(f"| `{own}` | {n / spy['samples']:.1%} | `{inc}` | {m / spy['samples']:.1%} |")
    return [*lines, ""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s per figure, 300 devices: checks the bench runs")
    parser.add_argument("--profile", action="store_true", help="pg_stat_statements over the mix, py-spy on the server")
    parser.add_argument(
        "--serve-arg",
        action="append",
        default=[],
        metavar="ARGS",
        help='passed to `qris-soundbox serve` (split like a shell: --serve-arg="--workers 2"); repeatable',
    )
    parser.add_argument("--no-write", action="store_true", help="print the section, leave docs/performance.md alone")
    args = parser.parse_args()
    args.serve_args = [part for value in args.serve_arg for part in shlex.split(value)]
    plan = QUICK if args.quick else FULL

    raise_fd_limit()
    import uvloop

    before, started = uptime(), time.monotonic()
    results = uvloop.run(run(plan, args))
    text = render(plan, args.quick, args, results, (before, uptime()), time.monotonic() - started)
    print(text)
    if not args.no_write:
        write_section(text, BEGIN, END)
        print(f"written to {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
