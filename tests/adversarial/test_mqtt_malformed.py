"""Hostile MQTT against the whole platform: the broker keeps serving the devices that behave.

``tests/broker/test_protocol.py`` pins what the packet path does with each
malformed packet (a test broker, the shared-password plugin). Here the platform
is the one ``serve`` runs — broker.yaml as shipped, the real device auth and
ACL plugins — and the question is the other devices: while anonymous clients
and a hostile device (the attacker's own soundbox, with its real credential)
send garbage, a paying device connects, subscribes, hears its payments and
acknowledges them, and nothing the attackers opened lingers in the broker.

Nothing here asserts a duration; waits are bounded by ``raw_client.WAIT_S``,
or by broker.yaml's ``connect_timeout`` for connections that go silent.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiomqtt
import msgspec
import pytest

from qris_soundbox.broker.config import load_broker_config, split_protocol_settings
from qris_soundbox.broker.server import PlatformBroker
from tests.broker import raw_client as raw
from tests.broker.raw_client import RawClient
from tests.devices.helpers import eventually, first_message, provisioned_device
from tests.payments.helpers import callback_body, post_callback
from tests.payments.test_announcements import bound_soundbox, subscribed
from tests.support import RunningPlatform

SEED = 20261212
PROTOCOL = split_protocol_settings(load_broker_config())[1]  # broker.yaml as shipped, as `serve` runs it
# A connection that goes silent is closed by the CONNECT timeout or keep-alive; waited for with raw_client's margin.
SILENCE_S = PROTOCOL.connect_timeout + raw.WAIT_S
HOSTILE_DEVICES = 8
CONNACK_OK = b"\x20\x02\x00\x00"
CONNACK_NOT_AUTHORIZED = b"\x20\x02\x00\x05"
_amounts = itertools.count(1_000, 250)


@dataclass
class Victim:
    """The paying device: bound to a terminal, announced every payment."""

    id: str
    secret: str
    terminal_id: str


@dataclass
class Arena:
    """What an attack needs: the broker's port, the victim's id, and a pool of hostile devices' credentials
    (each used by one connection at a time, so hostile connections never take each other over)."""

    port: int
    victim: Victim
    hostile: asyncio.Queue[tuple[str, str]]
    rng: random.Random


Attack = Callable[[Arena], Awaitable[None]]


@pytest.fixture(scope="module")
async def victim(running: RunningPlatform) -> Victim:
    ids, device_id, secret = await bound_soundbox(running)
    return Victim(device_id, secret, ids["terminal_id"])


@pytest.fixture(scope="module")
async def hostile(running: RunningPlatform) -> asyncio.Queue[tuple[str, str]]:
    pool: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    for _ in range(HOSTILE_DEVICES):
        pool.put_nowait(await provisioned_device(running))
    return pool


@pytest.fixture
def broker(running: RunningPlatform) -> PlatformBroker:
    assert isinstance(running.platform.broker, PlatformBroker)
    return running.platform.broker


# -- the attacks --------------------------------------------------------------------------------------------------


async def send(client: RawClient, data: bytes) -> None:
    """Send, not minding that the broker may already have closed the connection."""
    try:
        await client.send(data)
    except ConnectionError:
        pass


async def refused_before_connack(arena: Arena, data: bytes, *, then_close: bool = False) -> None:
    """An anonymous client sends ``data``: never accepted, and (unless it closes first) closed by the broker."""
    client = await RawClient.open(arena.port)
    await send(client, data)
    if then_close:
        await client.close()
        return
    received = await client.closed_by_broker(SILENCE_S)
    assert not received.startswith(CONNACK_OK), f"a hostile CONNECT was accepted: {received!r}"


async def as_hostile_device(
    arena: Arena, attack: Callable[[RawClient, str], Awaitable[None]], *, keep_alive: int = 60
) -> None:
    """A hostile device connects with its real credential (accepted), then runs ``attack``."""
    device_id, secret = await arena.hostile.get()
    try:
        client = await RawClient.open(arena.port)
        await client.send(raw.connect(device_id, secret, keep_alive=keep_alive))
        connack = await client.read()
        assert (connack.kind, connack.body) == (2, b"\x00\x00"), "the hostile device's own credential was refused"
        await attack(client, device_id)
    finally:
        arena.hostile.put_nowait((device_id, secret))


def closed_after(data: Callable[[str], bytes]) -> Callable[[Arena], Awaitable[None]]:
    """A hostile device sends ``data(its id)`` after its CONNACK; the broker must close the connection."""

    async def attack(arena: Arena) -> None:
        async def violate(client: RawClient, device_id: str) -> None:
            await send(client, data(device_id))
            await client.closed_by_broker()

        await as_hostile_device(arena, violate)

    return attack


def anonymous(data: Callable[[Arena], bytes], *, then_close: bool = False) -> Callable[[Arena], Awaitable[None]]:
    async def attack(arena: Arena) -> None:
        await refused_before_connack(arena, data(arena), then_close=then_close)

    return attack


def random_bytes(arena: Arena) -> bytes:
    return arena.rng.randbytes(arena.rng.randint(1, 4096))


def connect_cut_short(arena: Arena) -> bytes:
    whole = raw.connect(f"dev_{arena.rng.getrandbits(64):016x}", "secret")
    return whole[: arena.rng.randint(1, len(whole) - 1)]


def connect_payload(client_id: bytes, *, flags: int = 0x02, extra: bytes = b"") -> bytes:
    """A CONNECT whose payload is a raw client id (``bytes``, so it may be anything) and ``extra``."""
    return raw.packet(0x10, raw.utf8("MQTT") + bytes([4, flags, 0, 60]) + raw.utf8(client_id) + extra)


def not_authorized(client_id: Callable[[Arena], str]) -> Callable[[Arena], Awaitable[None]]:
    """A well-formed CONNECT with a wrong secret: CONNACK 5, then the broker closes the connection."""

    async def attack(arena: Arena) -> None:
        client = await RawClient.open(arena.port)
        await client.send(raw.connect(client_id(arena), "not-the-secret"))
        assert await client.closed_by_broker() == CONNACK_NOT_AUTHORIZED

    return attack


async def random_bytes_after_connack(arena: Arena) -> None:
    async def garbage(client: RawClient, _device_id: str) -> None:
        await send(client, random_bytes(arena))
        await client.close()  # random bytes may well be a valid packet or a partial one: we leave

    await as_hostile_device(arena, garbage)


async def publish_cut_short_then_close(arena: Arena) -> None:
    async def cut(client: RawClient, device_id: str) -> None:
        await send(client, raw.publish(heartbeat(device_id), b"{}" * 50, 1, 1)[:-40])
        client.abort()

    await as_hostile_device(arena, cut)


async def publish_cut_short_then_silence(arena: Arena) -> None:
    async def cut(client: RawClient, device_id: str) -> None:
        await send(client, raw.publish(heartbeat(device_id), b"{}" * 50, 1, 1)[:-40])
        await client.closed_by_broker(SILENCE_S)  # keep-alive: a part of a packet is not a packet

    await as_hostile_device(arena, cut, keep_alive=1)


async def slowloris(arena: Arena) -> None:
    """A hostile device's valid CONNECT, one byte a second: the CONNECT timeout closes it before it is whole."""
    device_id, secret = await arena.hostile.get()
    try:
        data = raw.connect(device_id, secret)
        assert len(data) > PROTOCOL.connect_timeout + 2, "this CONNECT would be whole before the timeout"
        client = await RawClient.open(arena.port)

        async def dribble() -> None:
            for byte in data:
                await send(client, bytes([byte]))
                await asyncio.sleep(1)

        dribbling = asyncio.create_task(dribble())
        try:
            assert await client.closed_by_broker(SILENCE_S) == b""
        finally:
            dribbling.cancel()
    finally:
        arena.hostile.put_nowait((device_id, secret))


