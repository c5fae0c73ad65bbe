"""``qris-soundbox simulate``: soundboxes on real MQTT sessions, heard as a merchant hears them.

Each simulated device connects with its own credential (username = client id =
device id), subscribes to ``devices/<id>/downlink/#`` and behaves as the
MQTT contract asks a device to (SPEC §5, §9):

- a payment announcement is spoken once (its ``announcement.text``, or the
  clip names joined) and acknowledged on ``uplink/payment/ack``;
- config is acknowledged ``applied`` and commands ``succeeded``;
- every downlink is de-duplicated by ``message_id``: delivery is at least
  once, so a resent message is acknowledged again but never played twice;
- a signed kind (a payment announcement) is verified first
  (docs/announcement-signing.md): unsigned, signed for another device, by an
  unknown key, forged, or with a counter not above the last one played
  (a replay) — it is refused, never played nor acknowledged, with a
  ``REFUSED`` line, and counted in the summary (``refused_announcements``). The
  platform's public keys come from the profile, provisioning, or
  ``GET /device/keys`` on ``--base-url``;
- a heartbeat goes out on connect and every ``--heartbeat-s``;
- ``--dynamic-qr AMOUNT`` asks for a dynamic QR over MQTT and prints it.

``--dialect q161-pro`` plays a Q161 Pro instead (docs/dialects.md): it listens
on ``topic_<id>``, asks for a dynamic QR as ``"<id>|<amount in sen>"`` on the
shared ``qris/request``, shows ``QR:...`` and plays the ``audio_sequence`` of a
``PAYMENT_NOTIFICATION``; it sends no heartbeat or ack (the real one has none)
and cannot de-duplicate (its messages carry no id).

``--fleet N`` runs N such sessions (connects bounded by
``--connect-concurrency``) as a load generator and prints a summary: sessions,
messages, acks, duplicates and the payment latency (receive − ``paid_at``).
Credentials come from ``--device-id/--secret``, a ``--devices-file`` CSV
(``device_id,secret``), ``--profile`` (what ``device provision --json``
printed: broker address, TLS and CA included), or ``--provision N`` through
the admin API. The TLS options are ``tools/mqtt_tls.py``'s.

The MQTT client is aiomqtt rather than amqtt's own: amqtt's client reports a
lost connection as a ``CancelledError`` out of ``deliver_message``, which a
long-running simulator cannot tell apart from Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import json
import os
import signal
import ssl
import sys
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from qris_soundbox.core.announcement_signing import SIGNED_KINDS, announcement_bytes
from qris_soundbox.core.qris import QrisError, parse_qris
from qris_soundbox.tools.api import (
    BASE_URL_HELP,
    AdminApi,
    ApiError,
    DeviceCredential,
    admin_token,
    default_base_url,
    device_announcement_keys,
    run_stamp,
)
from qris_soundbox.tools.common import prompt_secret
from qris_soundbox.tools.mqtt_tls import MqttTarget, TlsOptions, add_tls_arguments, mqtt_target
from qris_soundbox.tools.stats import latency_summary

# A soundbox has little memory: it remembers the last few hundred message ids, which
# covers every resend the outbox makes (they stop once the ack lands or the message expires).
SEEN_IDS_KEPT = 512
RECONNECT_MAX_S = 30.0


def register(subparsers: argparse._SubParsersAction) -> None:
    sim = subparsers.add_parser(
        "simulate",
        help="soundbox simulator: real MQTT sessions that announce and ack payments (also a fleet load generator)",
        description="Connect simulated soundboxes; Ctrl-C (or --duration) stops and prints a summary.",
    )
    source = sim.add_argument_group("credentials (one of)")
    source.add_argument("--device-id", help="one device; its secret from --secret, $DEVICE_SECRET or a prompt")
    source.add_argument("--secret", help="the device secret (default: $DEVICE_SECRET, else prompted)")
    source.add_argument("--devices-file", type=Path, help="CSV of device_id,secret (a header line is allowed)")
    source.add_argument(
        "--profile", type=Path, help="one device's connection profile, as `device provision --json` printed it"
    )
    source.add_argument(
        "--provision",
        type=int,
        metavar="N",
        help="register, credential and (with --bind-terminal) bind N new devices through the admin API",
    )
    prov = sim.add_argument_group("provisioning (with --provision)")
    prov.add_argument("--base-url", default=default_base_url(), help=BASE_URL_HELP)
    prov.add_argument("--admin-token", default=None, help="default: $ADMIN_TOKEN, else prompted")
    prov.add_argument("--model", default="generic-audio", help="device model (default generic-audio)")
    prov.add_argument(
        "--bind-terminal",
        action="append",
        default=[],
        metavar="T",
        help="bind the i-th provisioned device to the i-th terminal given (repeatable; a terminal holds one soundbox)",
    )
    prov.add_argument(
        "--save-devices",
        type=Path,
        metavar="FILE",
        help="write the provisioned device_id,secret pairs here (mode 600) for a later --devices-file",
    )
    sim.add_argument("--mqtt-host", default=None, help="default: the broker named by provisioning, else 127.0.0.1")
    sim.add_argument(
        "--mqtt-port", type=int, default=None, help="default: the broker named by provisioning, else 1883 (TLS: 8883)"
    )
    add_tls_arguments(sim)
    sim.add_argument("--fleet", type=int, metavar="N", help="run N sessions as a load generator (summary only)")
    sim.add_argument("--connect-concurrency", type=int, default=32, help="connects in flight at once (default 32)")
    sim.add_argument("--heartbeat-s", type=float, default=60.0, help="heartbeat interval, 0 = none (default 60)")
    sim.add_argument(
        "--dynamic-qr", type=int, metavar="AMOUNT", help="request a dynamic QR for AMOUNT rupiah on connect"
    )
    sim.add_argument(
        "--dialect",
        choices=("native", "q161-pro"),
        default="native",
        help="the wire protocol the device speaks (default native; q161-pro: docs/dialects.md)",
    )
    sim.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: until Ctrl-C)")
    sim.add_argument("--verbose", action="store_true", help="in fleet mode, print every message too")
    sim.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    sim.set_defaults(handler=_simulate)


@dataclass
class FleetStats:
    sessions: int = 0
    connected: int = 0
    refused: int = 0
    reconnects: int = 0
    messages: int = 0
    announced: int = 0
    duplicates: int = 0
    acks: int = 0
    heartbeats: int = 0
    dynamic_qr: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    # Announcements not played because they failed verification, by reason (AnnouncementVerifier).
    refused_announcements: dict[str, int] = field(default_factory=dict)

    def summary(self, seconds: float) -> dict[str, Any]:
        return {
            "seconds": round(seconds, 1),
            "sessions": self.sessions,
            "connected": self.connected,
            "refused": self.refused,
            "reconnects": self.reconnects,
            "messages": self.messages,
            "announced": self.announced,
            "duplicates": self.duplicates,
            "acks": self.acks,
            "heartbeats": self.heartbeats,
            "dynamic_qr": self.dynamic_qr,
            "refused_announcements": dict(self.refused_announcements),
            "payment_latency": latency_summary(self.latencies_ms),
        }


def spoken(announcement: dict[str, Any], amount: Any) -> str:
    """What the merchant hears: the text, else the clips in order, else the bare amount (amount_only)."""
    if announcement.get("text"):
        return announcement["text"]
    if announcement.get("clips"):
        return " ".join(announcement["clips"])
    return f"Rp {amount:,}".replace(",", ".") if isinstance(amount, int) else str(amount)


def _age_ms(paid_at: Any, received: datetime) -> float | None:
    try:
        return (received - datetime.fromisoformat(paid_at)).total_seconds() * 1000
    except (TypeError, ValueError):
        return None


class AnnouncementVerifier:
    """What a device's firmware does before it plays a signed downlink (docs/announcement-signing.md).

    ``keys`` is the platform's key set as ``GET /device/keys`` answers it. The counter is this device's
    last played one: a lower or equal counter is a replay (a resend of a played message is a duplicate,
    caught by its ``message_id`` before)."""

    def __init__(self, device_id: str, keys: dict[str, Any] | None) -> None:
        self.device_id = device_id
        self.last_counter = 0
        self._keys: dict[str, Ed25519PublicKey] = {}
        for key in (keys or {}).get("keys", []):
            self._keys[key["kid"]] = Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"]))

    def refusal(self, kind: str, body: dict[str, Any]) -> tuple[str, str] | None:
        """Why ``body`` must not be played, as (reason, what to say); None: it is genuine and this device's."""
        sig, kid, counter = body.get("sig"), body.get("kid"), body.get("counter")
        if not isinstance(sig, str) or not isinstance(kid, str) or type(counter) is not int:
            return "unsigned", "no sig, kid and counter"
        if body.get("device_id") != self.device_id:
            return "wrong_device", f"signed for another device ({body.get('device_id')})"
        key = self._keys.get(kid)
        if key is None:
            return "unknown_key", f"signed by an unknown key {kid}"
        try:
            # Built from this device's own id and the kind it is about to act on, not the message's word.
            message = announcement_bytes(kind, self.device_id, body, counter)
            key.verify(base64.b64decode(sig, validate=True), message)
        except (KeyError, ValueError, TypeError, InvalidSignature):
            return "forged", "the signature does not verify"
        return None

    def fresh_counter(self, counter: int) -> bool:
        """A verified message's counter is above the last played one (then it becomes the last)."""
        if counter <= self.last_counter:
            return False
        self.last_counter = counter
        return True


