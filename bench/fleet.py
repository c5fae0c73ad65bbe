"""What the benchmarks share on the device side: the smallest MQTT 3.1.1 client, a provisioned fleet
in the platform's database, soundboxes that ack their announcements, and latency percentiles.

Scripts import it as ``fleet`` (``bench/`` is on their ``sys.path``); no benchmark imports another
benchmark or ``tests/``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform as py_platform
import random
import resource
import shutil
import signal
import ssl
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import psutil
import yaml
from common import HOST, ROOT, free_port, machine_rows
from mqtt_wire import remaining_length, utf8

# The script whose serve-broker mode runs the project's broker alone (started as a child, not imported).
BROKER_SCALE = Path(__file__).resolve().parent / "broker_scale.py"

CONNECT_CONCURRENCY = 64  # below the brokers' listen backlogs (Mosquitto's is 100), so no SYN is dropped and retried


def connect_packet(client_id: str, username: str, password: str, keepalive: int = 900) -> bytes:
    body = utf8(b"MQTT") + bytes([4, 0xC2]) + struct.pack(">H", keepalive)  # user+password+clean session
    body += utf8(client_id.encode()) + utf8(username.encode()) + utf8(password.encode())
    return b"\x10" + remaining_length(len(body)) + body


def subscribe_packet(packet_id: int, topic: str, qos: int) -> bytes:
    body = struct.pack(">H", packet_id) + utf8(topic.encode()) + bytes([qos])
    return b"\x82" + remaining_length(len(body)) + body


def publish_packet(topic: bytes, payload: bytes, qos: int, packet_id: int = 0) -> bytes:
    body = utf8(topic) + (struct.pack(">H", packet_id) if qos else b"") + payload
    return bytes([0x30 | (qos << 1)]) + remaining_length(len(body)) + body


class Client(asyncio.Protocol):
    """The smallest MQTT client that connects, subscribes, publishes and acknowledges."""

    def __init__(self, on_message: Callable[[bytes], None] | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.connack: asyncio.Future[int] = loop.create_future()
        self.suback: asyncio.Future[int] | None = None
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
                    self.transport.write(b"\x40\x02" + body[start : start + 2])
                    start += 2
                if self.on_message is not None:
                    self.on_message(body[start:])
            elif kind == 4 and self.on_puback is not None:  # PUBACK
                self.on_puback()
            elif kind == 2 and not self.connack.done():  # CONNACK
                self.connack.set_result(body[1])
            elif kind == 9 and self.suback is not None and not self.suback.done():  # SUBACK
                self.suback.set_result(body[2])

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_client(
    port: int,
    client_id: str,
    password: str,
    topic: str | None = None,
    qos: int = 1,
    on_message: Callable[[bytes], None] | None = None,
    timeout: float = 30,
    tls: ssl.SSLContext | None = None,
) -> Client:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: Client(on_message), HOST, port, ssl=tls)
    try:
        code = 0
        client.write(connect_packet(client_id, client_id, password))
        code = await asyncio.wait_for(client.connack, timeout)
        if code != 0:
            raise ConnectionRefusedError(f"CONNACK {code} for {client_id}")
        if topic is not None:
            client.suback = loop.create_future()
            client.write(subscribe_packet(1, topic, qos))
            if await asyncio.wait_for(client.suback, timeout) == 0x80:
                raise PermissionError(f"SUBSCRIBE {topic} refused for {client_id}")
    except BaseException:
        client.close()
        raise
    return client


@dataclass
class Credentials:
    ids: list[str]
    secrets: list[str]

    def of(self, index: int) -> tuple[str, str]:
        return self.ids[index], self.secrets[index]


def _hash_secret(secret: str) -> str:
    from qris_soundbox.core.devices.credentials import DEVICE_SECRET_HASHER

    return DEVICE_SECRET_HASHER.hash(secret)


@asynccontextmanager
async def provisioned_fleet(
    workdir: Path, count: int, facts: dict[str, object], model_of: Callable[[int], str] = lambda _index: "generic-audio"
) -> AsyncIterator[tuple[object, Credentials]]:
    """The platform's database (DATABASE_URL, else embedded in ``workdir``), migrated, with ``count`` active devices.

    Secrets are issued and hashed exactly as a rotation does (``new_secret``,
    ``fingerprint_of``, ``DEVICE_SECRET_HASHER``), in a process pool (argon2
    holds no lock, but one process per core is simplest), and written with
    one INSERT from arrays. Yields the database and the credentials; with
    DATABASE_URL (or PG* variables) the bench's devices are deleted again on the way out.
    """
    from qris_soundbox.core.config import load_settings
    from qris_soundbox.core.devices.credentials import fingerprint_of, new_secret
    from qris_soundbox.core.embedded_pg import external_database_configured
    from qris_soundbox.core.ids import new_id
    from qris_soundbox.tools.common import open_database

    settings = load_settings()
    external = external_database_configured(settings.database_url)
    async with open_database(settings, workdir, pool_size=4) as db:
        started = time.perf_counter()
        secrets = [new_secret() for _ in range(count)]
        ids = [new_id("dev") for _ in range(count)]
        run = ids[0][-8:]
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            hashes = await loop.run_in_executor(None, lambda: list(pool.map(_hash_secret, secrets, chunksize=250)))
        hashed = time.perf_counter()
        await db.pool.execute(
            "INSERT INTO devices (id, serial_number, model_id, status, credential_hash, credential_fingerprint,"
            " credential_rotated_at) SELECT id, 'BENCH-' || $4 || '-' || n, m, 'active', h, f, now()"
            " FROM unnest($1::text[], $2::text[], $3::text[], $5::text[]) WITH ORDINALITY AS t (id, h, f, m, n)",
            ids,
            hashes,
            [fingerprint_of(secret) for secret in secrets],
            run,
            [model_of(index) for index in range(count)],
        )
        facts.update(
            provisioned=count,
            hash_seconds=hashed - started,
            insert_seconds=time.perf_counter() - hashed,
            hash_workers=os.cpu_count() or 2,
            dsn=db.dsn,
            database="DATABASE_URL" if external else "embedded PostgreSQL (temporary directory)",
        )
        try:
            yield db, Credentials(ids, secrets)
        finally:
            if external:
                async with db.transaction() as conn:
                    for table in ("device_mqtt_messages", "device_outbox", "device_announcement_counters"):
                        await conn.execute(f"DELETE FROM {table} WHERE device_id = ANY ($1::text[])", ids)
                    await conn.execute("DELETE FROM devices WHERE id = ANY ($1::text[])", ids)


def latency_percentiles(seconds: list[float]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds of latencies in seconds (NaN when there are none)."""
    ordered = sorted(seconds)

    def pct(p: float) -> float:
        return 1000 * ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")

    return {
        "p50": pct(0.50),
        "p95": pct(0.95),
        "p99": pct(0.99),
        "max": 1000 * ordered[-1] if ordered else float("nan"),
    }


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < 11_000:
        print(f"warning: only {hard} file descriptors allowed; 10,000 sessions need more", file=sys.stderr)


