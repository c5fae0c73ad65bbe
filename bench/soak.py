"""Soak: a fleet of soundboxes on real MQTT sessions and a steady stream of signed payment callbacks, for minutes.

Starts the platform itself (``serve`` with its own embedded PostgreSQL, free
ports, rate limits off: ``platform_process`` of bench/http_payments.py),
onboards N devices through the admin API (a merchant, outlet and terminals,
then register → credential → bind, as a field technician does: ``AdminApi``)
and connects them as ``qris-soundbox simulate`` soundboxes (tools/simulate.py
``Soundbox``: heartbeats, announcements, acks, de-duplication, reconnect with
back-off). Then, for ``--minutes``:

- signed static-QR callbacks at ``--rate`` per second, open loop, through the
  real acquirer route (aiohttp, as the load-generation note asks), each to a
  random terminal and so to its soundbox;
- devices dropping at random (``--drops-per-s`` across the fleet): the
  connection is cut without a DISCONNECT, as a lost mobile network does, and
  the soundbox reconnects by itself;
- one device in ``--slow-every`` reading slowly: it stops reading its socket
  for 15-45 s at a time, then reads again and catches up; these busier
  merchants get ``--slow-share`` of the payments.

The devices reach the broker through a loopback relay in this process (the
"network"): it cuts connections, stops reading the broker's side of a slow
reader's connection (the broker sees exactly a device that does not read:
its packets wait in the socket buffers), and sees every PUBLISH on the wire
with its DUP flag, which the MQTT client library does not expose.

Measured, sampled every ``--sample-s`` and summarised at the end: RSS of the
``serve`` process and of this load generator, PSS of PostgreSQL's processes
(psutil); the
outbox depth (``pending``/``sent`` rows) and its oldest unacknowledged age
(SQL on ``device_outbox``); announcement latency (callback sent → payment
downlink first received by the device, for callbacks answered 200); lost
announcements (answered 200, never received by the device before the end
plus ``--grace-s``, not ``skipped_late``; the skipped ones counted apart);
duplicates after ack (the device's ack of message X was PUBACKed, then X
came again as a new, non-DUP PUBLISH; DUP resends and redeliveries of
messages not yet acked counted apart).

Usage: ``.venv/bin/python bench/soak.py [--devices 5000] [--rate 50] [--minutes 30] [--no-write] [--report FILE]``.
Writes the "Soak" section of docs/performance.md; exits 1 if an announcement
was lost, duplicated after ack, announced twice or to the wrong device.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import itertools
import json
import random
import statistics
import struct
import sys
import tempfile
import termios
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import asyncpg
import psutil
from common import DOC, HOST, machine_rows, write_section
from fleet import raise_fd_limit
from mqtt_wire import Packet
from serving import ADMIN_TOKEN, WEBHOOK_SECRET, machine, platform_process, uptime

from qris_soundbox.broker.outbox_publisher import FIRST_RETRY_S
from qris_soundbox.core.embedded_pg import EmbeddedPostgres
from qris_soundbox.tools.api import AdminApi, DeviceCredential, callback_body, callback_headers, run_stamp
from qris_soundbox.tools.simulate import FleetStats, Soundbox
from qris_soundbox.tools.stats import latency_summary

BEGIN, END = "<!-- soak:begin -->", "<!-- soak:end -->"
TERMINALS_PER_MERCHANT = 50
ONBOARD_CONCURRENCY = 16
HTTP_CONNECTIONS = 64
MAX_CALLBACKS_IN_FLIGHT = 512  # beyond this the generator waits: the achieved rate says so
STALL_S = (15.0, 45.0)  # a slow reader stops reading for this long (below the 60 s keepalive) ...
READ_S = (15.0, 45.0)  # ... then reads for this long
CONNECT_TIMEOUT_S = 900
PUBLISH, CONNECT = 3, 1
MiB = 2**20


@dataclass(frozen=True)
class Plan:
    devices: int
    rate: float
    minutes: float
    drops_per_s: float
    slow_every: int
    slow_share: float
    heartbeat_s: float
    grace_s: float
    sample_s: float
    connect_concurrency: int
    seed: int


@dataclass(frozen=True)
class Target:
    terminal_id: str
    credential: DeviceCredential
    slow: bool


# ---- what the fleet and the wire saw ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Callback:
    """A callback answered 200: when it was sent, and the device bound to the terminal it named."""

    sent_at: float
    device_id: str


@dataclass
class Ledger:
    """Every payment as the acquirer, the device and the wire saw it, in this process's one clock."""

    callbacks: dict[str, Callback] = field(default_factory=dict)  # 200-answered, by transaction id
    refused: Counter[str] = field(default_factory=Counter)  # other answers, by status or error
    answer_ms: list[float] = field(default_factory=list)
    receipts: dict[str, tuple[str, str, float]] = field(default_factory=dict)  # transaction → device, message, at
    double_announced: list[dict[str, str]] = field(default_factory=list)  # one transaction, two message ids
    acked_at: dict[str, float] = field(default_factory=dict)  # message id → the device's ack was PUBACKed
    wire_first: dict[str, float] = field(default_factory=dict)  # message id → first PUBLISH seen
    wire: Counter[str] = field(default_factory=Counter)
    after_ack: list[dict[str, Any]] = field(default_factory=list)  # non-DUP copies after the ack
    wall_offset: float = field(default_factory=lambda: time.time() - time.perf_counter())  # perf_counter → epoch

    def received(self, device_id: str, body: dict[str, Any]) -> None:
        transaction_id, message_id = body.get("transaction_id"), body.get("message_id")
        if not isinstance(transaction_id, str) or not isinstance(message_id, str):
            return
        first = self.receipts.get(transaction_id)
        if first is None:
            self.receipts[transaction_id] = (device_id, message_id, time.perf_counter())
        elif first[1] != message_id:
            self.double_announced.append({"transaction_id": transaction_id, "first": first[1], "then": message_id})

    def on_wire(self, device_id: str, packet: Packet, sent_by: float) -> None:
        """A payment PUBLISH the broker sent ``device_id`` no later than ``sent_by``: first copy, DUP resend, or a
        new copy of a known message (after the device's ack: a duplicate; before it: a redelivery)."""
        try:
            message_id = json.loads(packet.payload)["message_id"]
        except (ValueError, KeyError, TypeError):
            self.wire["unreadable"] += 1
            return
        if message_id not in self.wire_first:
            self.wire_first[message_id] = sent_by
            self.wire["first copies"] += 1
            return
        acked = self.acked_at.get(message_id, sent_by)  # not acked yet: as if acked right now
        if packet.dup:
            self.wire["DUP resends"] += 1
            if acked < sent_by:
                self.wire["DUP resends after ack"] += 1
        elif acked >= sent_by:
            self.wire["new copies before ack (redelivery)"] += 1
        else:
            self.wire["new copies after ack"] += 1
            self.after_ack.append(
                {
                    "message_id": message_id,
                    "device_id": device_id,
                    "ack_wall": acked + self.wall_offset,
                    "copy_wall": sent_by + self.wall_offset,
                    "s_after_ack": round(sent_by - acked, 3),
                    "s_after_first_copy": round(sent_by - self.wire_first[message_id], 3),
                }
            )


