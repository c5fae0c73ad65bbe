"""Broker at fleet scale: the project's broker (PlatformBroker on amqtt) against Mosquitto, same run.

Each broker runs in its own process (the project's under uvloop); this process
is the load generator: one asyncio loop (uvloop) with a minimal hand-written
MQTT 3.1.1 client (asyncio.Protocol, no task per connection), loopback only.

``--auth devices`` (the default) measures the platform as deployed: this
process starts an embedded PostgreSQL in a temporary directory (or uses
DATABASE_URL: a database of your own, the bench adds its devices and deletes
them again), applies the migrations, provisions as many devices as the
largest stage with the platform's own device-secret hasher, and runs the
broker with broker.yaml's plugins (device auth, ACL, presence, uplinks,
outbox). Each session connects with username = client id = device id and
its secret and subscribes to ``devices/<id>/downlink/#``. Devices may not
publish downlinks (ACL), so downlinks enter the broker process through a
bench-only control socket that calls ``PlatformBroker.deliver_to_client``,
the call the outbox publisher makes for a payment: one loopback hop, like
the publishing client used for Mosquitto, without the outbox's database
round trips. ``--auth test`` swaps the plugins for the shared-password test
plugin, which measures the broker's own cost. Mosquitto runs anonymous.

Measured for both brokers:

- 1 publisher -> 1 subscriber throughput at QoS 0 and QoS 1 (fresh broker;
  not with ``--auth devices``: the ACL lets no device publish to another);
- connect + subscribe rate from 0 to 1k, 1k to 5k and 5k to 10k sessions and
  the broker's RSS per session;
- per-device QoS 1 downlink latency (publish -> device) p50/p95/p99 and loss
  at 200 and 1,000 msg/s with 5k and 10k sessions connected;
- a reconnect storm at 5k and 10k sessions: the broker process is killed
  (SIGKILL, a crash: nothing is handed over) and started again at once, as a
  supervisor would; every device notices the lost connection and reconnects
  on its own, first after a random 0-1 s, then with a jittered doubling
  back-off (0.25 s to 2 s). Timed until every device is CONNACKed and
  subscribed again, with the new broker's CPU, its argon2 verifications vs
  cache hits and (devices) how long until PostgreSQL shows every device
  online again.

``--tls`` measures the project's broker twice instead, plain MQTT and MQTT
over TLS (a certificate from a CA the bench makes with ``trustme``; the
broker with ``MQTT_PLAIN_ENABLED=false``, so every device handshakes): connect
+ subscribe rates, RSS per session and downlink latency, side by side,
without Mosquitto and without the reconnect storm.

``--dialect`` measures the dialect edge instead: one broker with native
devices and Q161 Pros (docs/dialects.md) connected, signed payment downlinks
at 1,000 msg/s to each side in alternating rounds, the p99 of each (target:
the Q161 Pro within 1.5x of native; the exit status says whether it was), and
what rendering and signing cost per message.

Usage: ``.venv/bin/python bench/broker_scale.py [--quick] [--auth devices|test] [--tls | --dialect] [--no-write]``.
Writes the "Broker at fleet scale" section of docs/performance.md, with
``--tls`` its "Broker over TLS" section, with ``--dialect`` its "dialect edge" one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import ssl
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from common import DOC, HOST, free_port, write_section
from fleet import (
    PAYLOAD_PAD,
    TEST_PASSWORD,
    BrokerProcess,
    Client,
    Control,
    Credentials,
    Fleet,
    broker_machine,
    downlink_latency,
    downlink_sender,
    find_mosquitto,
    latency_percentiles,
    load_rows,
    open_client,
    provisioned_fleet,
    publish_packet,
    raise_fd_limit,
    start_platform_broker,
    verify_cost,
)

BEGIN, END = "<!-- broker-scale:begin -->", "<!-- broker-scale:end -->"
TLS_BEGIN, TLS_END = "<!-- broker-tls:begin -->", "<!-- broker-tls:end -->"


# ---- MQTT 3.1.1 encoding --------------------------------------------------------------------------------------


# ---- brokers under test ---------------------------------------------------------------------------------------


def tls_files(workdir: Path) -> tuple[dict[str, str], ssl.SSLContext]:
    """A CA made here and a server certificate for 127.0.0.1 (trustme's default: ECDSA P-256): the broker's
    environment for MQTT over TLS only, and the devices' client context trusting that CA."""
    import trustme

    ca = trustme.CA()
    leaf = ca.issue_cert(HOST, "localhost")
    cert, key, cafile = workdir / "server.crt", workdir / "server.key", workdir / "ca.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(cafile))
    env = {"MQTT_TLS_CERT_FILE": str(cert), "MQTT_TLS_KEY_FILE": str(key), "MQTT_PLAIN_ENABLED": "false"}
    return env, ssl.create_default_context(cafile=str(cafile))


async def start_mosquitto(binary: str, workdir: Path) -> BrokerProcess:
    port = free_port()
    conf = workdir / "mosquitto.conf"
    # Anonymous: it checks no credential at all, which the tables say next to its figures.
    conf.write_text(
        f"listener {port} {HOST}\nallow_anonymous true\npersistence false\nlog_type error\nmax_connections -1\n"
    )
    broker = BrokerProcess("Mosquitto", [binary, "-c", str(conf)], port, cwd=workdir)
    await broker.start()
    return broker


# ---- the platform's database and devices (--auth devices) --------------------------------------------------------


# ---- scenarios --------------------------------------------------------------------------------------------------


async def reconnect_storm(fleet: Fleet, db: object | None) -> dict[str, float]:
    """Crash the broker with every device connected, restart it at once; every device reconnects by itself."""
    broker = fleet.broker
    sessions = len(fleet.clients)
    rng = random.Random(sessions)
    crashed_at_db = await db.pool.fetchval("SELECT now()") if db is not None else None  # type: ignore[attr-defined]
    start = time.perf_counter()
    broker.crash()
    devices = [asyncio.create_task(fleet.reconnect(i, rng)) for i in range(sessions)]
    await broker.start(poll=0.01)
    listening = time.perf_counter()
    cpu_at_listen = broker.cpu_seconds()
    outcomes = await asyncio.gather(*devices)
    back = max(at for _, _, at in outcomes)
    cpu_storm = broker.cpu_seconds() - cpu_at_listen
    for old in fleet.clients:
        old.close()
    fleet.clients = [client for client, _, _ in outcomes]
    attempts = [n for _, n, _ in outcomes]
    result = {
        "sessions": sessions,
        "to_listen": listening - start,
        "listen_to_all": back - listening,
        "crash_to_all": back - start,
        "startup_cpu": cpu_at_listen,
        "storm_cpu": cpu_storm,
        "attempts_mean": sum(attempts) / sessions,
        "attempts_max": max(attempts),
    }
    if broker.control_port is not None:
        control = await Control.open(broker.control_port)
        result.update(await control.stats())
        control.close()
    if db is not None:
        # Presence is written off the CONNACK path: how long until PostgreSQL shows the whole fleet online again.
        ids = fleet.credentials.ids[:sessions]
        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline:
            updated = await db.pool.fetchval(  # type: ignore[attr-defined]
                "SELECT count(*) FROM devices WHERE id = ANY ($1::text[]) AND online AND presence_changed_at >= $2",
                ids,
                crashed_at_db,
            )
            if updated == sessions:
                result["presence_all"] = time.perf_counter() - start
                break
            await asyncio.sleep(0.05)
    return result


async def throughput(
    broker: BrokerProcess, credentials: Credentials, qos: int, count: int, tag: str
) -> dict[str, float]:
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
    subscriber = await open_client(broker.port, sub_id, sub_secret, f"bench/{tag}", qos, on_message, tls=broker.tls)
    publisher = await open_client(broker.port, pub_id, pub_secret, tls=broker.tls)
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
            publisher.write(
                b"".join(
                    publish_packet(f"bench/{tag}".encode(), PAYLOAD_PAD, 1, (sent + i) % 65535 + 1)
                    for i in range(batch)
                )
            )
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
    storm_at: tuple[int, ...]


FULL = Plan(
    stages=(1_000, 5_000, 10_000),
    latency_at=(5_000, 10_000),
    rates=(200, 1_000),
    latency_seconds=5,
    throughput_messages=30_000,
    storm_at=(5_000, 10_000),
)
QUICK = Plan(
    stages=(500, 2_000),
    latency_at=(2_000,),
    rates=(200, 1_000),
    latency_seconds=2,
    throughput_messages=5_000,
    storm_at=(2_000,),
)


async def measure(
    broker: BrokerProcess, credentials: Credentials, plan: Plan, db: object | None = None
) -> dict[str, object]:
    results: dict[str, object] = {}
    cpu_before, cpu_of_killed = broker.cpu_seconds(), 0.0
    generator_cpu = time.process_time()
    if broker.control_port is None:  # with the device ACL no device may publish to another
        for qos in (0, 1):
            results[f"throughput_qos{qos}"] = await throughput(
                broker, credentials, qos, plan.throughput_messages, f"throughput{qos}"
            )
            print(f"  {broker.name}: 1->1 QoS {qos}: {results[f'throughput_qos{qos}']}", flush=True)
        await asyncio.sleep(1.5)  # let the broker drop the throughput sessions before RSS is sampled
    fleet = Fleet(broker, credentials)
    rss_start = broker.rss
    previous = 0
    for stage in plan.stages:
        rate = await fleet.grow(stage)
        await asyncio.sleep(0.5)
        rss = broker.rss
        results[f"connect_{previous}_{stage}"] = rate
        results[f"rss_{stage}"] = rss
        results[f"rss_per_session_{stage}"] = (rss - rss_start) / stage
        print(
            f"  {broker.name}: connect+subscribe {previous}->{stage}: {rate:,.0f}/s, RSS {rss / 2**20:.1f} MiB",
            flush=True,
        )
        previous = stage
        if broker.tls is not None and fleet.clients[0].transport is not None:
            tls = fleet.clients[0].transport.get_extra_info("ssl_object")
            results["tls"] = f"{tls.version()}, {tls.cipher()[0]}"
        if stage in plan.latency_at:
            send, close = await downlink_sender(fleet, len(credentials.ids) - 3)
            for per_second in plan.rates:
                outcome = await downlink_latency(fleet, send, per_second, plan.latency_seconds)
                results[f"latency_{stage}_{per_second}"] = outcome
                print(f"  {broker.name}: downlink {per_second}/s with {stage} sessions: {outcome}", flush=True)
            close()
        if stage in plan.storm_at:
            # The killed process's CPU time is counted before it goes; the new one's starts at zero.
            cpu_of_killed += broker.cpu_seconds() - cpu_before
            cpu_before = 0.0
            results[f"storm_{stage}"] = outcome = await reconnect_storm(fleet, db)
            print(f"  {broker.name}: reconnect storm with {stage} sessions: {outcome}", flush=True)
    results["cpu_seconds"] = cpu_of_killed + broker.cpu_seconds() - cpu_before
    results["generator_cpu_seconds"] = time.process_time() - generator_cpu
    for client in fleet.clients:
        client.close()
    return results


# ---- report ---------------------------------------------------------------------------------------------------


def _ratio(ours: float, theirs: float | None, higher_is_better: bool) -> str:
    if theirs is None or not ours or not theirs:
        return "n/a"
    return f"{(theirs / ours if higher_is_better else ours / theirs):,.1f}×"


# (row label, reconnect_storm() field, decimals): Mosquitto has no auth cache and no presence, so n/a there.
STORM_ROWS = (
    ("crash → listening again (s)", "to_listen", 2),
    ("listening → all CONNACKed + subscribed (s)", "listen_to_all", 2),
    ("crash → all back (s)", "crash_to_all", 2),
    ("broker CPU from listening to all back (s)", "storm_cpu", 2),
    ("connect attempts per device, mean", "attempts_mean", 2),
    ("argon2 verifications in the new broker", "hashed", 0),
    ("verifications served without hashing (cache, or a hash already running)", "cached", 0),
    ("crash → PostgreSQL shows all online (s)", "presence_all", 2),
)


def _pick(results: dict[str, object] | None, key: str, pick: Callable[[object], float]) -> float | None:
    """A figure, or None where a broker has none (Mosquitto keeps no auth cache and no presence)."""
    try:
        return pick(results[key]) if results is not None else None
    except KeyError:
        return None


def auth_notes(auth: str, facts: dict[str, object]) -> list[str]:
    if auth == "test":
        return [
            "PlatformBroker: broker.yaml with the shared-password test plugin as its only plugin (no database):"
            " the broker's own cost. Mosquitto: anonymous.",
            "",
        ]
    return [
        f"PlatformBroker: broker.yaml's plugins (device auth, ACL, presence, uplinks, outbox) on"
        f" {facts['database']}; {facts['provisioned']:,} devices provisioned with the platform's device-secret"
        f" hasher (argon2id t=1, m=1 MiB, p=1: {facts['verify_ms']:.2f} ms per verify here) in"
        f" {facts['hash_seconds']:.1f} s on {facts['hash_workers']} processes + {facts['insert_seconds']:.1f} s"
        " INSERT. Downlinks enter through a bench control socket calling `deliver_to_client` (devices may not"
        " publish downlinks), so there is no 1 → 1 test. Mosquitto: anonymous, no ACL, downlinks from a"
        " publishing client.",
        "",
    ]


def comparison_rows(
    plan: Plan, ours: dict[str, object], theirs: dict[str, object] | None, *, skip_missing: bool = False
) -> list[str]:
    """One table row per figure the plan measured: ours, theirs, and how many times theirs is better
    (``skip_missing``: no row for a figure neither side has)."""
    lines: list[str] = []

    def row(
        label: str,
        key: str,
        fmt: Callable[[float], str],
        higher_is_better: bool,
        pick: Callable[[object], float] = float,
    ) -> None:  # type: ignore[assignment]
        mine, other = _pick(ours, key, pick), _pick(theirs, key, pick)
        if skip_missing and mine is None and other is None:
            return
        lines.append(
            f"| {label} | {fmt(mine) if mine is not None else 'n/a'} | "
            f"{fmt(other) if other is not None else 'n/a'} | "
            f"{_ratio(mine or 0.0, other, higher_is_better)} |"
        )

    for qos in (0, 1):
        row(
            f"1 → 1 throughput, QoS {qos} (msg/s)",
            f"throughput_qos{qos}",
            lambda v: f"{v:,.0f}",
            True,
            lambda r: r["rate"],
        )  # type: ignore[index]
    previous = 0
    for stage in plan.stages:
        row(
            f"connect + subscribe {previous:,} → {stage:,} (sessions/s)",
            f"connect_{previous}_{stage}",
            lambda v: f"{v:,.0f}",
            True,
        )
        row(f"RSS with {stage:,} sessions (MiB)", f"rss_{stage}", lambda v: f"{v / 2**20:,.1f}", False)
        row(f"RSS per session at {stage:,} (KB)", f"rss_per_session_{stage}", lambda v: f"{v / 1000:,.1f}", False)
        previous = stage
    for stage in plan.latency_at:
        for rate in plan.rates:
            key = f"latency_{stage}_{rate}"
            for name in ("p50", "p95", "p99"):
                row(
                    f"downlink QoS 1, {stage:,} sessions, {rate:,} msg/s: {name} (ms)",
                    key,
                    lambda v: f"{v:,.2f}",
                    False,
                    lambda r, n=name: r[n],
                )  # type: ignore[index,misc]
            row(
                f"downlink QoS 1, {stage:,} sessions, {rate:,} msg/s: lost of sent",
                key,
                lambda v: f"{v:,.0f}",
                False,
                lambda r: r["lost"],
            )  # type: ignore[index]
    for stage in plan.storm_at:
        key = f"storm_{stage}"
        label = f"reconnect storm, {stage:,} devices"
        for what, field_name, digits in STORM_ROWS:
            row(f"{label}: {what}", key, lambda v, d=digits: f"{v:,.{d}f}", False, lambda r, f=field_name: r[f])  # type: ignore[index,misc]
    return lines


def render(
    plan: Plan,
    ours: dict[str, object],
    theirs: dict[str, object] | None,
    info: dict[str, str],
    load: tuple[tuple[float, ...], tuple[float, ...]],
    auth: str,
    seconds: float,
    facts: dict[str, object],
) -> str:
    lines = [
        BEGIN,
        "",
        "## Broker at fleet scale",
        "",
        f"`bench/broker_scale.py{' --quick' if plan is QUICK else ''} --auth {auth}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())},"
        f" {seconds:.0f} s. Ratio = how many times Mosquitto is better (1.0× = as good).",
        "",
        *load_rows(info, load),
        "",
        *auth_notes(auth, facts),
        "| test | PlatformBroker | Mosquitto (anonymous) | ratio |",
        "|---|---|---|---|",
        *comparison_rows(plan, ours, theirs),
    ]
    lines += [
        "",
        f"Broker CPU time over the whole run: PlatformBroker {ours['cpu_seconds']:.1f} s"
        + (f", Mosquitto {theirs['cpu_seconds']:.1f} s." if theirs else "."),
        "",
        END,
    ]
    return "\n".join(lines)


def render_tls(
    plan: Plan,
    plain: dict[str, object],
    over_tls: dict[str, object],
    info: dict[str, str],
    load: tuple[tuple[float, ...], tuple[float, ...]],
    auth: str,
    seconds: float,
    facts: dict[str, object],
) -> str:
    info = {name: value for name, value in info.items() if name != "Mosquitto"}
    lines = [
        TLS_BEGIN,
        "",
        "## Broker over TLS",
        "",
        f"`bench/broker_scale.py --tls{' --quick' if plan.stages == QUICK.stages else ''} --auth {auth}`,"
        f" {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {seconds:.0f} s. The project's broker twice,"
        " each in a fresh process: plain MQTT, then MQTT over TLS only (`MQTT_PLAIN_ENABLED=false`; a server"
        f" certificate for 127.0.0.1 from a CA the bench makes, ECDSA P-256; negotiated {over_tls.get('tls')}). The load"
        " generator (one Python process, uvloop) makes the client side of every handshake and decrypts every"
        " downlink. TLS costs = how many times plain MQTT is better (1.0× = as good).",
        "",
        *load_rows(info, load),
        "",
        (
            "broker.yaml with the shared-password test plugin as its only plugin (no database): the broker's own cost."
            if auth == "test"
            else f"broker.yaml's plugins (device auth, ACL, presence, uplinks, outbox) on {facts['database']},"
            f" {facts['provisioned']:,} provisioned devices; downlinks through the bench control socket calling"
            " `deliver_to_client`, so no 1 → 1 test."
        ),
        "",
        "| test | MQTT over TLS | plain MQTT | TLS costs |",
        "|---|---|---|---|",
        *comparison_rows(plan, over_tls, plain, skip_missing=True),
        "",
        f"CPU time over the run, broker / load generator: over TLS {over_tls['cpu_seconds']:.1f} s /"
        f" {over_tls['generator_cpu_seconds']:.1f} s, plain {plain['cpu_seconds']:.1f} s /"
        f" {plain['generator_cpu_seconds']:.1f} s.",
        "",
        TLS_END,
    ]
    return "\n".join(lines)


# ---- the dialect edge: a Q161 Pro's downlink against a native one ----------------------------------------------

DIALECT_BEGIN, DIALECT_END = "<!-- broker-dialect:begin -->", "<!-- broker-dialect:end -->"
DIALECT_RATE, DIALECT_TARGET = 1_000, 1.5  # msg/s; the Q161 Pro's downlink p99 within 1.5x of native's
DIALECT_ROUNDS = 2
DIALECT_SETTLE_S = 3.0  # before each round: the previous round's acks are written, not carried into this one


def payment_json(seq: int, device_id: str) -> bytes:
    """A native payment downlink as the outbox hands it over (signed), its sequence number as the amount."""
    return json.dumps(
        {
            "message_id": f"msg_bench{seq:012d}",
            "type": "payment",
            "transaction_id": f"txn_bench{seq:012d}",
            "amount": seq + 1,
            "currency": "IDR",
            "paid_at": "2026-12-07T08:15:30.123456Z",
            "announcement": {"format": "clips", "language": "id", "clips": ["received", "25", "thousand", "rupiah"]},
            "device_id": device_id,
            "counter": seq + 1,
            "kid": "56475aa75463474c",
            "sig": "hvz5hxv+eLTOp5+VXGuRQbtHNFAl/+RBnvBrdnQW0haVGY58UIZfVE53B67Fk/ov9qHklpk5v++8DPDYxP35Dw==",
        }
    ).encode()


@dataclass
class DialectFleet(Fleet):
    """Native devices first, then Q161 Pros (``q161_from`` on): each listens where its dialect says and
    decodes the JSON it gets. A native device acknowledges a payment on ``uplink/payment/ack`` as the
    contract asks; a Q161 Pro's PUBACK stands for that ack (the broker turns it into the same uplink), so
    both sides cost the platform one ack each."""

    q161_from: int = 0
    sent_at: dict[int, float] = field(default_factory=dict)
    packet_ids: int = 0

    def client_of(self, device_id: str) -> Client:
        return self.clients[self.index_of[device_id]]

    @property
    def index_of(self) -> dict[str, int]:
        if not hasattr(self, "_index_of"):
            self._index_of = {device: i for i, device in enumerate(self.credentials.ids)}
        return self._index_of

    def topic(self, index: int) -> str:
        device = self.credentials.ids[index]
        return f"topic_{device}" if index >= self.q161_from else f"devices/{device}/downlink/#"

    def on_downlink(self, payload: bytes) -> None:
        body = json.loads(payload)
        # Native amounts are rupiah; the Q161 Pro's are sen (x100), PAYMENT_NOTIFICATION's form.
        if body.get("type") == "PAYMENT_NOTIFICATION":
            seq = body["amount"] // 100 - 1
        else:
            seq = body["amount"] - 1
            self.packet_ids = self.packet_ids % 65535 + 1
            ack = json.dumps({"message_id": body["message_id"]}).encode()
            topic = f"devices/{body['device_id']}/uplink/payment/ack".encode()
            self.client_of(body["device_id"]).write(publish_packet(topic, ack, 1, self.packet_ids))
        self.latencies.append(time.perf_counter() - self.sent_at.pop(seq))
        self.received += 1


def per_message_us(work: Callable[[], object], count: int = 20_000) -> float:
    started = time.perf_counter()
    for _ in range(count):
        work()
    return (time.perf_counter() - started) / count * 1e6


def edge_costs() -> dict[str, float]:
    """In this process: what the broker's edge adds to one payment downlink, in microseconds."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from qris_soundbox.broker.dialects import Dialects
    from qris_soundbox.core.announcement_signing import AnnouncementSigner
    from qris_soundbox.core.devices.schemas import AnnouncementKeys

    q161 = Dialects.load().get("q161-pro")
    assert q161 is not None
    payload = payment_json(24_999, "dev_bench")
    body = json.loads(payload)
    signer = AnnouncementSigner(Ed25519PrivateKey.generate(), "bench", AnnouncementKeys(current_kid="bench", keys=[]))
    unsigned = {k: v for k, v in body.items() if k not in ("device_id", "counter", "kid", "sig")}
    return {
        "translate_us": per_message_us(
            lambda: q161.outbound("dev_bench", "devices/dev_bench/downlink/payment", payload)
        ),
        "sign_us": per_message_us(lambda: signer.sign_downlink("payment", "dev_bench", unsigned, 7), 5_000),
        "encode_us": per_message_us(lambda: json.dumps(body).encode()),
    }


async def run_dialect(args: argparse.Namespace) -> int:
    """``--dialect``: downlink latency at DIALECT_RATE to native devices, then to Q161 Pros, on one broker."""
    per_side = 300 if args.quick else 1_000
    seconds = 5.0 if args.quick else 15.0
    info, load_before, started = broker_machine(), os.getloadavg(), time.perf_counter()
    facts: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="broker-dialect-") as tmp:
        workdir = Path(tmp)
        async with contextlib.AsyncExitStack() as stack:
            print(f"provisioning {per_side:,} native devices and {per_side:,} Q161 Pros ...", flush=True)
            _db, credentials = await stack.enter_async_context(
                provisioned_fleet(
                    workdir, 2 * per_side, facts, lambda i: "q161-pro" if i >= per_side else "generic-audio"
                )
            )
            broker = await start_platform_broker(args, workdir, facts.get("dsn"))  # type: ignore[arg-type]
            stack.callback(broker.stop)
            fleet = DialectFleet(broker, credentials, q161_from=per_side)
            await fleet.grow(2 * per_side)
            control = await Control.open(broker.control_port)  # type: ignore[arg-type]
            stack.callback(control.close)
            ids = [device.encode() for device in credentials.ids]
            # Alternating rounds, pooled per side: the machine's load drifts (other processes), and a side
            # measured only after the other would carry that drift as if it were its own cost.
            pooled: dict[str, list[float]] = {"native": [], "q161-pro": []}
            totals: dict[str, dict[str, float]] = {side: {"sent": 0, "lost": 0} for side in pooled}
            sides = (("native", 0), ("q161-pro", per_side))
            for round_ in range(DIALECT_ROUNDS):
                # ABBA: neither side always follows the other (whose acks the platform may still be writing).
                for side, offset in sides if round_ % 2 == 0 else sides[::-1]:

                    def send(device: int, seq: int, offset: int = offset) -> None:
                        fleet.sent_at[seq] = time.perf_counter()
                        control.downlink(ids[offset + device], payment_json(seq, credentials.ids[offset + device]))

                    if round_ == 0:
                        await downlink_latency(fleet, send, DIALECT_RATE, 2.0, per_side)  # warm-up, not counted
                        fleet.sent_at.clear()
                    print(
                        f"round {round_ + 1}: {side} downlinks at {DIALECT_RATE:,} msg/s for {seconds:.0f} s",
                        flush=True,
                    )
                    await asyncio.sleep(DIALECT_SETTLE_S)
                    result = await downlink_latency(fleet, send, DIALECT_RATE, seconds, per_side)
                    pooled[side] += fleet.latencies
                    totals[side]["sent"] += result["sent"]
                    totals[side]["lost"] += result["lost"]
                    fleet.sent_at.clear()
            results = {side: {**totals[side], **latency_percentiles(pooled[side])} for side in pooled}
            for client in fleet.clients:
                client.close()
    costs = edge_costs()
    text = render_dialect(
        args, per_side, seconds, results, costs, info, (load_before, os.getloadavg()), time.perf_counter() - started
    )
    print(text)
    if not args.no_write:
        write_section(text, DIALECT_BEGIN, DIALECT_END)
        print(f"written to {DOC}")
    native, q161 = results["native"]["p99"], results["q161-pro"]["p99"]
    return 0 if q161 <= DIALECT_TARGET * native else 1


def render_dialect(
    args: argparse.Namespace,
    per_side: int,
    seconds: float,
    results: dict[str, dict[str, float]],
    costs: dict[str, float],
    info: dict[str, str],
    load: tuple[tuple[float, ...], tuple[float, ...]],
    took: float,
) -> str:
    native, q161 = results["native"], results["q161-pro"]
    ratio = q161["p99"] / native["p99"] if native["p99"] else float("nan")
    verdict = "within" if ratio <= DIALECT_TARGET else "**outside**"
    rows = [
        f"| {name} | {r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | {r['max']:.1f} | {r['sent']:,} / {r['lost']:,} |"
        for name, r in (("native (`devices/<id>/downlink/payment`)", native), ("Q161 Pro (`topic_<id>`)", q161))
    ]
    return "\n".join(
        [
            DIALECT_BEGIN,
            "",
            "## The dialect edge: a Q161 Pro's downlink against a native one",
            "",
            f"`bench/broker_scale.py --dialect{' --quick' if args.quick else ''}`,"
            f" {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {took:.0f} s. One PlatformBroker (broker.yaml's"
            f" plugins on {facts_database(args)}) with {per_side:,} native devices and {per_side:,} Q161 Pros connected;"
            f" {DIALECT_RATE:,} signed payment downlinks/s through `deliver_to_client` (the outbox publisher's call),"
            f" {DIALECT_ROUNDS} rounds of {seconds:.0f} s to the native devices and {DIALECT_ROUNDS} to the Q161 Pros,"
            " in ABBA order after a pause each (latencies pooled per side, so the machine's drifting load falls on both). The broker renders"
            " the Q161 Pros' copies as `PAYMENT_NOTIFICATION` JSON on `topic_<id>`. Each native device acks on"
            " `uplink/payment/ack` as the contract asks; a Q161 Pro acks nothing, so the broker turns its PUBACK into"
            " that same ack uplink (docs/dialects.md): one ack handled per payment on both sides. Latency at the"
            " device, ms.",
            "",
            *load_rows(info, load),
            "",
            "| downlinks to | p50 | p95 | p99 | max | sent / lost |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            f"Q161 Pro p99 / native p99 = {ratio:.2f}x: {verdict} the target of {DIALECT_TARGET}x.",
            "",
            "What the edge adds to one message, measured in the load generator's process (one core, no broker):",
            f"rendering a payment in the Q161 Pro's dialect {costs['translate_us']:.1f} µs"
            f" (decode the native JSON, fill the template, encode), signing it (Ed25519 over the canonical bytes,"
            f" done for every dialect by the outbox publisher) {costs['sign_us']:.1f} µs; for scale, encoding the"
            f" native payload as JSON {costs['encode_us']:.1f} µs.",
            "",
            DIALECT_END,
        ]
    )


def facts_database(args: argparse.Namespace) -> str:
    return "DATABASE_URL" if os.environ.get("DATABASE_URL") else "embedded PostgreSQL"


# ---- entry points ---------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> int:
    plan = QUICK if args.quick else FULL
    if args.tls:
        plan = replace(plan, storm_at=())
    needed = plan.stages[-1] + 3  # the fleet, plus the 1 -> 1 pair and the downlink publisher
    mosquitto = None if args.tls else find_mosquitto()
    if mosquitto is None and not args.tls:
        print(
            "mosquitto is not installed: `apt-get install -y mosquitto` to compare against it;"
            " measuring the project's broker alone.",
            file=sys.stderr,
        )
    info = broker_machine()
    load_before = os.getloadavg()
    started = time.perf_counter()
    facts: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="broker-bench-") as tmp:
        workdir = Path(tmp)
        async with contextlib.AsyncExitStack() as stack:
            db = None
            if args.auth == "devices":
                print(f"provisioning {needed:,} devices ...", flush=True)
                db, credentials = await stack.enter_async_context(provisioned_fleet(workdir, needed, facts))
                facts["verify_ms"] = 1000 * verify_cost()
                print(f"  {facts}", flush=True)
            else:
                ids = [f"bench-{i}" for i in range(needed)]
                credentials = Credentials(ids, [TEST_PASSWORD] * needed)
            ours_process = await start_platform_broker(args, workdir, facts.get("dsn"))  # type: ignore[arg-type]
            try:
                print(f"measuring {ours_process.name} on port {ours_process.port}", flush=True)
                ours = await measure(ours_process, credentials, plan, db)
            finally:
                ours_process.stop()
            over_tls = None
            if args.tls:
                tls_process = await start_platform_broker(args, workdir, facts.get("dsn"), tls_files(workdir))  # type: ignore[arg-type]
                try:
                    print(f"measuring {tls_process.name} on port {tls_process.port}", flush=True)
                    over_tls = await measure(tls_process, credentials, plan, db)
                finally:
                    tls_process.stop()
        theirs = None
        if mosquitto is not None:
            theirs_process = await start_mosquitto(mosquitto, workdir)
            try:
                print(f"measuring Mosquitto on port {theirs_process.port}", flush=True)
                theirs = await measure(theirs_process, credentials, plan)
            finally:
                theirs_process.stop()
        if args.profile:
            print(f"profile of the project's broker: {workdir / 'platform-broker.pstats'} (copied to {args.profile})")
            shutil.copy(workdir / "platform-broker.pstats", args.profile)
    load = (load_before, os.getloadavg())
    seconds = time.perf_counter() - started
    if over_tls is not None:
        text, markers = render_tls(plan, ours, over_tls, info, load, args.auth, seconds, facts), (TLS_BEGIN, TLS_END)
    else:
        text, markers = render(plan, ours, theirs, info, load, args.auth, seconds, facts), (BEGIN, END)
    print(text)
    if not args.no_write:
        write_section(text, *markers)
        print(f"written to {DOC}")
    return 0


class BenchControl(asyncio.Protocol):
    """Bench-only socket into the broker process (``--auth devices``).

    ``D`` + lengths + device id + payload: ``deliver_to_client`` to
    ``devices/<id>/downlink/payment`` at QoS 1, in its own task as the outbox
    publisher does. ``S``: one JSON line with the device-auth counters.
    """

    def __init__(self, platform: object) -> None:
        self.broker = platform.broker  # type: ignore[attr-defined]
        self.verifier = platform.device_verifier  # type: ignore[attr-defined]
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.deliveries: set[asyncio.Task[bool]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while buffer:
            if buffer[0] == ord("S"):
                del buffer[:1]
                assert self.transport is not None
                self.transport.write(
                    json.dumps({"hashed": self.verifier.hashed, "cached": self.verifier.cached}).encode() + b"\n"
                )
                continue
            if len(buffer) < 5:
                return
            id_length, payload_length = struct.unpack_from(">HH", buffer, 1)
            end = 5 + id_length + payload_length
            if len(buffer) < end:
                return
            device = buffer[5 : 5 + id_length].decode()
            payload = bytes(buffer[5 + id_length : end])
            del buffer[:end]
            task = asyncio.get_running_loop().create_task(
                self.broker.deliver_to_client(device, f"devices/{device}/downlink/payment", payload)
            )
            self.deliveries.add(task)
            task.add_done_callback(self.deliveries.discard)


def serve_broker(args: argparse.Namespace) -> None:
    """Run the project's broker alone in this process (the bench starts it as a child), under uvloop."""
    import uvloop

    raise_fd_limit()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if args.auth == "devices":
            # The real thing: serve --only broker with broker.yaml's plugins on DATABASE_URL.
            from qris_soundbox.core.config import load_settings
            from qris_soundbox.tools.serve import ServeOptions, serve

            ready: asyncio.Future[object] = loop.create_future()
            options = ServeOptions(
                roles=frozenset({"broker"}),
                mqtt_host=HOST,
                mqtt_port=args.port,
                on_ready=lambda platform, _urls, _demo: ready.set_result(platform),
            )
            serving = asyncio.create_task(serve(load_settings(), options, stop))
            await asyncio.wait([serving, ready], return_when=asyncio.FIRST_COMPLETED)
            if ready.done():
                platform = ready.result()
                await loop.create_server(lambda: BenchControl(platform), HOST, args.control_port)
            await serving
            return
        from qris_soundbox.broker.config import load_broker_config, resolve_listeners
        from qris_soundbox.broker.server import PlatformBroker
        from qris_soundbox.core.config import load_settings
        from qris_soundbox.core.context import PlatformContext
        from qris_soundbox.tools.serve import ServeOptions, listener_choices

        settings = load_settings()  # MQTT_TLS_* and MQTT_PLAIN_ENABLED when measuring TLS
        choices = listener_choices(settings, ServeOptions(mqtt_host=HOST, mqtt_port=args.port))
        config, _ = resolve_listeners(load_broker_config(Path(args.config)), choices)
        # The test plugin needs no database.
        broker = PlatformBroker(config, PlatformContext(settings, db=None))  # type: ignore[arg-type]
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
        parser.add_argument("--auth", choices=["test", "devices"], default="devices")
        parser.add_argument("--control-port", type=int)
        parser.add_argument("--config")
        parser.add_argument("--profile")
        serve_broker(parser.parse_args())
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500/2,000 sessions, shorter runs")
    parser.add_argument(
        "--auth",
        choices=["devices", "test"],
        default="devices",
        help="devices: broker.yaml's plugins on PostgreSQL (embedded unless DATABASE_URL is set) with"
        " provisioned devices; test: the shared-password test plugin, the broker's own cost",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="the project's broker over plain MQTT and over TLS side by side (no Mosquitto, no reconnect storm)",
    )
    parser.add_argument(
        "--dialect",
        action="store_true",
        help="the dialect edge: a Q161 Pro's downlink latency against a native one at 1,000 msg/s (its own section)",
    )
    parser.add_argument("--profile", help="write a cProfile of the project's broker process to this file")
    parser.add_argument("--no-write", action="store_true", help="print the table, leave docs/performance.md alone")
    args = parser.parse_args()
    raise_fd_limit()
    import uvloop

    if args.dialect:
        if args.auth != "devices":
            parser.error("--dialect needs --auth devices: a device's dialect comes from its model in the database")
        return uvloop.run(run_dialect(args))
    return uvloop.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