async def announcement_client(
    port: int, device_id: str, secret: str, received: dict[str, float], repeats: list[str] | None = None
) -> object:
    """A soundbox that notes when each payment is first heard and acks it, as firmware does; ``repeats``
    (when given) collects every message id heard again after the device acked it."""
    ack_topic = f"devices/{device_id}/uplink/payment/ack".encode()
    holder: list[object] = []
    acked: set[str] = set()
    acks = 0

    def on_message(payload: bytes) -> None:
        nonlocal acks
        heard = time.perf_counter()
        body = json.loads(payload)
        received.setdefault(body.get("transaction_id", ""), heard)
        if repeats is not None and body.get("message_id") in acked:
            repeats.append(body["message_id"])
        if holder and "message_id" in body:
            acked.add(body["message_id"])
            acks += 1
            ack = json.dumps({"message_id": body["message_id"]}).encode()
            holder[0].write(publish_packet(ack_topic, ack, 1, acks % 65535 + 1))  # type: ignore[attr-defined]

    client = await open_client(port, device_id, secret, f"devices/{device_id}/downlink/#", 1, on_message)
    holder.append(client)
    return client


TEST_PASSWORD = "bench-shared-password"


# bench/auth_plugin.py, importable by the broker child: bench/ is its script directory.
TEST_PLUGIN = "auth_plugin.SharedPasswordAuthPlugin"


PAYLOAD_PAD = b"x" * 112  # ~128-byte payload, the size of a payment downlink