class SoakSoundbox(Soundbox):
    """The simulator's soundbox, telling the ledger what it received and when its payment acks were PUBACKed."""

    ledger: Ledger

    async def _handle(self, client: aiomqtt.Client, topic: str, payload: Any, received: Any) -> None:
        if topic.endswith("/downlink/payment"):
            with contextlib.suppress(ValueError, TypeError):
                self.ledger.received(self.id, json.loads(payload))
        await super()._handle(client, topic, payload, received)

    async def _ack(self, client: aiomqtt.Client, suffix: str, body: dict[str, Any]) -> None:
        await super()._ack(client, suffix, body)
        if suffix == "payment/ack":
            self.ledger.acked_at.setdefault(body["message_id"], time.perf_counter())


# ---- the network between the fleet and the broker ---------------------------------------------------------------


def packets(buffer: bytearray) -> Iterator[tuple[Packet, int]]:
    """Complete MQTT packets at the head of ``buffer`` and their sizes on the wire, taken off it as yielded."""
    while len(buffer) >= 2:
        length, shift, index = 0, 0, 1
        while True:
            if index >= len(buffer):
                return
            byte = buffer[index]
            length |= (byte & 0x7F) << shift
            shift += 7
            index += 1
            if byte < 0x80:
                break
        end = index + length
        if len(buffer) < end:
            return
        packet = Packet(buffer[0], bytes(buffer[index:end]))
        del buffer[:end]
        yield packet, end


def client_id_of(connect: Packet) -> str:
    """The client id of a CONNECT (MQTT 3.1.1 and 5 share the layout up to it, MQTT 5 adds properties)."""
    body = connect.body
    offset = 2 + struct.unpack_from(">H", body)[0] + 4  # protocol name, level, flags, keep alive
    if body[offset - 4] == 5:
        raise ValueError("MQTT 5 CONNECT: the simulator speaks 3.1.1")
    size = struct.unpack_from(">H", body, offset)[0]
    return body[offset + 2 : offset + 2 + size].decode()


class Link:
    """One device connection through the relay: the device's end and the broker's end."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self.device: asyncio.Transport | None = None
        self.broker: asyncio.Transport | None = None
        self.device_id: str | None = None
        self.pending = bytearray()  # device bytes before the broker end is connected
        self.head = bytearray()  # device bytes until its CONNECT is read
        self.downstream = bytearray()  # broker bytes not yet parsed
        self.stalled = False
        # Bytes the broker had sent when a stall ended: the packets in them were sent by ``resumed_at``.
        self.backlog = 0
        self.resumed_at = 0.0

    def close(self) -> None:
        for transport in (self.device, self.broker):
            if transport is not None:
                transport.abort()
        if self.device_id is not None and self.network.links.get(self.device_id) is self:
            del self.network.links[self.device_id]


class DeviceEnd(asyncio.Protocol):
    def __init__(self, network: Network) -> None:
        self.link = Link(network)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.link.device = transport  # type: ignore[assignment]
        task = asyncio.get_running_loop().create_task(self.link.network.open_broker_end(self.link))
        self.link.network.tasks.add(task)
        task.add_done_callback(self.link.network.tasks.discard)

    def data_received(self, data: bytes) -> None:
        link = self.link
        if link.device_id is None:
            link.head += data
            for packet, _ in packets(link.head):
                if packet.kind == CONNECT:
                    link.device_id = client_id_of(packet)
                    link.network.links[link.device_id] = link  # a reconnect replaces the device's old link
                break
        if link.broker is None:
            link.pending += data
        else:
            link.broker.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.close()


class BrokerEnd(asyncio.Protocol):
    def __init__(self, link: Link) -> None:
        self.link = link

    def data_received(self, data: bytes) -> None:
        link = self.link
        if link.device is not None:
            link.device.write(data)
        link.downstream += data
        now = time.perf_counter()
        for packet, size in packets(link.downstream):
            sent_by = link.resumed_at if link.backlog > 0 else now
            link.backlog -= size
            if packet.kind == PUBLISH and packet.topic.endswith("/downlink/payment") and link.device_id:
                link.network.ledger.on_wire(link.device_id, packet, sent_by)

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.close()


class Network:
    """A loopback relay in front of the broker: cut a device's connection, stall its reading, watch the wire."""

    def __init__(self, broker_host: str, broker_port: int, ledger: Ledger) -> None:
        self.broker_host, self.broker_port = broker_host, broker_port
        self.ledger = ledger
        self.links: dict[str, Link] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.get_running_loop().create_server(lambda: DeviceEnd(self), HOST, 0, backlog=1024)
        return self.server.sockets[0].getsockname()[1]

    async def open_broker_end(self, link: Link) -> None:
        try:
            transport, _ = await asyncio.get_running_loop().create_connection(
                lambda: BrokerEnd(link), self.broker_host, self.broker_port
            )
        except OSError:
            link.close()
            return
        if link.device is None or link.device.is_closing():
            transport.abort()
            return
        link.broker = transport  # type: ignore[assignment]
        if link.pending:
            transport.write(bytes(link.pending))
            link.pending.clear()

    def cut(self, device_id: str) -> bool:
        """Drop the device's connection without a DISCONNECT (both ends reset), as a lost network does."""
        link = self.links.get(device_id)
        if link is None:
            return False
        link.close()
        return True

    def stall(self, device_id: str) -> Link | None:
        """Stop reading what the broker sends the device; its packets wait in the socket buffers."""
        link = self.links.get(device_id)
        if link is None or link.broker is None or link.stalled:
            return None
        link.stalled = True
        link.broker.pause_reading()
        return link

    @staticmethod
    def resume(link: Link) -> None:
        if link.stalled:
            link.stalled = False
            if link.broker is not None and not link.broker.is_closing():
                waiting = bytearray(4)  # what the broker sent during the stall, still in the socket
                with contextlib.suppress(OSError):
                    fcntl.ioctl(link.broker.get_extra_info("socket").fileno(), termios.FIONREAD, waiting)
                link.backlog = int.from_bytes(waiting, sys.byteorder) + len(link.downstream)
                link.resumed_at = time.perf_counter()
                link.broker.resume_reading()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for link in list(self.links.values()):
            link.close()
        for task in self.tasks:
            task.cancel()