def subscribe_body(device_id: str) -> bytes:
    return raw.utf8(f"devices/{device_id}/downlink/#") + b"\x01"


def heartbeat(device_id: str) -> str:
    return f"devices/{device_id}/uplink/heartbeat"


# Quick attacks: the broker refuses each at once (or the attacker leaves).
QUICK: dict[str, Attack] = {
    "random bytes then close": anonymous(random_bytes, then_close=True),
    "connect cut short then close": anonymous(connect_cut_short, then_close=True),
    "remaining length beyond max_packet_size": anonymous(
        lambda _: b"\x10" + raw.remaining_length(PROTOCOL.max_packet_size + 1)
    ),
    "largest remaining length": anonymous(lambda _: b"\x30\xff\xff\xff\x7f"),
    "remaining length beyond four bytes": anonymous(lambda _: b"\x10\xff\xff\xff\xff\x01"),
    "connect with wrong fixed-header flags": anonymous(
        lambda a: bytes([0x10 | a.rng.randint(1, 15)]) + raw.connect(a.victim.id, "x")[1:]
    ),
    "publish before connect": anonymous(lambda a: raw.publish(f"devices/{a.victim.id}/downlink/payment", b"{}")),
    "subscribe before connect": anonymous(lambda a: raw.subscribe(1, f"devices/{a.victim.id}/downlink/#")),
    "client id not utf-8": anonymous(lambda _: connect_payload(b"dev_\xc3\x28")),
    "client id with U+0000": anonymous(lambda a: connect_payload(a.victim.id.encode() + b"\x00")),
    "user name with U+0000": anonymous(
        lambda a: connect_payload(
            a.victim.id.encode(), flags=0xC2, extra=raw.utf8(a.victim.id + "\x00") + raw.utf8("x")
        )
    ),
    "will flag without a will": anonymous(lambda a: connect_payload(a.victim.id.encode(), flags=0x06)),
    "the victim's id with a wrong secret": not_authorized(lambda a: a.victim.id),
    "an unknown device": not_authorized(lambda a: f"dev_{a.rng.getrandbits(64):016x}"),
    "second connect": closed_after(lambda d: raw.connect(d, "again")),
    "subscribe without a filter": closed_after(lambda _: raw.packet(0x82, b"\x00\x01")),
    "subscribe with packet id 0": closed_after(lambda d: raw.packet(0x82, b"\x00\x00" + subscribe_body(d))),
    "subscribe with flags 0": closed_after(lambda d: raw.packet(0x80, b"\x00\x01" + subscribe_body(d))),
    "subscribe filter not utf-8": closed_after(
        lambda d: raw.packet(0x82, b"\x00\x01" + raw.utf8(f"devices/{d}/".encode() + b"\xff") + b"\x01")
    ),
    "subscribe filter with U+0000": closed_after(
        lambda d: raw.packet(0x82, b"\x00\x01" + raw.utf8(f"devices/{d}/downlink/\x00") + b"\x01")
    ),
    "publish qos 3": closed_after(lambda d: bytes([0x36]) + raw.publish(heartbeat(d), b"{}", 1, 1)[1:]),
    "publish qos 1 with packet id 0": closed_after(lambda d: raw.publish(heartbeat(d), b"{}", 1, 0)),
    "publish topic not utf-8": closed_after(lambda d: raw.publish(f"devices/{d}/uplink/".encode() + b"\xc3", b"{}")),
    "publish topic with U+0000": closed_after(lambda d: raw.publish(f"devices/{d}/uplink/\x00", b"{}")),
    "pubrel with flags 0": closed_after(lambda _: raw.packet(0x60, b"\x00\x01")),
    "pingreq with flags": closed_after(lambda _: b"\xc1\x00"),
    "remaining length beyond max_packet_size after connack": closed_after(
        lambda _: b"\x30" + raw.remaining_length(PROTOCOL.max_packet_size + 1)
    ),
    "random bytes after connack": random_bytes_after_connack,
    "publish cut short then close": publish_cut_short_then_close,
}