def timestamped_payload(seq: int) -> bytes:
    return struct.pack(">dI", time.perf_counter(), seq) + PAYLOAD_PAD


@dataclass
class BrokerProcess:
    """A broker in its own process, which can be crashed and started again on the same port."""

    name: str
    command: list[str]
    port: int
    cwd: Path = ROOT
    env: dict[str, str] | None = None
    control_port: int | None = None  # the project's broker with --auth devices: see BenchControl
    tls: ssl.SSLContext | None = None  # the clients' context when the broker serves MQTT over TLS only
    process: subprocess.Popen[bytes] | None = None

    async def start(self, poll: float = 0.1) -> None:
        self.process = subprocess.Popen(self.command, cwd=self.cwd, env=self.env)
        await wait_for_port(self.port, self.process, poll=poll)

    @property
    def rss(self) -> int:
        assert self.process is not None
        return psutil.Process(self.process.pid).memory_info().rss

    def cpu_seconds(self) -> float:
        assert self.process is not None
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def crash(self) -> None:
        """SIGKILL: no shutdown hook runs, as when the process or its machine dies."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60, poll: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"broker exited with code {process.returncode} before listening")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection(HOST, port)
            writer.close()
            return
        await asyncio.sleep(poll)
    raise TimeoutError(f"broker did not listen on {port} within {timeout} s")


def find_mosquitto() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None
    )


async def start_platform_broker(
    args: argparse.Namespace, workdir: Path, dsn: str | None, tls: tuple[dict[str, str], ssl.SSLContext] | None = None
) -> BrokerProcess:
    port = free_port()
    command = [sys.executable, str(BROKER_SCALE), "serve-broker", "--port", str(port), "--auth", args.auth]
    env: dict[str, str] | None = None
    control_port = None
    if args.auth == "test":
        config = yaml.safe_load((ROOT / "broker.yaml").read_text())
        config["plugins"] = {TEST_PLUGIN: {"password": TEST_PASSWORD}}
        path = workdir / "broker-bench.yaml"
        path.write_text(yaml.safe_dump(config))
        command += ["--config", str(path)]
    else:
        control_port = free_port()
        command += ["--control-port", str(control_port)]
        # None: DATABASE_URL or the PG* variables are already in this environment.
        env = {**os.environ, "DATABASE_URL": dsn} if dsn else None
    if args.profile:
        # Dumped when the process stops: a process killed by a reconnect storm leaves none, the last one does.
        command += ["--profile", str(workdir / "platform-broker.pstats")]
    name, context = "PlatformBroker (amqtt 0.12.1)", None
    if tls is not None:
        # Plain MQTT off: the devices (and the bench's readiness probe) reach the TLS port only.
        port = free_port()
        env = {**(env or os.environ), **tls[0], "MQTT_TLS_PORT": str(port)}
        name, context = "PlatformBroker over TLS", tls[1]
    broker = BrokerProcess(name, command, port, env=env, control_port=control_port, tls=context)
    await broker.start()
    return broker


def verify_cost(samples: int = 500) -> float:
    """Seconds per argon2id verification of a device secret with the platform's parameters, in this process."""
    from qris_soundbox.core.devices.credentials import DEVICE_SECRET_HASHER, new_secret

    secret = new_secret()
    stored = DEVICE_SECRET_HASHER.hash(secret)
    started = time.perf_counter()
    for _ in range(samples):
        DEVICE_SECRET_HASHER.verify(stored, secret)
    return (time.perf_counter() - started) / samples