# ---- setting up: devices through the admin API ------------------------------------------------------------------


async def onboard(base_url: str, plan: Plan) -> list[Target]:
    """Merchants of ``TERMINALS_PER_MERCHANT`` terminals each, and one bound soundbox per terminal."""
    stamp = run_stamp()
    groups = (plan.devices + TERMINALS_PER_MERCHANT - 1) // TERMINALS_PER_MERCHANT
    targets: list[Target | None] = [None] * plan.devices
    jobs: asyncio.Queue[int] = asyncio.Queue()
    for group in range(groups):
        jobs.put_nowait(group)
    async with AdminApi(base_url, ADMIN_TOKEN, timeout=60) as api:

        async def worker() -> None:
            while not jobs.empty():
                group = jobs.get_nowait()
                first = group * TERMINALS_PER_MERCHANT
                onboarded = await api.onboard_terminal(f"Soak {stamp} {group + 1}")
                outlet_id = onboarded["outlet"]["id"]
                for index in range(first, min(first + TERMINALS_PER_MERCHANT, plan.devices)):
                    terminal_id = (
                        onboarded["terminal"]["id"]
                        if index == first
                        else (
                            await api.call(
                                "POST",
                                f"/admin/outlets/{outlet_id}/terminals",
                                json={"name": f"Kasir {index - first + 1}"},
                            )
                        )["id"]
                    )
                    credential = await api.provision_device(
                        f"SOAK-{stamp}-{index + 1:05d}", "generic-audio", terminal_id
                    )
                    slow = plan.slow_every > 0 and index % plan.slow_every == 0
                    targets[index] = Target(terminal_id, credential, slow)

        await asyncio.gather(*(worker() for _ in range(ONBOARD_CONCURRENCY)))
    return [t for t in targets if t is not None]


# ---- the load -----------------------------------------------------------------------------------------------------


async def payments(
    base_url: str,
    plan: Plan,
    targets: list[Target],
    ledger: Ledger,
    stop: asyncio.Event,
    rng: random.Random,
    progress: dict[str, float],
) -> None:
    """Signed static-QR callbacks at ``plan.rate`` per second until ``stop``; open loop, capped in flight."""
    slow = [t for t in targets if t.slow]
    normal = [t for t in targets if not t.slow] or slow
    in_flight: set[asyncio.Task[None]] = set()
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        base_url, connector=aiohttp.TCPConnector(limit=HTTP_CONNECTIONS), timeout=timeout
    ) as http:

        async def pay(target: Target, amount: int) -> None:
            raw = json.dumps(callback_body(amount, terminal_id=target.terminal_id)).encode()
            started = time.perf_counter()
            try:
                async with http.post(
                    "/integrations/qris/callback", data=raw, headers=callback_headers(WEBHOOK_SECRET, raw)
                ) as response:
                    body = await response.json(content_type=None)
                    status = response.status
            except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
                ledger.refused[type(exc).__name__] += 1
                return
            answered = time.perf_counter()
            if status == 200 and isinstance(body, dict) and isinstance(body.get("transaction_id"), str):
                ledger.callbacks[body["transaction_id"]] = Callback(started, target.credential.device_id)
                ledger.answer_ms.append((answered - started) * 1000)
            else:
                ledger.refused[str(status)] += 1

        started, sent = time.perf_counter(), 0
        while not stop.is_set():
            due = int((time.perf_counter() - started) * plan.rate)
            while sent < due and len(in_flight) < MAX_CALLBACKS_IN_FLIGHT:
                target = rng.choice(slow if slow and rng.random() < plan.slow_share else normal)
                task = asyncio.create_task(pay(target, 1_000 + sent))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                sent += 1
            progress.update(
                sent=sent,
                in_flight=len(in_flight),
                max_in_flight=max(progress.get("max_in_flight", 0), len(in_flight)),
                seconds=time.perf_counter() - started,
            )
            await asyncio.sleep(0.01)
        progress["seconds"] = time.perf_counter() - started
        await asyncio.gather(*in_flight, return_exceptions=True)


async def drops(network: Network, rate: float, rng: random.Random, counts: Counter[str]) -> None:
    """Cut a random connected device's connection, ``rate`` times a second on average (Poisson)."""
    if rate <= 0:
        return
    while True:
        await asyncio.sleep(rng.expovariate(rate))
        if network.links and network.cut(rng.choice(list(network.links))):
            counts["drops"] += 1


async def slow_reader(network: Network, device_id: str, rng: random.Random, counts: Counter[str]) -> None:
    """Reads for a while, stops reading for tens of seconds, reads again and catches up; over and over."""
    link: Link | None = None
    since = 0.0

    def resume() -> None:
        network.resume(link)  # type: ignore[arg-type]
        counts["stalled seconds"] += round(time.perf_counter() - since)

    try:
        await asyncio.sleep(rng.uniform(0, READ_S[0]))
        while True:
            link, since = network.stall(device_id), time.perf_counter()  # None while the device is offline
            if link is not None:
                counts["stalls"] += 1
            await asyncio.sleep(rng.uniform(*STALL_S))
            if link is not None:
                resume()
                link = None
            await asyncio.sleep(rng.uniform(*READ_S))
    finally:
        if link is not None:
            resume()


# ---- sampling ---------------------------------------------------------------------------------------------------