# Attacks that go quiet: only the broker's CONNECT timeout or keep-alive ends them.
SILENT: dict[str, Attack] = {
    "random bytes then silence": anonymous(random_bytes),
    "connect cut short then silence": anonymous(connect_cut_short),
    "publish cut short then silence": publish_cut_short_then_silence,
    "slowloris, one byte a second": slowloris,
}


# -- what must keep working ---------------------------------------------------------------------------------------


def open_connections(broker: PlatformBroker) -> int:
    """TCP connections the broker holds on its listener (accepted or not)."""
    return sum(server.conn_count for server in broker._servers.values())


async def announced(running: RunningPlatform, device: aiomqtt.Client, victim: Victim, seen: set[str]) -> str:
    """One payment to the victim: the signed callback is answered 200, the device hears it and acks it.
    Resends of payments already heard (message ids in ``seen``) are acked again and skipped, as a device does."""
    response = await post_callback(running, callback_body(amount=next(_amounts), terminal_id=victim.terminal_id))
    assert response.status_code == 200, response.text
    transaction_id = response.json()["transaction_id"]
    while True:
        message = await first_message(device, timeout=raw.WAIT_S)
        assert message is not None, f"payment {transaction_id} was not announced"
        body = msgspec.json.decode(message.payload)
        await device.publish(
            f"devices/{victim.id}/uplink/payment/ack", msgspec.json.encode({"message_id": body["message_id"]}), qos=1
        )
        if body["transaction_id"] == transaction_id:
            seen.add(body["message_id"])
            return transaction_id
        assert body["message_id"] in seen, f"a payment announced that was never made: {body}"


async def all_acked(running: RunningPlatform, device_id: str) -> bool:
    unacked = await running.platform.db.pool.fetchval(
        "SELECT count(*) FROM device_outbox WHERE device_id = $1 AND kind = 'payment' AND status <> 'acked'", device_id
    )
    return unacked == 0


async def assert_serving(running: RunningPlatform, broker: PlatformBroker, victim: Victim) -> None:
    """The broker is up and a legitimate device connects, subscribes, hears a payment and acks it."""
    assert broker.is_running
    health = await running.http.get("/health/deep")
    assert health.status_code == 200 and health.json()["broker"]["status"] == "ok", health.text
    async with running.mqtt(victim.id, victim.secret) as device:
        await subscribed(device, victim.id)
        await announced(running, device, victim, set())
    assert await eventually(lambda: all_acked(running, victim.id))