class Control:
    """The load generator's end of the broker's bench control socket (see ``BenchControl``)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Control:
        return cls(*await asyncio.open_connection(HOST, port))

    def downlink(self, device_id: bytes, payload: bytes) -> None:
        self.writer.write(b"D" + struct.pack(">HH", len(device_id), len(payload)) + device_id + payload)

    async def stats(self) -> dict[str, int]:
        self.writer.write(b"S")
        return json.loads(await self.reader.readline())

    def close(self) -> None:
        self.writer.close()


STORM_FIRST_TRY_S = 1.0  # a device notices the lost connection and tries again after a random 0..1 s


STORM_RETRY_S = 0.25  # then back-off doubling up to STORM_MAX_RETRY_S, each wait jittered to 50-100%


STORM_MAX_RETRY_S = 2.0


STORM_ATTEMPT_TIMEOUT_S = 5.0  # no CONNACK/SUBACK within this: give up the attempt and back off


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

    def topic(self, index: int) -> str:
        return f"devices/{self.credentials.ids[index]}/downlink/#"

    async def grow(self, target: int) -> float:
        """Connect and subscribe devices up to ``target``; returns sessions per second."""
        semaphore = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one(index: int) -> Client:
            device, secret = self.credentials.of(index)
            async with semaphore:
                return await open_client(
                    self.broker.port, device, secret, self.topic(index), 1, self.on_downlink, tls=self.broker.tls
                )

        start, first = time.perf_counter(), len(self.clients)
        self.clients.extend(await asyncio.gather(*(one(i) for i in range(first, target))))
        return (target - first) / (time.perf_counter() - start)

    async def reconnect(self, index: int, rng: random.Random) -> tuple[Client, int, float]:
        """One device after losing its connection, as firmware does; returns the client, attempts, when it was back."""
        device, secret = self.credentials.of(index)
        await asyncio.sleep(rng.uniform(0, STORM_FIRST_TRY_S))
        delay, attempts = STORM_RETRY_S, 0
        while True:
            attempts += 1
            try:
                client = await open_client(
                    self.broker.port,
                    device,
                    secret,
                    self.topic(index),
                    1,
                    self.on_downlink,
                    timeout=STORM_ATTEMPT_TIMEOUT_S,
                    tls=self.broker.tls,
                )
                return client, attempts, time.perf_counter()
            except (TimeoutError, OSError):  # refused (broker not up yet), reset, or no answer in time
                await asyncio.sleep(delay * rng.uniform(0.5, 1.0))
                delay = min(delay * 2, STORM_MAX_RETRY_S)


Sender = Callable[[int, int], None]  # (device index, sequence number): send one timestamped downlink


async def downlink_latency(
    fleet: Fleet, send: Sender, rate: int, seconds: float, sessions: int | None = None
) -> dict[str, float]:
    """Paced QoS 1 downlinks, each to one device (of the first ``sessions``); latency measured at the device."""
    sessions = sessions or len(fleet.clients)
    total = int(rate * seconds)
    fleet.latencies, fleet.received = [], 0
    start, sent = time.perf_counter(), 0
    while sent < total and time.perf_counter() - start < seconds * 3:
        due = min(total, int((time.perf_counter() - start) * rate) + 1)
        while sent < due:
            send((sent * 7919) % sessions, sent)  # a different device each time, all of them in turn
            sent += 1
        await asyncio.sleep(0.001)
    deadline = time.perf_counter() + 15
    while fleet.received < sent and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    return {
        "sent": sent,
        "received": fleet.received,
        "lost": sent - fleet.received,
        **latency_percentiles(fleet.latencies),
        "achieved_rate": sent / max(time.perf_counter() - start, 1e-9),
    }


async def downlink_sender(fleet: Fleet, publisher_index: int) -> tuple[Sender, Callable[[], None]]:
    """How downlinks reach the broker: its control socket if it has one, else a publishing client."""
    ids = [device.encode() for device in fleet.credentials.ids]
    if fleet.broker.control_port is not None:
        control = await Control.open(fleet.broker.control_port)

        def through_control(device: int, seq: int) -> None:
            control.downlink(ids[device], timestamped_payload(seq))

        return through_control, control.close
    publisher_id, publisher_secret = fleet.credentials.of(publisher_index)
    publisher = await open_client(fleet.broker.port, publisher_id, publisher_secret, tls=fleet.broker.tls)

    def through_publisher(device: int, seq: int) -> None:
        topic = b"devices/" + ids[device] + b"/downlink/payment"
        publisher.write(publish_packet(topic, timestamped_payload(seq), 1, seq % 65535 + 1))

    return through_publisher, publisher.close


def broker_machine() -> dict[str, str]:
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
    return {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "RAM": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "Python": py_platform.python_version(),
        "amqtt": version("amqtt"),
        "uvloop": version("uvloop"),
        "Mosquitto": mosquitto_version,
    }


def load_rows(info: dict[str, str], load: tuple[tuple[float, ...], tuple[float, ...]]) -> list[str]:
    def average(when: tuple[float, ...]) -> str:
        return "load average " + " / ".join(f"{x:.2f}" for x in when)

    return machine_rows(info, (average(load[0]), average(load[1])))