async def loop_lag(lags_ms: list[float], every: float = 0.1) -> None:
    """How late this process's event loop wakes a sleeper: the share of a measured latency that is the generator's."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(every)
        lags_ms.append((time.perf_counter() - started - every) * 1000)


class Processes:
    """The processes whose memory is watched: ``serve``, PostgreSQL (all its processes) and this load generator."""

    def __init__(self, postgres_dir: Path) -> None:
        me = psutil.Process()
        serve = [p for p in me.children() if "serve" in p.cmdline()]
        if len(serve) != 1:
            raise RuntimeError(f"expected one serve child process, found {len(serve)}")
        self.serve, self.me = serve[0], me
        self.postmaster = psutil.Process(int((postgres_dir / "postmaster.pid").read_text().split()[0]))
        # CPU seconds last seen per process: a PostgreSQL backend that exits keeps what it used.
        self.cpu_seen: dict[str, dict[int, float]] = {name: {} for name in ("serve", "postgres", "loadgen")}
        self.cpu_start = {name: self.cpu_seconds(name, procs) for name, procs in self.groups().items()}

    def groups(self) -> dict[str, list[psutil.Process]]:
        return {
            "serve": [self.serve],
            "postgres": [self.postmaster, *self.postmaster.children(recursive=True)],
            "loadgen": [self.me],
        }

    def cpu_seconds(self, name: str, procs: list[psutil.Process]) -> float:
        seen = self.cpu_seen[name]
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                seen[proc.pid] = times.user + times.system
        return sum(seen.values())

    def sample(self) -> dict[str, float]:
        """RSS of serve and of this process; for PostgreSQL the sum of PSS (shared memory divided among the
        processes mapping it: a sum of RSS would count the shared buffers once per backend that touched them)."""
        out: dict[str, float] = {}
        for name, procs in self.groups().items():
            size = 0
            for proc in procs:
                with contextlib.suppress(psutil.NoSuchProcess):
                    size += proc.memory_full_info().pss if name == "postgres" else proc.memory_info().rss
            out[f"rss_{name}_mib"] = size / MiB
            out[f"cpu_{name}_s"] = self.cpu_seconds(name, procs) - self.cpu_start[name]
        out["postgres_processes"] = len(self.groups()["postgres"])
        return out


OUTBOX_DEPTH = """
SELECT count(*) FILTER (WHERE status = 'pending') AS pending, count(*) FILTER (WHERE status = 'sent') AS sent,
       coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_s
FROM device_outbox WHERE status IN ('pending', 'sent')
"""
# What the platform's connections are doing: running, waiting (and on what), or idle inside a transaction.
BACKENDS = """
SELECT CASE WHEN state = 'active' THEN coalesce(wait_event_type || ':' || wait_event, 'running') ELSE state END AS what,
       count(*) AS n
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND datname = current_database() AND state <> 'idle'
GROUP BY 1
"""


async def sampler(
    plan: Plan,
    db: asyncpg.Connection,
    procs: Processes,
    network: Network,
    ledger: Ledger,
    stats: FleetStats,
    counts: Counter[str],
    progress: dict[str, float],
    samples: list[dict[str, Any]],
    origin: float,
    backends: Counter[str],
) -> None:
    while True:
        row = await db.fetchrow(OUTBOX_DEPTH)
        busy = {r["what"]: r["n"] for r in await db.fetch(BACKENDS)}
        backends.update(busy)
        backends["(samples)"] += 1
        sample = {
            "t": round(time.perf_counter() - origin, 1),
            **procs.sample(),
            "outbox_pending": row["pending"],
            "outbox_sent": row["sent"],
            "outbox_oldest_s": row["oldest_s"],
            "connected": len(network.links),
            "callbacks_sent": int(progress.get("sent", 0)),
            "answered_200": len(ledger.callbacks),
            "refused": sum(ledger.refused.values()),
            "announced": len(ledger.receipts),
            "reconnects": stats.reconnects,
            "drops": counts["drops"],
            "stalls": counts["stalls"],
            "heartbeats": stats.heartbeats,
            "acks": stats.acks,
            "busy_connections": sum(busy.values()),
        }
        samples.append(sample)
        print(
            f"t={sample['t']:7.1f}s  RSS serve {sample['rss_serve_mib']:6.1f}  pg {sample['rss_postgres_mib']:6.1f}"
            f"  gen {sample['rss_loadgen_mib']:6.1f} MiB | outbox {row['pending']} pending {row['sent']} sent,"
            f" oldest {row['oldest_s']:5.1f}s | {sample['connected']} connected | callbacks"
            f" {sample['callbacks_sent']} sent {sample['answered_200']} ok {sample['refused']} not |"
            f" {sample['announced']} announced | {sample['heartbeats']} heartbeats | drops {sample['drops']}"
            f" stalls {sample['stalls']} | {sample['busy_connections']} busy db connections",
            flush=True,
        )
        await asyncio.sleep(plan.sample_s)


# ---- the run ----------------------------------------------------------------------------------------------------


def log_problems(path: Path) -> dict[str, Any]:
    """Warning and error lines ``serve`` logged (JSON lines), and tracebacks printed outside the logger."""
    levels: Counter[str] = Counter()
    messages: Counter[str] = Counter()
    with contextlib.suppress(OSError), path.open(errors="replace") as log:
        for line in log:
            try:
                entry = json.loads(line)
                level, message = str(entry.get("level")), str(entry.get("msg"))[:160]
            except ValueError:  # the start-up banner; a traceback printed past the logger is an error
                level, message = ("error", line.strip()[:160]) if line.startswith("Traceback") else ("banner", "")
            if level in ("warning", "error", "critical"):
                levels[level] += 1
                messages[f"{level}: {message}"] += 1
    return {"levels": dict(levels), "top": messages.most_common(8)}


def trend(samples: list[dict[str, Any]], key: str, start: float, end: float) -> dict[str, float]:
    """First, last, peak and least-squares slope (per minute) of ``key`` over samples in [start, end]."""
    window = [(s["t"], s[key]) for s in samples if start <= s["t"] <= end] or [(s["t"], s[key]) for s in samples]
    ts, values = [t for t, _ in window], [v for _, v in window]
    slope = statistics.linear_regression(ts, values).slope * 60 if len(window) > 2 else 0.0
    return {"first": values[0], "last": values[-1], "peak": max(values), "slope_per_min": slope}


async def outcome(db: asyncpg.Connection, ledger: Ledger) -> dict[str, Any]:
    """Lost = answered 200 and never received by its device, unless the outbox skipped it as too late."""
    missing = [t for t in ledger.callbacks if t not in ledger.receipts]
    rows = await db.fetch(
        "SELECT transaction_id, status, attempts FROM device_outbox"
        " WHERE transaction_id = ANY ($1::text[]) AND kind = 'payment'",
        missing,
    )
    status_of = {row["transaction_id"]: row["status"] for row in rows}
    missing_by_status = Counter(status_of.get(t, "no outbox row") for t in missing)
    skipped = missing_by_status.pop("skipped_late", 0)
    misrouted = [
        {"transaction_id": t, "to": device, "expected": ledger.callbacks[t].device_id}
        for t, (device, _, _) in ledger.receipts.items()
        if t in ledger.callbacks and device != ledger.callbacks[t].device_id
    ]
    unsolicited = sum(1 for t in ledger.receipts if t not in ledger.callbacks)
    statuses = {
        row["status"]: row["n"]
        for row in await db.fetch(
            "SELECT status, count(*) AS n FROM device_outbox WHERE kind = 'payment' GROUP BY status ORDER BY status"
        )
    }
    return {
        "lost": sum(missing_by_status.values()),
        "lost_by_outbox_status": dict(missing_by_status),
        "lost_transactions": [t for t in missing if status_of.get(t) != "skipped_late"][:20],
        "skipped_late": skipped,
        "misrouted": misrouted[:20],
        "misrouted_count": len(misrouted),
        "announced_without_200": unsolicited,
        "outbox_payment_statuses": statuses,
    }


async def ack_story(db: asyncpg.Connection, ledger: Ledger, slow_ids: set[str]) -> dict[str, Any]:
    """How long the platform took to record the acks the devices had sent (and the broker PUBACKed), and, for each
    duplicate after ack, the platform's own account: when it recorded the ack, and when it handed the message over."""
    rows = await db.fetch(
        "SELECT message_id, extract(epoch FROM acked_at)::float8 AS acked FROM device_outbox"
        " WHERE kind = 'payment' AND acked_at IS NOT NULL"
    )
    lags = [
        (row["acked"] - ledger.acked_at[row["message_id"]] - ledger.wall_offset) * 1000
        for row in rows
        if row["message_id"] in ledger.acked_at
    ]
    examples = [dict(a) for a in ledger.after_ack[:20]]
    ids = [a["message_id"] for a in examples]
    acked = {
        row["message_id"]: (row["acked"], row["attempts"])
        for row in await db.fetch(
            "SELECT message_id, extract(epoch FROM acked_at)::float8 AS acked, attempts FROM device_outbox"
            " WHERE message_id = ANY ($1::text[])",
            ids,
        )
    }
    traced: dict[str, dict[str, list[float]]] = {}
    for row in await db.fetch(
        "SELECT message_id, direction, extract(epoch FROM created_at)::float8 AS at FROM device_mqtt_messages"
        " WHERE message_id = ANY ($1::text[]) AND (direction = 'downlink' OR topic LIKE '%/uplink/payment/ack')"
        " ORDER BY created_at",
        ids,
    ):
        traced.setdefault(row["message_id"], {}).setdefault(row["direction"], []).append(row["at"])
    for example in examples:
        base = example.pop("ack_wall")
        copy = example.pop("copy_wall")
        committed, attempts = acked.get(example["message_id"], (None, None))
        story = traced.get(example["message_id"], {})
        example.update(
            slow_reader=example["device_id"] in slow_ids,
            outbox_attempts=attempts,
            ack_recorded_s=None if committed is None else round(committed - base, 3),
            handed_to_broker_s=[round(t - base, 3) for t in story.get("downlink", [])],
            ack_uplinks_traced_s=[round(t - base, 3) for t in story.get("uplink", [])],
            copy_s=round(copy - base, 3),
        )
    return {
        "ack_recorded": latency_summary(lags),
        "acks_recorded_after_first_retry": sum(lag > FIRST_RETRY_S * 1000 for lag in lags),
        "after_ack_examples": examples,
    }


