"""Broker at fleet scale: the project's broker (PlatformBroker on amqtt) against Mosquitto, same run.

Each broker runs in its own process (the project's under uvloop); this process
is the load generator: one asyncio loop (uvloop) with a minimal hand-written
MQTT 3.1.1 client (asyncio.Protocol, no task per connection), loopback only.
Measured for both brokers:

- 1 publisher -> 1 subscriber throughput at QoS 0 and QoS 1 (fresh broker);
- connect + subscribe rate from 0 to 1k, 1k to 5k and 5k to 10k sessions,
  each session a device subscribed to ``devices/<id>/downlink/#``, and the
  broker's RSS per session;
- per-device QoS 1 downlink latency (publish -> device) p50/p95/p99 and loss
  at 200 and 1,000 msg/s with 5k and 10k sessions connected.

Usage: ``.venv/bin/python bench/broker_scale.py [--quick] [--auth test|devices] [--no-write]``.
Writes the "Broker at fleet scale" section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import platform as py_platform
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import psutil
import yaml
from common import DOC, HOST, free_port, write_section

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- broker-scale:begin -->", "<!-- broker-scale:end -->"
TEST_PASSWORD = "bench-shared-password"
TEST_PLUGIN = "tests.broker.auth_plugin.SharedPasswordAuthPlugin"
CONNECT_CONCURRENCY = 64  # below the brokers' listen backlogs (Mosquitto's is 100), so no SYN is dropped and retried
PAYLOAD_PAD = b"x" * 112  # ~128-byte payload, the size of a payment downlink


# ---- MQTT 3.1.1 encoding --------------------------------------------------------------------------------------


def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(value: bytes) -> bytes:
    return struct.pack(">H", len(value)) + value


def connect_packet(client_id: str, username: str, password: str, keepalive: int = 900) -> bytes:
    body = _utf8(b"MQTT") + bytes([4, 0xC2]) + struct.pack(">H", keepalive)  # user+password+clean session
    body += _utf8(client_id.encode()) + _utf8(username.encode()) + _utf8(password.encode())
    return b"\x10" + _length(len(body)) + body


def subscribe_packet(packet_id: int, topic: str, qos: int) -> bytes:
    body = struct.pack(">H", packet_id) + _utf8(topic.encode()) + bytes([qos])
    return b"\x82" + _length(len(body)) + body


def publish_packet(topic: bytes, payload: bytes, qos: int, packet_id: int = 0) -> bytes:
    body = _utf8(topic) + (struct.pack(">H", packet_id) if qos else b"") + payload
    return bytes([0x30 | (qos << 1)]) + _length(len(body)) + body


def timestamped_payload(seq: int) -> bytes:
    return struct.pack(">dI", time.perf_counter(), seq) + PAYLOAD_PAD


class Client(asyncio.Protocol):
    """The smallest MQTT client that connects, subscribes, publishes and acknowledges."""

    def __init__(self, on_message: Callable[[bytes], None] | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.connack: asyncio.Future[int] = loop.create_future()
        self.suback: asyncio.Future[None] | None = None
        self.on_message = on_message
        self.on_puback: Callable[[], None] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.connack.done():
            self.connack.set_exception(ConnectionError("connection closed before CONNACK"))

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while len(buffer) >= 2:
            value, multiplier, index = 0, 1, 1
            while True:
                if index >= len(buffer):
                    return
                byte = buffer[index]
                value += (byte & 0x7F) * multiplier
                multiplier *= 128
                index += 1
                if not byte & 0x80:
                    break
            end = index + value
            if len(buffer) < end:
                return
            kind, flags = buffer[0] >> 4, buffer[0] & 0x0F
            body = bytes(buffer[index:end])
            del buffer[:end]
            if kind == 3:  # PUBLISH
                qos = (flags >> 1) & 3
                start = 2 + ((body[0] << 8) | body[1])
                if qos:
                    assert self.transport is not None
                    self.transport.write(b"\x40\x02" + body[start:start + 2])
                    start += 2
                if self.on_message is not None:
                    self.on_message(body[start:])
            elif kind == 4 and self.on_puback is not None:  # PUBACK
                self.on_puback()
            elif kind == 2 and not self.connack.done():  # CONNACK
                self.connack.set_result(body[1])
            elif kind == 9 and self.suback is not None and not self.suback.done():  # SUBACK
                self.suback.set_result(None)

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_client(port: int, client_id: str, password: str, topic: str | None = None, qos: int = 1,
                      on_message: Callable[[bytes], None] | None = None) -> Client:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: Client(on_message), HOST, port)
    client.write(connect_packet(client_id, client_id, password))
    code = await asyncio.wait_for(client.connack, 30)
    if code != 0:
        client.close()
        raise ConnectionRefusedError(f"CONNACK {code} for {client_id}")
    if topic is not None:
        client.suback = loop.create_future()
        client.write(subscribe_packet(1, topic, qos))
        await asyncio.wait_for(client.suback, 30)
    return client


# ---- brokers under test ---------------------------------------------------------------------------------------


@dataclass
class BrokerProcess:
    name: str
    process: subprocess.Popen[bytes]
    port: int

    @property
    def rss(self) -> int:
        return psutil.Process(self.process.pid).memory_info().rss

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"broker exited with code {process.returncode} before listening")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection(HOST, port)
            writer.close()
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"broker did not listen on {port} within {timeout} s")


def find_mosquitto() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None)


async def start_platform_broker(args: argparse.Namespace, workdir: Path) -> BrokerProcess:
    port = free_port()
    command = [sys.executable, str(Path(__file__).resolve()), "serve-broker", "--port", str(port), "--auth", args.auth]
    if args.auth == "test":
        config = yaml.safe_load((ROOT / "broker.yaml").read_text())
        config["plugins"] = {TEST_PLUGIN: {"password": TEST_PASSWORD}}
        path = workdir / "broker-bench.yaml"
        path.write_text(yaml.safe_dump(config))
        command += ["--config", str(path)]
    if args.profile:
        command += ["--profile", str(workdir / "platform-broker.pstats")]
    process = subprocess.Popen(command, cwd=ROOT)
    await wait_for_port(port, process)
    return BrokerProcess("PlatformBroker (amqtt 0.12.1)", process, port)


async def start_mosquitto(binary: str, workdir: Path) -> BrokerProcess:
    port = free_port()
    conf = workdir / "mosquitto.conf"
    # Anonymous: its auth costs nothing here, like the test plugin's string comparison on the other side.
    conf.write_text(f"listener {port} {HOST}\nallow_anonymous true\npersistence false\nlog_type error\n"
                    "max_connections -1\n")
    process = subprocess.Popen([binary, "-c", str(conf)], cwd=workdir)
    await wait_for_port(port, process)
    return BrokerProcess("Mosquitto", process, port)


# ---- scenarios --------------------------------------------------------------------------------------------------


@dataclass
class Credentials:
    ids: list[str]
    secrets: list[str]

    def of(self, index: int) -> tuple[str, str]:
        return self.ids[index], self.secrets[index]


@dataclass
class Fleet:
    broker: BrokerProcess
    credentials: Credentials
    clients: list[Client] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    received: int = 0

    def on_downlink(self, payload: bytes) -> None:
        self.latencies.append(time.perf_counter() - struct.unpack_from(">d", payload)[0])
        self.received += 1

    async def grow(self, target: int) -> float:
        """Connect and subscribe devices up to ``target``; returns sessions per second."""
        semaphore = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one(index: int) -> Client:
            device, secret = self.credentials.of(index)
            async with semaphore:
                return await open_client(self.broker.port, device, secret, f"devices/{device}/downlink/#", 1,
                                         self.on_downlink)

        start, first = time.perf_counter(), len(self.clients)
        self.clients.extend(await asyncio.gather(*(one(i) for i in range(first, target))))
        return (target - first) / (time.perf_counter() - start)


async def downlink_latency(fleet: Fleet, publisher: Client, rate: int, seconds: float) -> dict[str, float]:
    """Paced QoS 1 publishes, each to one device; latency measured at the device."""
    sessions = len(fleet.clients)
    total = int(rate * seconds)
    topics = [f"devices/{fleet.credentials.ids[i]}/downlink/payment".encode() for i in range(sessions)]
    fleet.latencies, fleet.received = [], 0
    acked = 0

    def on_puback() -> None:
        nonlocal acked
        acked += 1

    publisher.on_puback = on_puback
    start, sent = time.perf_counter(), 0
    while sent < total and time.perf_counter() - start < seconds * 3:
        due = min(total, int((time.perf_counter() - start) * rate) + 1)
        while sent < due:
            device = (sent * 7919) % sessions  # a different device each time, all of them in turn
            publisher.write(publish_packet(topics[device], timestamped_payload(sent), 1, sent % 65535 + 1))
            sent += 1
        await asyncio.sleep(0.001)
    deadline = time.perf_counter() + 15
    while fleet.received < sent and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    ordered = sorted(fleet.latencies)

    def pct(p: float) -> float:
        return 1000 * ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")

    return {"sent": sent, "received": fleet.received, "lost": sent - fleet.received, "p50": pct(0.50),
            "p95": pct(0.95), "p99": pct(0.99), "max": 1000 * ordered[-1] if ordered else float("nan"),
            "achieved_rate": sent / max(time.perf_counter() - start, 1e-9)}


async def throughput(broker: BrokerProcess, credentials: Credentials, qos: int, count: int, tag: str) -> dict[str, float]:
    """1 publisher -> 1 subscriber, as fast as the broker takes it (QoS 1: 256 PUBLISH in flight)."""
    done = asyncio.get_running_loop().create_future()
    received = 0
    last = 0.0

    def on_message(_: bytes) -> None:
        nonlocal received, last
        received += 1
        last = time.perf_counter()
        if received == count and not done.done():
            done.set_result(None)

    sub_id, sub_secret = credentials.of(len(credentials.ids) - 1)
    pub_id, pub_secret = credentials.of(len(credentials.ids) - 2)
    subscriber = await open_client(broker.port, sub_id, sub_secret, f"bench/{tag}", qos, on_message)
    publisher = await open_client(broker.port, pub_id, pub_secret)
    packet_qos0 = publish_packet(f"bench/{tag}".encode(), PAYLOAD_PAD, 0)
    window = asyncio.Event()
    inflight = 0

    def on_puback() -> None:
        nonlocal inflight
        inflight -= 1
        if inflight < 128:
            window.set()

    publisher.on_puback = on_puback
    assert publisher.transport is not None
    start = time.perf_counter()
    sent = 0
    time_limit = 60.0
    while sent < count and time.perf_counter() - start < time_limit:
        if qos == 0:
            batch = min(500, count - sent)
            publisher.write(packet_qos0 * batch)
            sent += batch
            while publisher.transport.get_write_buffer_size() > 1 << 20:
                await asyncio.sleep(0.001)
            await asyncio.sleep(0)
        else:
            while inflight >= 256:
                window.clear()
                await asyncio.wait_for(window.wait(), 30)
            batch = min(256 - inflight, count - sent)
            publisher.write(b"".join(publish_packet(f"bench/{tag}".encode(), PAYLOAD_PAD, 1, (sent + i) % 65535 + 1)
                                     for i in range(batch)))
            inflight += batch
            sent += batch
            await asyncio.sleep(0)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(done, max(1.0, time_limit - (time.perf_counter() - start)))
    elapsed = (last or time.perf_counter()) - start
    subscriber.close()
    publisher.close()
    return {"rate": received / elapsed if elapsed > 0 else 0.0, "received": received, "sent": sent}


@dataclass
class Plan:
    stages: tuple[int, ...]
    latency_at: tuple[int, ...]
    rates: tuple[int, ...]
    latency_seconds: float
    throughput_messages: int


FULL = Plan(stages=(1_000, 5_000, 10_000), latency_at=(5_000, 10_000), rates=(200, 1_000), latency_seconds=5,
            throughput_messages=30_000)
QUICK = Plan(stages=(500, 2_000), latency_at=(2_000,), rates=(200, 1_000), latency_seconds=2,
             throughput_messages=5_000)


async def measure(broker: BrokerProcess, credentials: Credentials, plan: Plan) -> dict[str, object]:
    results: dict[str, object] = {}
    cpu_before = broker.cpu_seconds()
    for qos in (0, 1):
        results[f"throughput_qos{qos}"] = await throughput(broker, credentials, qos, plan.throughput_messages,
                                                           f"throughput{qos}")
        print(f"  {broker.name}: 1->1 QoS {qos}: {results[f'throughput_qos{qos}']}", flush=True)
    await asyncio.sleep(1.5)  # let the broker drop the throughput sessions before RSS is sampled
    fleet = Fleet(broker, credentials)
    rss_start = broker.rss
    publisher_id, publisher_secret = credentials.of(len(credentials.ids) - 3)
    publisher = await open_client(broker.port, publisher_id, publisher_secret)
    previous = 0
    for stage in plan.stages:
        rate = await fleet.grow(stage)
        await asyncio.sleep(0.5)
        rss = broker.rss
        results[f"connect_{previous}_{stage}"] = rate
        results[f"rss_{stage}"] = rss
        results[f"rss_per_session_{stage}"] = (rss - rss_start) / stage
        print(f"  {broker.name}: connect+subscribe {previous}->{stage}: {rate:,.0f}/s, RSS {rss / 2**20:.1f} MiB",
              flush=True)
        previous = stage
        if stage in plan.latency_at:
            for per_second in plan.rates:
                outcome = await downlink_latency(fleet, publisher, per_second, plan.latency_seconds)
                results[f"latency_{stage}_{per_second}"] = outcome
                print(f"  {broker.name}: downlink {per_second}/s with {stage} sessions: {outcome}", flush=True)
    results["cpu_seconds"] = broker.cpu_seconds() - cpu_before
    publisher.close()
    for client in fleet.clients:
        client.close()
    return results


# ---- report ---------------------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mosquitto = find_mosquitto()
    mosquitto_version = "missing"
    if mosquitto:
        out = subprocess.run([mosquitto, "-h"], capture_output=True, text=True, check=False).stdout
        mosquitto_version = out.splitlines()[0] if out else "unknown"
    return {"CPU": cpu, "cores": str(os.cpu_count()), "RAM": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
            "Python": py_platform.python_version(), "amqtt": version("amqtt"), "uvloop": version("uvloop"),
            "Mosquitto": mosquitto_version}


def _ratio(ours: float, theirs: float | None, higher_is_better: bool) -> str:
    if theirs is None or not ours or not theirs:
        return "n/a"
    return f"{(theirs / ours if higher_is_better else ours / theirs):,.1f}×"


def render(plan: Plan, ours: dict[str, object], theirs: dict[str, object] | None, info: dict[str, str],
           load: tuple[tuple[float, ...], tuple[float, ...]], auth: str, seconds: float) -> str:
    lines = [BEGIN, "", "## Broker at fleet scale", "",
             f"`bench/broker_scale.py{' --quick' if plan is QUICK else ''} --auth {auth}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())},"
             f" {seconds:.0f} s. Ratio = how many times Mosquitto is better (1.0× = as good).", "",
             "| machine | |", "|---|---|", *(f"| {k} | {v} |" for k, v in info.items()),
             f"| load average (1/5/15 min) before / after | {' / '.join(f'{x:.2f}' for x in load[0])} →"
             f" {' / '.join(f'{x:.2f}' for x in load[1])} |", "",
             "| test | PlatformBroker | Mosquitto | ratio |", "|---|---|---|---|"]

    def row(label: str, key: str, fmt: Callable[[float], str], higher_is_better: bool,
            pick: Callable[[object], float] = float) -> None:  # type: ignore[assignment]
        mine = pick(ours[key]) if key in ours else None
        other = pick(theirs[key]) if theirs and key in theirs else None
        lines.append(f"| {label} | {fmt(mine) if mine is not None else 'n/a'} | "
                     f"{fmt(other) if other is not None else 'n/a'} | "
                     f"{_ratio(mine or 0.0, other, higher_is_better)} |")

    for qos in (0, 1):
        row(f"1 → 1 throughput, QoS {qos} (msg/s)", f"throughput_qos{qos}", lambda v: f"{v:,.0f}", True,
            lambda r: r["rate"])  # type: ignore[index]
    previous = 0
    for stage in plan.stages:
        row(f"connect + subscribe {previous:,} → {stage:,} (sessions/s)", f"connect_{previous}_{stage}",
            lambda v: f"{v:,.0f}", True)
        row(f"RSS with {stage:,} sessions (MiB)", f"rss_{stage}", lambda v: f"{v / 2**20:,.1f}", False)
        row(f"RSS per session at {stage:,} (KB)", f"rss_per_session_{stage}", lambda v: f"{v / 1000:,.1f}", False)
        previous = stage
    for stage in plan.latency_at:
        for rate in plan.rates:
            key = f"latency_{stage}_{rate}"
            for name in ("p50", "p95", "p99"):
                row(f"downlink QoS 1, {stage:,} sessions, {rate:,} msg/s: {name} (ms)", key, lambda v: f"{v:,.2f}",
                    False, lambda r, n=name: r[n])  # type: ignore[index,misc]
            row(f"downlink QoS 1, {stage:,} sessions, {rate:,} msg/s: lost of sent", key, lambda v: f"{v:,.0f}",
                False, lambda r: r["lost"])  # type: ignore[index]
    lines += ["", f"Broker CPU time over the whole run: PlatformBroker {ours['cpu_seconds']:.1f} s"
              + (f", Mosquitto {theirs['cpu_seconds']:.1f} s." if theirs else "."), "", END]
    return "\n".join(lines)


# ---- entry points ---------------------------------------------------------------------------------------------


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < 11_000:
        print(f"warning: only {hard} file descriptors allowed; 10,000 sessions need more", file=sys.stderr)


def load_credentials(args: argparse.Namespace, needed: int) -> Credentials:
    if args.auth == "test":
        ids = [f"bench-{i}" for i in range(needed)]
        return Credentials(ids, [TEST_PASSWORD] * needed)
    rows = [line.split(",", 1) for line in Path(args.devices_file).read_text().splitlines() if line.strip()]
    if len(rows) < needed:
        raise SystemExit(f"--devices-file has {len(rows)} devices; this plan needs {needed}")
    return Credentials([r[0].strip() for r in rows], [r[1].strip() for r in rows])


async def run(args: argparse.Namespace) -> int:
    plan = QUICK if args.quick else FULL
    credentials = load_credentials(args, plan.stages[-1] + 3)
    mosquitto = find_mosquitto()
    if mosquitto is None:
        print("mosquitto is not installed: `apt-get install -y mosquitto` to compare against it;"
              " measuring the project's broker alone.", file=sys.stderr)
    info = machine()
    load_before = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="broker-bench-") as tmp:
        workdir = Path(tmp)
        ours_process = await start_platform_broker(args, workdir)
        try:
            print(f"measuring {ours_process.name} on port {ours_process.port}", flush=True)
            ours = await measure(ours_process, credentials, plan)
        finally:
            ours_process.stop()
        theirs = None
        if mosquitto is not None:
            theirs_process = await start_mosquitto(mosquitto, workdir)
            try:
                print(f"measuring Mosquitto on port {theirs_process.port}", flush=True)
                theirs = await measure(theirs_process, Credentials(credentials.ids, credentials.secrets), plan)
            finally:
                theirs_process.stop()
        if args.profile:
            print(f"profile of the project's broker: {workdir / 'platform-broker.pstats'} (copied to {args.profile})")
            shutil.copy(workdir / "platform-broker.pstats", args.profile)
    text = render(plan, ours, theirs, info, (load_before, os.getloadavg()), args.auth, time.perf_counter() - started)
    print(text)
    if not args.no_write:
        write_section(text, BEGIN, END)
        print(f"written to {DOC}")
    return 0


def serve_broker(args: argparse.Namespace) -> None:
    """Run the project's broker alone in this process (the bench starts it as a child), under uvloop."""
    import uvloop

    raise_fd_limit()
    sys.path.insert(0, str(ROOT))  # the test auth plugin lives in tests/broker/

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if args.auth == "devices":
            # The real thing: serve --only broker with broker.yaml's plugins on DATABASE_URL.
            from qris_soundbox.core.config import load_settings
            from qris_soundbox.tools.serve import ServeOptions, serve

            options = ServeOptions(roles=frozenset({"broker"}), mqtt_host=HOST, mqtt_port=args.port)
            await serve(load_settings(), options, stop)
            return
        from qris_soundbox.broker.config import load_broker_config, with_bind
        from qris_soundbox.broker.server import PlatformBroker
        from qris_soundbox.core.config import load_settings
        from qris_soundbox.core.context import PlatformContext

        config = with_bind(load_broker_config(Path(args.config)), HOST, args.port)
        # The test plugin needs no database.
        broker = PlatformBroker(config, PlatformContext(load_settings({}), db=None))  # type: ignore[arg-type]
        await broker.start()
        await stop.wait()
        await broker.shutdown()

    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        uvloop.run(main())
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "serve-broker":
        parser = argparse.ArgumentParser(prog="broker_scale.py serve-broker")
        parser.add_argument("serve", choices=["serve-broker"])
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--auth", choices=["test", "devices"], default="test")
        parser.add_argument("--config")
        parser.add_argument("--profile")
        serve_broker(parser.parse_args())
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500/2,000 sessions, shorter runs")
    parser.add_argument("--auth", choices=["test", "devices"], default="test",
                        help="test: shared-password test plugin; devices: the project's plugins and provisioned devices")
    parser.add_argument("--devices-file", help="with --auth devices: CSV lines 'device_id,secret' of provisioned devices")
    parser.add_argument("--profile", help="write a cProfile of the project's broker process to this file")
    parser.add_argument("--no-write", action="store_true", help="print the table, leave docs/performance.md alone")
    args = parser.parse_args()
    if args.auth == "devices":
        if importlib.util.find_spec("qris_soundbox.plugins.device_auth") is None:
            print("--auth devices needs the device auth plugin (qris_soundbox.plugins.device_auth), which this"
                  " checkout does not have yet; use --auth test", file=sys.stderr)
            return 2
        if not args.devices_file or not os.environ.get("DATABASE_URL"):
            print("--auth devices needs DATABASE_URL (the platform's database) and --devices-file with the"
                  " provisioned devices' credentials", file=sys.stderr)
            return 2
    raise_fd_limit()
    import uvloop

    return uvloop.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