async def nothing_left_behind(broker: PlatformBroker, ours: set[str]) -> None:
    """The broker holds only the connections and sessions of the devices in ``ours``: every hostile one is gone.
    (This module's broker serves nobody else.)"""

    async def only_ours() -> bool:
        return open_connections(broker) == len(ours) and set(broker.sessions) == ours

    assert await eventually(only_ours, timeout=raw.WAIT_S), (
        f"{open_connections(broker)} connection(s) and sessions {set(broker.sessions)} held; expected only {ours}"
    )


# -- the tests ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("attack", QUICK.values(), ids=QUICK.keys())
async def test_after_each_attack_a_device_still_connects_and_hears_its_payment(
    running: RunningPlatform,
    broker: PlatformBroker,
    victim: Victim,
    hostile: asyncio.Queue[tuple[str, str]],
    attack: Attack,
) -> None:
    arena = Arena(running.mqtt_port, victim, hostile, random.Random(SEED))
    await asyncio.gather(*(attack(arena) for _ in range(3)))
    await nothing_left_behind(broker, set())
    await assert_serving(running, broker, victim)


async def test_two_hundred_hostile_connections_while_a_device_is_paid(
    running: RunningPlatform, broker: PlatformBroker, victim: Victim, hostile: asyncio.Queue[tuple[str, str]]
) -> None:
    rng = random.Random(SEED)
    catalogue = list(QUICK.items()) * 6 + list(SILENT.items()) * 2
    plan = catalogue + rng.choices(list(QUICK.items()), k=200 - len(catalogue))
    rng.shuffle(plan)
    arena = Arena(running.mqtt_port, victim, hostile, rng)
    async with running.mqtt(victim.id, victim.secret) as device:
        await subscribed(device, victim.id)
        session = broker.sessions[victim.id][0]

        async def storm() -> list[str]:
            """The attacks, staggered so the real traffic runs between and beside them; the failed ones."""
            attacks = []
            for _, attack in plan:
                attacks.append(asyncio.create_task(attack(arena)))
                await asyncio.sleep(0.02)
            outcomes = await asyncio.gather(*attacks, return_exceptions=True)
            return [
                f"{name}: {outcome!r}"
                for (name, _), outcome in zip(plan, outcomes, strict=True)
                if isinstance(outcome, BaseException)
            ]

        storming = asyncio.create_task(storm())
        seen: set[str] = set()
        paid = []
        while not storming.done() or len(paid) < 20:
            paid.append(await announced(running, device, victim, seen))
            assert broker.sessions[victim.id][0] is session, "the device's session was replaced during the storm"
            await asyncio.sleep(0.05)
        assert await storming == []  # each attack's own assertions
        assert broker.is_device_online(victim.id)
        assert await eventually(lambda: all_acked(running, victim.id))
        await nothing_left_behind(broker, {victim.id})
    assert len(set(paid)) == len(paid)
    await assert_serving(running, broker, victim)


async def test_a_connected_device_dribbling_a_packet_is_dropped_at_its_keep_alive(
    running: RunningPlatform, broker: PlatformBroker, hostile: asyncio.Queue[tuple[str, str]]
) -> None:
    device_id, secret = await hostile.get()
    try:
        client = await RawClient.open(running.mqtt_port)
        await client.send(raw.connect(device_id, secret, keep_alive=1))
        assert (await client.read()).body == b"\x00\x00"
        packet = raw.publish(heartbeat(device_id), b"{}" * 100, 1, 1)

        async def dribble() -> None:
            for byte in packet:
                await send(client, bytes([byte]))
                await asyncio.sleep(1)

        dribbling = asyncio.create_task(dribble())
        try:
            # Keep-alive 1 s: dropped within 1.5 s plus the broker's one-second tick, whatever trickles in.
            await client.closed_by_broker(6)
        finally:
            dribbling.cancel()
            client.abort()
        assert not broker.is_device_online(device_id)
    finally:
        hostile.put_nowait((device_id, secret))


async def test_a_connect_larger_than_max_connect_size_is_refused_before_it_is_read(running: RunningPlatform) -> None:
    client = await RawClient.open(running.mqtt_port)
    try:
        # Announces a 64 KiB CONNECT (within max_packet_size): closed at once, nothing held for the body.
        await client.send(bytes([0x10]) + raw.remaining_length(64 * 1024) + b"\x00\x04MQTT")
        assert await client.closed_by_broker() == b""
    finally:
        client.abort()