async def run(plan: Plan, workdir: Path) -> dict[str, Any]:
    rng = random.Random(plan.seed)
    ledger, stats, counts = Ledger(), FleetStats(sessions=plan.devices), Counter[str]()
    loop_errors: Counter[str] = Counter()
    loop = asyncio.get_running_loop()
    # E.g. a heartbeat whose PUBACK a stall holds past the client's timeout ends its task: counted and reported.
    loop.set_exception_handler(
        lambda _loop, context: loop_errors.update([repr(context.get("exception") or context.get("message"))[:120]])
    )
    report: dict[str, Any] = {"plan": asdict(plan)}
    async with platform_process(workdir) as base_url:
        pg = EmbeddedPostgres(workdir / "var")  # joins the server serve started; stopping our handle leaves it up
        db = await asyncpg.connect(await pg.start())
        try:
            procs = Processes(pg.pgdata)
            origin = time.perf_counter()
            print(f"onboarding {plan.devices:,} devices through the admin API ...", flush=True)
            targets = await onboard(base_url, plan)
            report["onboard_s"] = time.perf_counter() - origin
            network = Network(targets[0].credential.broker_host, targets[0].credential.broker_port, ledger)
            relay_port = await network.start()
            slots = asyncio.Semaphore(plan.connect_concurrency)
            boxes = []
            for target in targets:
                box = SoakSoundbox(
                    target.credential,
                    HOST,
                    relay_port,
                    stats,
                    None,
                    heartbeat_s=plan.heartbeat_s,
                    dynamic_qr=None,
                    connect_slots=slots,
                )
                box.ledger = ledger
                boxes.append(box)
            print(f"onboarded in {report['onboard_s']:.0f} s; connecting ...", flush=True)
            connect_started = time.perf_counter()
            fleet = [asyncio.create_task(box.run()) for box in boxes]
            deadline = connect_started + CONNECT_TIMEOUT_S
            while stats.connected + stats.refused < plan.devices and time.perf_counter() < deadline:
                await asyncio.sleep(0.2)
            report["connect_s"] = time.perf_counter() - connect_started
            report["connected"], report["refused_connects"] = stats.connected, stats.refused
            print(f"{stats.connected:,} connected ({stats.refused} refused) in {report['connect_s']:.0f} s", flush=True)

            samples: list[dict[str, Any]] = []
            progress: dict[str, float] = {}
            stop = asyncio.Event()
            chaos = [
                asyncio.create_task(drops(network, plan.drops_per_s, random.Random(rng.random()), counts)),
                *(
                    asyncio.create_task(
                        slow_reader(network, t.credential.device_id, random.Random(rng.random()), counts)
                    )
                    for t in targets
                    if t.slow
                ),
            ]
            steady_from = time.perf_counter() - origin
            backends: Counter[str] = Counter()
            watcher = asyncio.create_task(
                sampler(plan, db, procs, network, ledger, stats, counts, progress, samples, origin, backends)
            )
            paying = asyncio.create_task(payments(base_url, plan, targets, ledger, stop, rng, progress))
            lags_ms: list[float] = []
            lagging = asyncio.create_task(loop_lag(lags_ms))
            await asyncio.sleep(plan.minutes * 60)
            stop.set()
            await paying
            lagging.cancel()
            steady_to = time.perf_counter() - origin
            for task in chaos:
                task.cancel()
            await asyncio.gather(*chaos, return_exceptions=True)
            print(f"payments stopped; grace of up to {plan.grace_s:.0f} s for the last announcements ...", flush=True)
            grace_end = time.perf_counter() + plan.grace_s
            while time.perf_counter() < grace_end and any(t not in ledger.receipts for t in ledger.callbacks):
                await asyncio.sleep(0.5)
            # The last acks land, then the outbox should be empty.
            settle_end = time.perf_counter() + 15
            while time.perf_counter() < settle_end:
                depth = await db.fetchrow(OUTBOX_DEPTH)
                if not depth["pending"] + depth["sent"]:
                    break
                await asyncio.sleep(0.5)
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            final = await db.fetchrow(OUTBOX_DEPTH)
            samples.append(
                {
                    **samples[-1],
                    "t": round(time.perf_counter() - origin, 1),
                    **procs.sample(),
                    "outbox_pending": final["pending"],
                    "outbox_sent": final["sent"],
                    "outbox_oldest_s": final["oldest_s"],
                    "connected": len(network.links),
                    "announced": len(ledger.receipts),
                    "after_grace": True,
                }
            )
            report.update(await outcome(db, ledger), shared_buffers=await db.fetchval("SHOW shared_buffers"))
            slow_ids = {t.credential.device_id for t in targets if t.slow}
            report.update(await ack_story(db, ledger, slow_ids))
            for task in fleet:
                task.cancel()
            await asyncio.gather(*fleet, return_exceptions=True)
            network.close()
        finally:
            await db.close()
            await pg.stop()
        report["serve_log"] = log_problems(workdir / "serve.log")
    latencies: dict[bool, list[float]] = {False: [], True: []}
    for transaction_id, callback in ledger.callbacks.items():
        if transaction_id in ledger.receipts:
            latencies[callback.device_id in slow_ids].append(
                (ledger.receipts[transaction_id][2] - callback.sent_at) * 1000
            )
    report.update(
        steady_window_s=[steady_from, steady_to],
        samples=samples,
        wire=dict(ledger.wire),
        duplicated_after_ack=ledger.wire["new copies after ack"],
        after_ack_devices=len({a["device_id"] for a in ledger.after_ack}),
        after_ack_slow=sum(a["device_id"] in slow_ids for a in ledger.after_ack),
        double_announced=len(ledger.double_announced),
        double_announced_examples=ledger.double_announced[:20],
        callbacks={
            "sent": int(progress.get("sent", 0)),
            "answered_200": len(ledger.callbacks),
            "not_200": dict(ledger.refused),
            "seconds": progress.get("seconds", 0.0),
            "max_in_flight": int(progress.get("max_in_flight", 0)),
            "answer": latency_summary(ledger.answer_ms),
        },
        announcement=latency_summary(latencies[False] + latencies[True]),
        announcement_normal=latency_summary(latencies[False]),
        announcement_slow=latency_summary(latencies[True]),
        announcement_by_minute=by_minute(ledger, slow_ids),
        fleet={
            "reconnects": stats.reconnects,
            "duplicates_heard": stats.duplicates,
            "acks": stats.acks,
            "heartbeats": stats.heartbeats,
            "drops": counts["drops"],
            "stalls": counts["stalls"],
            "stalled_seconds": counts["stalled seconds"],
            "slow_readers": sum(t.slow for t in targets),
        },
        loadgen_task_errors=dict(loop_errors.most_common(8)),
        loadgen_loop_lag=latency_summary(lags_ms),
        heartbeat_rate=rates(samples, "heartbeats", steady_from, steady_to),
        db_backends={
            what: n / max(backends["(samples)"], 1) for what, n in backends.most_common() if what != "(samples)"
        },
        memory={
            key: trend(samples, f"rss_{key}_mib", steady_from + warmup(plan), steady_to)
            for key in ("serve", "postgres", "loadgen")
        },
        outbox={
            "max_depth": max(s["outbox_pending"] + s["outbox_sent"] for s in samples),
            "max_oldest_s": max(s["outbox_oldest_s"] for s in samples),
            "final_depth": final["pending"] + final["sent"],
        },
    )
    return report