class Soundbox:
    """One device's MQTT session: heartbeats, announcements, acks, de-duplication, reconnects."""

    def __init__(
        self,
        credential: DeviceCredential,
        host: str,
        port: int,
        stats: FleetStats,
        say: Callable[[str], None] | None,
        *,
        heartbeat_s: float,
        dynamic_qr: int | None,
        connect_slots: asyncio.Semaphore,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.credential = credential
        self.id = credential.device_id
        self.target = MqttTarget(host, port, tls)
        self.stats = stats
        self._say = say
        self.heartbeat_s = heartbeat_s
        self.dynamic_qr = dynamic_qr
        self._connect_slots = connect_slots
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._started = time.monotonic()
        self.verifier = AnnouncementVerifier(self.id, credential.announcement_keys)

    @property
    def downlink_filter(self) -> str:
        return f"devices/{self.id}/downlink/#"

    def say(self, line: str) -> None:
        if self._say is not None:
            self._say(f"[{self.id}] {line}")

    async def run(self) -> None:
        """Until cancelled: connect, serve, and reconnect with back-off if the broker drops us.
        A refused CONNECT (wrong secret, disabled device) ends the session: retrying cannot help."""
        delay = 1.0
        first = True
        while True:
            try:
                async with AsyncExitStack() as stack:
                    async with self._connect_slots:
                        client = await stack.enter_async_context(
                            self.target.client(self.id, self.credential.secret, keepalive=60, timeout=10)
                        )
                        await client.subscribe(self.downlink_filter, qos=1)
                    if first:
                        self.stats.connected += 1
                        self.say(f"connected to {self.target.url}, listening on {self.downlink_filter}")
                    else:
                        self.stats.reconnects += 1
                        self.say("reconnected")
                    delay = 1.0
                    # From here a lost connection is a reconnect, not a failed first connect.
                    was_first, first = first, False
                    await self._serve(client, was_first)
            except MqttConnectError as exc:
                if first:
                    self.stats.refused += 1
                self.say(f"CONNECT refused: {exc}")
                return
            except aiomqtt.MqttError as exc:
                if first:
                    self.stats.refused += 1
                    self.say(f"cannot connect: {exc}")
                    return
                self.say(f"connection lost ({exc}); reconnecting in {delay:.0f} s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)

    async def _serve(self, client: aiomqtt.Client, first: bool) -> None:
        heartbeats = asyncio.create_task(self._heartbeats(client)) if self.heartbeat_s > 0 else None
        try:
            if first and self.dynamic_qr:
                await self._publish(
                    client,
                    "dynamic-qr/request",
                    {"request_id": f"sim-{uuid.uuid4().hex[:16]}", "amount": self.dynamic_qr},
                )
            async for message in client.messages:
                await self._handle(client, message.topic.value, message.payload, datetime.now(UTC))
        finally:
            if heartbeats is not None:
                heartbeats.cancel()

    async def _publish(self, client: aiomqtt.Client, suffix: str, body: dict[str, Any]) -> None:
        await client.publish(f"devices/{self.id}/uplink/{suffix}", json.dumps(body).encode(), qos=1)

    async def _heartbeats(self, client: aiomqtt.Client) -> None:
        while True:
            await self._publish(
                client,
                "heartbeat",
                {
                    "message_id": f"hb-{uuid.uuid4().hex[:16]}",
                    "timestamp": datetime.now(UTC).isoformat(),
                    "battery_level": 87,
                    "charging": False,
                    "network_strength": 72,
                    "network_type": "4g",
                    "firmware_version": "simulator-1",
                    "volume": 80,
                    "uptime_s": int(time.monotonic() - self._started),
                },
            )
            self.stats.heartbeats += 1
            await asyncio.sleep(self.heartbeat_s)

    def _first_time(self, message_id: str) -> bool:
        if message_id in self._seen:
            return False
        self._seen[message_id] = None
        if len(self._seen) > SEEN_IDS_KEPT:
            self._seen.popitem(last=False)
        return True

    async def _handle(self, client: aiomqtt.Client, topic: str, payload: Any, received: datetime) -> None:
        self.stats.messages += 1
        kind = topic.split("/downlink/", 1)[-1]
        try:
            body = json.loads(payload)
            message_id = body["message_id"]
        except (ValueError, TypeError, KeyError):
            self.say(f"unreadable downlink on {topic}: {bytes(payload)[:120]!r}")
            return
        if kind in SIGNED_KINDS and (refusal := self.verifier.refusal(kind, body)) is not None:
            self._refuse(kind, message_id, *refusal)
            return
        fresh = self._first_time(message_id)
        if not fresh:
            self.stats.duplicates += 1
            self.say(f"duplicate {kind} {message_id}: acknowledged again, not repeated")
        elif kind in SIGNED_KINDS and not self.verifier.fresh_counter(body["counter"]):
            self._seen.pop(message_id)  # not played: should the genuine one come, it is not a duplicate
            self._refuse(
                kind,
                message_id,
                "replayed",
                f"counter {body['counter']} is not above the last played, {self.verifier.last_counter}",
            )
            return
        if kind == "payment":
            if fresh:
                self._announce(body, received)
            await self._ack(client, "payment/ack", {"message_id": message_id})
        elif kind == "config":
            if fresh:
                self.say(f"config v{body.get('version')} applied: {json.dumps(body.get('config'))}")
            await self._ack(
                client, "config/ack", {"message_id": message_id, "version": body.get("version"), "status": "applied"}
            )
        elif kind == "command":
            if fresh:
                self.say(f"command {body.get('type')} ({body.get('command_id')}) done")
            await self._ack(
                client,
                "command/ack",
                {"message_id": message_id, "command_id": body.get("command_id"), "status": "succeeded"},
            )
        elif kind == "dynamic-qr/response":
            if fresh:
                self._show_qr(body)
        elif fresh:
            self.say(f"{kind}: {json.dumps(body)}")

    def _refuse(self, kind: str, message_id: str, reason: str, detail: str) -> None:
        self.stats.refused_announcements[reason] = self.stats.refused_announcements.get(reason, 0) + 1
        self.say(f"REFUSED {kind} {message_id}: {reason} ({detail}); not played, not acknowledged")

    async def _ack(self, client: aiomqtt.Client, suffix: str, body: dict[str, Any]) -> None:
        await self._publish(client, suffix, body)
        self.stats.acks += 1

    def _announce(self, body: dict[str, Any], received: datetime) -> None:
        self.stats.announced += 1
        latency = _age_ms(body.get("paid_at"), received)
        if latency is not None:
            self.stats.latencies_ms.append(latency)
        text = spoken(body.get("announcement") or {}, body.get("amount"))
        after = f", {latency:.0f} ms after paid_at" if latency is not None else ""
        self.say(f'"{text}"  (Rp {body.get("amount")}, {body.get("transaction_id")}{after})')

    def _show_qr(self, body: dict[str, Any]) -> None:
        if "error" in body:
            error = body["error"] or {}
            self.say(f"dynamic QR refused: {error.get('code')}: {error.get('message')}")
            return
        self.stats.dynamic_qr += 1
        try:
            parsed = parse_qris(body["qr_payload"])
            what = f"Rp {parsed.amount} to {parsed.merchant_name}, {parsed.merchant_city}"
        except (QrisError, KeyError, TypeError) as exc:
            what = f"NOT a valid QRIS: {exc}"
        self.say(
            f"dynamic QR {body.get('transaction_id')} ({what}; expires {body.get('expires_at')}):\n"
            f"    {body.get('qr_payload')}"
        )


class Q161ProSoundbox(Soundbox):
    """A Q161 Pro on its vendor's protocol (SPEC §17), spoken here byte for byte as its firmware does."""

    @property
    def downlink_filter(self) -> str:
        return f"topic_{self.id}"

    async def _serve(self, client: aiomqtt.Client, first: bool) -> None:
        if first and self.dynamic_qr:
            await client.publish("qris/request", f"{self.id}|{self.dynamic_qr * 100}".encode(), qos=1)
        async for message in client.messages:
            await self._handle(client, message.topic.value, message.payload, datetime.now(UTC))

    async def _handle(self, client: aiomqtt.Client, topic: str, payload: Any, received: datetime) -> None:
        self.stats.messages += 1
        raw = bytes(payload)
        if raw.startswith(b"QR:"):
            self._show_qr({"qr_payload": raw[3:].decode(errors="replace")})
            return
        try:
            body = json.loads(raw)
            if body["type"] != "PAYMENT_NOTIFICATION":
                raise KeyError("type")
            clips, amount_sen = list(body["audio_sequence"]), int(body["amount"])
        except (ValueError, TypeError, KeyError):
            self.say(f"unreadable message on {topic}: {raw[:120]!r}")
            return
        self.stats.announced += 1
        self.say(f"plays {' '.join(clips)}  (Rp {amount_sen // 100}, {body.get('status')})")


def read_devices_file(path: Path) -> list[DeviceCredential]:
    rows = []
    with path.open(newline="") as handle:
        for row in csv.reader(handle):
            if len(row) < 2 or not row[0].strip() or row[0].strip() == "device_id":
                continue
            rows.append(DeviceCredential(device_id=row[0].strip(), secret=row[1].strip()))
    return rows


def save_devices_file(path: Path, credentials: list[DeviceCredential]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created owner-only before the secrets are written into it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["device_id", "secret"])
        writer.writerows([c.device_id, c.secret] for c in credentials)


async def provision(args: argparse.Namespace, token: str) -> list[DeviceCredential]:
    stamp = run_stamp()
    issued = []
    async with AdminApi(args.base_url, token) as api:
        for i in range(args.provision):
            terminal = args.bind_terminal[i] if i < len(args.bind_terminal) else None
            credential = await api.provision_device(f"SIM-{stamp}-{i + 1:04d}", args.model, terminal)
            issued.append(credential)
            bound = f", bound to {terminal}" if terminal else ""
            print(
                f"provisioned {credential.device_id} ({args.model}, fingerprint {credential.fingerprint}{bound})",
                flush=True,
            )
    return issued


def read_profile(path: Path) -> DeviceCredential:
    """The profile ``device provision --json`` printed: the credential, the broker and how to trust it."""
    try:
        profile = json.loads(path.read_text())
        return DeviceCredential(
            device_id=profile["username"],
            secret=profile["password"],
            fingerprint=profile.get("fingerprint", ""),
            broker_host=profile["host"],
            broker_port=int(profile["port"]),
            broker_scheme=profile.get("scheme", "mqtt"),
            broker_ca_pem=profile.get("ca_pem"),
            announcement_keys=profile.get("announcement_keys"),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        sys.exit(f"qris-soundbox: {path} is not a profile printed by `device provision --json`: {exc!r}")


def _credentials(args: argparse.Namespace) -> list[DeviceCredential]:
    sources = ("device_id", "devices_file", "profile", "provision")
    given = [name for name in sources if getattr(args, name) is not None]
    if len(given) != 1:
        sys.exit("qris-soundbox: give exactly one of --device-id, --devices-file, --profile, --provision N")
    if args.profile:
        return [read_profile(args.profile)]
    if args.device_id:
        secret = (
            args.secret
            or os.environ.get("DEVICE_SECRET")
            or prompt_secret(f"the secret of {args.device_id}", "give --secret or set DEVICE_SECRET")
        )
        return [DeviceCredential(device_id=args.device_id, secret=secret.strip())]
    if args.devices_file:
        try:
            credentials = read_devices_file(args.devices_file)
        except OSError as exc:
            sys.exit(f"qris-soundbox: {exc}")
        if not credentials:
            sys.exit(f"qris-soundbox: {args.devices_file} lists no device_id,secret rows")
        return credentials
    if args.provision < 1:
        sys.exit("qris-soundbox: --provision needs N ≥ 1")
    try:
        credentials = asyncio.run(provision(args, admin_token(args.admin_token)))
    except ApiError as exc:
        sys.exit(f"qris-soundbox: provisioning failed: {exc}")
    if args.save_devices:
        save_devices_file(args.save_devices, credentials)
        print(f"credentials saved to {args.save_devices}", flush=True)
    return credentials


async def run_fleet(
    credentials: list[DeviceCredential],
    target: MqttTarget,
    *,
    fleet_mode: bool,
    verbose: bool,
    heartbeat_s: float,
    dynamic_qr: int | None,
    connect_concurrency: int,
    duration: float | None,
    dialect: str = "native",
) -> dict[str, Any]:
    stats = FleetStats(sessions=len(credentials))
    say = (lambda line: print(line, flush=True)) if verbose or not fleet_mode else None
    slots = asyncio.Semaphore(max(1, connect_concurrency))
    kind = Q161ProSoundbox if dialect == "q161-pro" else Soundbox
    boxes = [
        kind(
            c,
            target.host,
            target.port,
            stats,
            say,
            heartbeat_s=heartbeat_s,
            dynamic_qr=dynamic_qr,
            connect_slots=slots,
            tls=target.tls,
        )
        for c in credentials
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    started = time.monotonic()
    tasks = [asyncio.create_task(box.run()) for box in boxes]
    helpers: list[asyncio.Task[object]] = [asyncio.create_task(stop.wait())]
    if fleet_mode:
        helpers.append(asyncio.create_task(_report_connects(stats, started)))
    try:
        # Ends on Ctrl-C / SIGTERM, after --duration, or when every session has given up (all refused).
        ends: list[asyncio.Future[Any]] = [helpers[0], asyncio.gather(*tasks, return_exceptions=True)]
        await asyncio.wait(ends, timeout=duration, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        for task in tasks + helpers:
            task.cancel()
        outcomes = await asyncio.gather(*tasks, *helpers, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, Exception):  # a bug, not a network event: say so rather than lose it
            print(f"qris-soundbox: a session failed: {outcome!r}", file=sys.stderr)
    return stats.summary(time.monotonic() - started)


async def _report_connects(stats: FleetStats, started: float) -> None:
    """Fleet mode: one line when every session has connected (or given up), so the ramp-up is visible."""
    while stats.connected + stats.refused < stats.sessions:
        await asyncio.sleep(0.1)
    print(
        f"fleet: {stats.connected} of {stats.sessions} sessions connected in {time.monotonic() - started:.1f} s"
        f" ({stats.refused} refused)",
        flush=True,
    )


def format_summary(summary: dict[str, Any]) -> str:
    lat = summary["payment_latency"]
    latency = (
        (
            f"p50 {lat['p50_ms']:.1f} ms, p95 {lat['p95_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms,"
            f" max {lat['max_ms']:.1f} ms over {lat['count']}"
        )
        if lat["count"]
        else "no payments"
    )
    return "\n".join(
        [
            f"simulate summary ({summary['seconds']} s)",
            f"  sessions    {summary['connected']} of {summary['sessions']} connected, {summary['refused']} refused,"
            f" {summary['reconnects']} reconnects",
            f"  messages    {summary['messages']} received: {summary['announced']} payments announced,"
            f" {summary['duplicates']} duplicates, {summary['dynamic_qr']} dynamic QRs",
            f"  sent        {summary['acks']} acks, {summary['heartbeats']} heartbeats",
            f"  payment latency (receive − paid_at)  {latency}",
        ]
    )


def with_announcement_keys(credentials: list[DeviceCredential], base_url: str) -> list[DeviceCredential]:
    """Credentials that did not come with the platform's keys get them from ``GET /device/keys``
    (one call: every device of a platform verifies against the same keys)."""
    missing = [c for c in credentials if c.announcement_keys is None]
    if not missing:
        return credentials
    try:
        keys = asyncio.run(device_announcement_keys(base_url, missing[0]))
    except ApiError as exc:
        # Still run (a CONNECT can be tried), but as firmware without keys would: nothing signed is played.
        print(
            f"qris-soundbox: cannot fetch the platform's announcement keys ({exc}); every payment announcement"
            " will be refused: give --base-url (or --profile)",
            file=sys.stderr,
            flush=True,
        )
        return credentials
    return [c if c.announcement_keys is not None else replace(c, announcement_keys=keys) for c in credentials]


def _simulate(args: argparse.Namespace) -> None:
    tls = TlsOptions.from_args(args)
    credentials = _credentials(args)
    if args.dialect == "native":
        credentials = with_announcement_keys(credentials, args.base_url)
    else:
        print(
            f"{args.dialect}: its messages carry no signature, so this device cannot tell a forged"
            " announcement from a real one (docs/announcement-signing.md)",
            flush=True,
        )
    if args.fleet is not None:
        if args.fleet < 1 or args.fleet > len(credentials):
            sys.exit(
                f"qris-soundbox: --fleet {args.fleet} needs {args.fleet} credentials; {len(credentials)} given"
                " (use --devices-file or --provision N)"
            )
        credentials = credentials[: args.fleet]
    summary = asyncio.run(
        run_fleet(
            credentials,
            mqtt_target(tls, args.mqtt_host, args.mqtt_port, credentials[0]),
            fleet_mode=args.fleet is not None,
            verbose=args.verbose,
            heartbeat_s=args.heartbeat_s,
            dynamic_qr=args.dynamic_qr,
            connect_concurrency=args.connect_concurrency,
            duration=args.duration,
            dialect=args.dialect,
        )
    )
    print(json.dumps(summary) if args.json else format_summary(summary), flush=True)
    sys.exit(0 if summary["connected"] else 1)
