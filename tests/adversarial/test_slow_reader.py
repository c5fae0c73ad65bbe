"""A device that stops acknowledging gets one copy of each message at a time, and its backlog stays in PostgreSQL.

Before, two retry mechanisms stacked: the outbox handed the same row to the
session again under a new packet id every back-off while the broker resent
what was still in flight, so a slow reader received several times as many
PUBLISH packets as messages and the broker's memory grew with its backlog.
Here the real platform (device auth, ACL, outbox) runs with a 3-message
in-flight window, a 2-message queue and a 1 s resend.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from qris_soundbox.broker.config import DEFAULT_CONFIG_PATH
from qris_soundbox.core import outbox
from tests.broker import raw_client as raw
from tests.broker.raw_client import RawClient
from tests.devices.helpers import eventually, provisioned_device
from tests.support import PlatformFactory, RunningPlatform

PUBLISH, PUBACK = 3, 4
IN_FLIGHT, QUEUED = 3, 2
MESSAGES = 12


@pytest.fixture(scope="module")
async def running(platform_factory: PlatformFactory, tmp_path_factory: pytest.TempPathFactory) -> RunningPlatform:
    config = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    config["protocol"] |= {"retry_interval": 1, "max_inflight_messages": IN_FLIGHT, "max_queued_messages": QUEUED}
    path = Path(tmp_path_factory.mktemp("slow-reader")) / "broker.yaml"
    path.write_text(yaml.safe_dump(config))
    return await platform_factory.start(broker_config=path)


async def _payments(running: RunningPlatform, device_id: str, count: int) -> set[str]:
    expires = datetime.now(UTC) + timedelta(minutes=10)
    async with running.platform.db.transaction() as conn:
        return {
            await outbox.enqueue(
                conn,
                device_id=device_id,
                kind="payment",
                # What a payment announcement carries, so that it can be signed (docs/announcement-signing.md).
                body={
                    "type": "payment",
                    "amount": 1000 + n,
                    "currency": "IDR",
                    "transaction_id": f"txn_slow_reader_{n}",
                    "paid_at": datetime.now(UTC).isoformat(),
                },
                expires_at=expires,
            )
            for n in range(count)
        }


async def _read_for(client: RawClient, seconds: float) -> list[raw.Packet]:
    packets: list[raw.Packet] = []
    deadline = asyncio.get_running_loop().time() + seconds
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            packets.append(await asyncio.wait_for(client.read(), left))
        except TimeoutError:
            break
    return packets


async def _subscribed(running: RunningPlatform, device_id: str, secret: str) -> RawClient:
    """The device on a raw socket, connected and subscribed to its downlinks."""
    client = await RawClient.open(running.mqtt_port)
    await client.send(raw.connect(device_id, secret))
    assert (await client.read()).body == b"\x00\x00"
    await client.send(raw.subscribe(1, f"devices/{device_id}/downlink/#", 1))
    assert (await client.read()).kind == 9
    return client


def _message_id(packet: raw.Packet) -> str:
    return str(json.loads(packet.payload)["message_id"])


async def test_a_device_that_stops_reading_gets_each_message_once_at_a_time(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    client = await _subscribed(running, device_id, secret)
    sent = await _payments(running, device_id, MESSAGES)

    # Not acknowledging for several resend intervals and outbox ticks.
    stalled = await _read_for(client, 4)
    assert stalled and all(p.kind == PUBLISH for p in stalled)
    packet_ids: dict[str, set[int]] = defaultdict(set)
    for packet in stalled:
        packet_ids[_message_id(packet)].add(packet.packet_id)
    assert len(packet_ids) == IN_FLIGHT, "only the in-flight window went out"
    assert all(len(ids) == 1 for ids in packet_ids.values()), "a message was handed over again under a new packet id"
    assert sum(not p.dup for p in stalled) == IN_FLIGHT, "every copy after the first is a DUP resend"

    # Reading again, acknowledging (PUBACK and the payment ack) as a soundbox does: everything arrives.
    acked: set[str] = set()
    received = stalled
    while True:
        for packet in received:
            await client.send(raw.ack(PUBACK, packet.packet_id))
            if (message_id := _message_id(packet)) not in acked:
                acked.add(message_id)
                body = json.dumps({"message_id": message_id}).encode()
                await client.send(raw.publish(f"devices/{device_id}/uplink/payment/ack", body, 0))
        if acked == sent:
            break
        received = [packet for packet in [await client.read()] if packet.kind == PUBLISH]
    assert await eventually(lambda: _all_acked(running, sent))
    await client.close()


async def _all_acked(running: RunningPlatform, message_ids: set[str]) -> bool:
    rows = await running.platform.db.pool.fetch(
        "SELECT status FROM device_outbox WHERE message_id = ANY($1::text[])", list(message_ids)
    )
    return len(rows) == len(message_ids) and {row["status"] for row in rows} == {"acked"}


@pytest.mark.parametrize("late", [False, True], ids=["puback-at-once", "puback-after-a-resend"])
async def test_a_message_the_device_has_taken_is_not_sent_again_while_its_ack_is_on_the_way(
    running: RunningPlatform, late: bool
) -> None:
    """PUBACK (at once, or only to the broker's DUP resend, as a slow reader catching up does), then the
    application's ack later than the outbox's first retry (5 s): no second copy."""
    device_id, secret = await provisioned_device(running)
    client = await _subscribed(running, device_id, secret)
    (message_id,) = await _payments(running, device_id, 1)
    packet = await client.read()
    assert _message_id(packet) == message_id
    if late:
        resent = await client.read()  # the broker's resend after retry_interval (1 s here)
        assert resent.dup and resent.packet_id == packet.packet_id
    await client.send(raw.ack(PUBACK, packet.packet_id))
    assert await _read_for(client, 7) == [], "sent again while the device's ack could still be on its way"
    body = json.dumps({"message_id": message_id}).encode()
    await client.send(raw.publish(f"devices/{device_id}/uplink/payment/ack", body, 0))
    assert await eventually(lambda: _all_acked(running, {message_id}))
    await client.close()