def rates(samples: list[dict[str, Any]], key: str, start: float, end: float) -> dict[str, float]:
    """Mean and peak per-second rate of the counter ``key`` between consecutive samples in [start, end]."""
    window = [s for s in samples if start <= s["t"] <= end]
    steps = [(b[key] - a[key]) / (b["t"] - a["t"]) for a, b in itertools.pairwise(window) if b["t"] > a["t"]]
    return {"mean": statistics.fmean(steps) if steps else 0.0, "peak": max(steps, default=0.0)}


def warmup(plan: Plan) -> float:
    """Seconds of payments before memory is expected flat: caches, pools and buffers fill first."""
    return min(60.0, plan.minutes * 60 * 0.2)


def by_minute(ledger: Ledger, slow_ids: set[str]) -> list[dict[str, Any]]:
    """Announcement latency to the devices that read normally, per minute of callbacks (by when each was sent)."""
    if not ledger.callbacks:
        return []
    start = min(c.sent_at for c in ledger.callbacks.values())
    buckets: dict[int, list[float]] = {}
    for transaction_id, callback in ledger.callbacks.items():
        if transaction_id in ledger.receipts and callback.device_id not in slow_ids:
            minute = int((callback.sent_at - start) // 60)
            buckets.setdefault(minute, []).append((ledger.receipts[transaction_id][2] - callback.sent_at) * 1000)
    return [{"minute": m + 1, **latency_summary(v)} for m, v in sorted(buckets.items())]


# ---- the report ---------------------------------------------------------------------------------------------------


def verdict(report: dict[str, Any]) -> list[str]:
    """What makes the run fail: any of these is a defect the soak exists to find."""
    problems = []
    if not report["callbacks"]["answered_200"]:
        problems.append("no callback was answered 200")
    for key, what in (
        ("lost", "lost announcements"),
        ("duplicated_after_ack", "duplicated after ack"),
        ("double_announced", "transactions announced under two message ids"),
        ("misrouted_count", "announcements to the wrong device"),
    ):
        if report[key]:
            problems.append(f"{report[key]} {what}")
    return problems


def render(report: dict[str, Any], info: dict[str, str], load: tuple[str, str], seconds: float, command: str) -> str:
    plan, cb, fleet, wire = report["plan"], report["callbacks"], report["fleet"], report["wire"]
    ack, lag = report["ack_recorded"], report["loadgen_loop_lag"]
    problems = verdict(report)
    lines = [
        BEGIN,
        "",
        "## Soak",
        "",
        f"`{command}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {seconds / 60:.1f} min in all."
        " The platform (`serve`: API, broker, outbox and jobs in one process; embedded PostgreSQL; rate limits"
        " off) and the load generator (this script: the soundboxes, the relay and the callbacks, one uvloop"
        " process) share the machine.",
        "",
        *machine_rows(info, load),
        "",
        f"**Verdict: {'; '.join(problems) if problems else 'nothing lost, nothing duplicated after ack'}.**",
        "",
        "| setting | |",
        "|---|---|",
        f"| devices (soundboxes on real MQTT sessions) | {plan['devices']:,}, onboarded through the admin API in"
        f" {report['onboard_s']:.0f} s, connected in {report['connect_s']:.0f} s ({report['refused_connects']}"
        " refused) |",
        f"| payments | {plan['rate']:g}/s for {plan['minutes']:g} min, signed static-QR callbacks, random"
        f" terminal; slow readers get {plan['slow_share']:.0%} of them |",
        f"| drops | {plan['drops_per_s']:g}/s across the fleet (connection reset, no DISCONNECT):"
        f" {fleet['drops']:,} drops, {fleet['reconnects']:,} reconnects |",
        f"| slow readers | 1 in {plan['slow_every']}: {fleet['slow_readers']} devices, {fleet['stalls']:,}"
        f" stalls of {STALL_S[0]:.0f}-{STALL_S[1]:.0f} s ({fleet['stalled_seconds']:,} s in all) |",
        f"| heartbeats | every {plan['heartbeat_s']:g} s per device and on every (re)connect:"
        f" {fleet['heartbeats']:,} sent, {report['heartbeat_rate']['mean']:.0f}/s on average, peak"
        f" {report['heartbeat_rate']['peak']:.0f}/s over one {plan['sample_s']:g} s sample |",
        f"| grace after the last callback | up to {plan['grace_s']:.0f} s |",
        "",
        "| result | |",
        "|---|---|",
        f"| callbacks sent / answered 200 / other | {cb['sent']:,} / {cb['answered_200']:,} /"
        f" {sum(cb['not_200'].values()):,} {json.dumps(cb['not_200']) if cb['not_200'] else ''} |",
        f"| achieved callback rate | {cb['answered_200'] / max(cb['seconds'], 1e-9):.1f}/s (most in flight:"
        f" {cb['max_in_flight']}) |",
        f"| callback answered p50 / p99 | {cb['answer']['p50_ms']:.1f} / {cb['answer']['p99_ms']:.1f} ms |",
        *(
            f"| announcement (callback sent → device), {who}, p50 / p95 / p99 / max | {a['p50_ms']:.1f} /"
            f" {a['p95_ms']:.1f} / {a['p99_ms']:.1f} / {a['max_ms']:.1f} ms over {a['count']:,} |"
            for who, a in (
                ("devices reading normally (drops included)", report["announcement_normal"]),
                ("slow readers (held while they do not read)", report["announcement_slow"]),
            )
        ),
        f"| **lost** (answered 200, never reached the device, not skipped_late) | **{report['lost']}**"
        f" {json.dumps(report['lost_by_outbox_status']) if report['lost'] else ''} |",
        f"| skipped_late (too old to play, by design) | {report['skipped_late']} |",
        f"| **duplicated after ack** (the device's ack was PUBACKed, then the message came again as a new,"
        f" non-DUP PUBLISH) | **{report['duplicated_after_ack']}** on {report['after_ack_devices']} devices"
        f" ({report['after_ack_slow']} to slow readers) |",
        f"| device's ack PUBACKed → platform recorded it (outbox `acked_at`) p50 / p99 / max |"
        f" {ack['p50_ms']:.0f} / {ack['p99_ms']:.0f} / {ack['max_ms']:.0f} ms over {ack['count']:,};"
        f" {report['acks_recorded_after_first_retry']:,} took longer than the outbox's first retry"
        f" ({FIRST_RETRY_S:g} s) |",
        f"| announced twice under two message ids / to the wrong device | {report['double_announced']} /"
        f" {report['misrouted_count']} |",
        f"| DUP resends (broker, same packet id) / of which after the ack | {wire.get('DUP resends', 0):,} /"
        f" {wire.get('DUP resends after ack', 0):,} |",
        f"| new copies before the ack (redelivery after a drop or an unacked retry) |"
        f" {wire.get('new copies before ack (redelivery)', 0):,} |",
        f"| duplicates the soundboxes heard and did not replay | {fleet['duplicates_heard']:,} |",
        f"| outbox depth (pending + sent) max / after the grace | {report['outbox']['max_depth']:,} /"
        f" {report['outbox']['final_depth']:,} |",
        f"| oldest unacknowledged outbox row, max | {report['outbox']['max_oldest_s']:.1f} s |",
        f"| outbox payment rows by status at the end | {json.dumps(report['outbox_payment_statuses'])} |",
        "| platform's PostgreSQL connections not idle, mean per sample | "
        + (", ".join(f"{what} {n:.1f}" for what, n in report["db_backends"].items()) or "none")
        + " |",
        f"| load generator's own event-loop lag (0.1 s sleeps) p50 / p99 / max | {lag['p50_ms']:.1f} /"
        f" {lag['p99_ms']:.1f} / {lag['max_ms']:.1f} ms |",
        f"| serve log: warnings / errors | {report['serve_log']['levels'].get('warning', 0):,} /"
        f" {report['serve_log']['levels'].get('error', 0) + report['serve_log']['levels'].get('critical', 0):,} |",
        "",
        "Memory over the steady part of the run (from one warm-up minute after the first callback, or a fifth"
        " of the run if shorter, to the last callback): RSS of `serve` and of the load generator; for PostgreSQL"
        " the sum of PSS over its processes (shared memory divided among the processes that map it, so shared"
        f" buffers, {report['shared_buffers']} here, count once):",
        "",
        "| process | memory first | last | peak | slope | CPU over the run |",
        "|---|---|---|---|---|---|",
    ]
    last = report["samples"][-1]
    run_s = max(report["steady_window_s"][1] - report["steady_window_s"][0], 1e-9)
    for key, label in (
        ("serve", "`serve`"),
        ("postgres", f"PostgreSQL ({last['postgres_processes']} processes)"),
        ("loadgen", "load generator"),
    ):
        m = report["memory"][key]
        lines.append(
            f"| {label} | {m['first']:.1f} MiB | {m['last']:.1f} MiB | {m['peak']:.1f} MiB |"
            f" {m['slope_per_min']:+.2f} MiB/min | {last[f'cpu_{key}_s']:.0f} s"
            f" ({last[f'cpu_{key}_s'] / run_s:.0%} of a core) |"
        )
    lines += [
        "",
        "Timeline (t from the start of onboarding; a sample a minute, and the last one after the grace):",
        "",
        "| t | serve MiB | PostgreSQL MiB | generator MiB | outbox pending / sent | oldest s | connected |"
        " answered 200 | announced | heartbeats |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for sample in timeline(report["samples"]):
        lines.append(
            f"| {sample['t']:.0f} s | {sample['rss_serve_mib']:.1f} | {sample['rss_postgres_mib']:.1f} |"
            f" {sample['rss_loadgen_mib']:.1f} | {sample['outbox_pending']:,} / {sample['outbox_sent']:,} |"
            f" {sample['outbox_oldest_s']:.1f} | {sample['connected']:,} | {sample['answered_200']:,} |"
            f" {sample['announced']:,} | {sample['heartbeats']:,} |"
        )
    lines += [
        "",
        "Announcement latency to the devices reading normally, by minute of payments (callbacks grouped by"
        " when they were sent):",
        "",
        "| minute | announced | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|",
        *(
            f"| {m['minute']} | {m['count']:,} | {m['p50_ms']:.1f} | {m['p99_ms']:.1f} | {m['max_ms']:.1f} |"
            for m in report["announcement_by_minute"]
        ),
    ]
    if report["after_ack_examples"]:
        lines += [
            "",
            "Duplicates after ack, the first 20, each timed from the moment the broker PUBACKed the device's"
            " ack (seconds; the platform's times are PostgreSQL's `now()` in the transaction that wrote them):",
            "",
            "| message | slow reader | outbox hand-overs | ack traced | ack recorded | copy sent by |"
            " outbox attempts |",
            "|---|---|---|---|---|---|---|",
            *(
                f"| `{e['message_id']}` | {'yes' if e['slow_reader'] else 'no'} |"
                f" {offsets(e['handed_to_broker_s'])} | {offsets(e['ack_uplinks_traced_s'])} |"
                f" {offsets([e['ack_recorded_s']] if e['ack_recorded_s'] is not None else [])} |"
                f" {offsets([e['copy_s']])} | {e['outbox_attempts']} |"
                for e in report["after_ack_examples"]
            ),
        ]
    if report["lost_transactions"] or report["loadgen_task_errors"]:
        lines += ["", "Details:", ""]
        if report["lost_transactions"]:
            lines.append(f"- lost transactions (first 20): `{json.dumps(report['lost_transactions'])}`")
        if report["loadgen_task_errors"]:
            lines.append(
                "- errors the load generator's event loop reported (in the MQTT client library's callbacks"
                " and tasks nobody awaits, e.g. around a cut connection):"
                f" `{json.dumps(report['loadgen_task_errors'])}`"
            )
    if report["serve_log"]["top"]:
        lines += [
            "",
            "What `serve` logged at warning or above (most frequent first):",
            "",
            *(f"- {n:,} × `{message}`" for message, n in report["serve_log"]["top"]),
        ]
    lines += ["", END]
    return "\n".join(lines)


def offsets(values: Iterable[float]) -> str:
    return ", ".join(f"{v:+.2f}" for v in values) or "never"


def timeline(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first sample, one per minute after it, and the last."""
    picked, next_t = [], samples[0]["t"]
    for sample in samples[:-1]:
        if sample["t"] >= next_t:
            picked.append(sample)
            next_t = sample["t"] + 60
    return [*picked, samples[-1]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=5_000, help="soundboxes (default 5,000)")
    parser.add_argument("--rate", type=float, default=50.0, help="payment callbacks per second (default 50)")
    parser.add_argument("--minutes", type=float, default=30.0, help="how long payments flow (default 30)")
    parser.add_argument(
        "--drops-per-s",
        type=float,
        default=1.0,
        help="connections cut per second across the fleet, at random (default 1; 0 = none)",
    )
    parser.add_argument(
        "--slow-every", type=int, default=100, help="one device in N reads slowly (default 100; 0 = none)"
    )
    parser.add_argument(
        "--slow-share", type=float, default=0.1, help="share of the payments that go to the slow readers (default 0.1)"
    )
    parser.add_argument(
        "--heartbeat-s", type=float, default=60.0, help="MQTT heartbeat per device (default 60; 0 = none)"
    )
    parser.add_argument(
        "--grace-s",
        type=float,
        default=120.0,
        help="after the last callback, how long announcements may still arrive (default 120)",
    )
    parser.add_argument("--sample-s", type=float, default=5.0, help="sampling interval (default 5)")
    parser.add_argument("--connect-concurrency", type=int, default=32, help="device connects in flight (default 32)")
    parser.add_argument("--seed", type=int, default=1, help="random seed: which devices, drops and stalls")
    parser.add_argument("--report", type=Path, help="also write the whole report as JSON to this file")
    parser.add_argument("--no-write", action="store_true", help="print the section, leave docs/performance.md alone")
    args = parser.parse_args()
    plan = Plan(
        devices=args.devices,
        rate=args.rate,
        minutes=args.minutes,
        drops_per_s=args.drops_per_s,
        slow_every=args.slow_every,
        slow_share=args.slow_share,
        heartbeat_s=args.heartbeat_s,
        grace_s=args.grace_s,
        sample_s=args.sample_s,
        connect_concurrency=args.connect_concurrency,
        seed=args.seed,
    )
    if min(plan.devices, plan.rate, plan.minutes, plan.sample_s, plan.connect_concurrency) <= 0:
        parser.error("--devices, --rate, --minutes, --sample-s and --connect-concurrency must be positive")
    if plan.drops_per_s < 0 or plan.slow_every < 0 or plan.grace_s < 0 or not 0 <= plan.slow_share <= 1:
        parser.error("--drops-per-s, --slow-every and --grace-s cannot be negative; --slow-share is 0 to 1")
    raise_fd_limit()  # inherited by serve: both ends of every session need a descriptor
    import uvloop

    before, started = uptime(), time.monotonic()
    with tempfile.TemporaryDirectory(prefix="qris-bench-soak-") as tmp:
        report = uvloop.run(run(plan, Path(tmp)))
    seconds = time.monotonic() - started
    info = {
        **machine(),
        "amqtt": version("amqtt"),
        "aiomqtt (devices)": version("aiomqtt"),
        "uvloop": version("uvloop"),
    }
    # As run, less where the JSON went: a path of this machine has no place in the docs.
    shown = [
        a
        for previous, a in itertools.pairwise(sys.argv)
        if a != "--report" and previous != "--report" and not a.startswith("--report=")
    ]
    command = " ".join(["bench/soak.py", *shown])
    if args.report:  # first: a run is never lost to a fault in the rendering
        args.report.write_text(json.dumps({**report, "machine": info}, indent=1, default=str))
    text = render(report, info, (before, uptime()), seconds, command)
    print(text)
    if not args.no_write:
        write_section(text, BEGIN, END)
        print(f"written to {DOC}")
    problems = verdict(report)
    for problem in problems:
        print(f"soak: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
