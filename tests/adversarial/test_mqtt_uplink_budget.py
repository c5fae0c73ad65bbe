"""One device flooding over MQTT writes a bounded amount (issue 23, finding 1).

Before: 250,800 heartbeats in 20 s became 250,840 trace rows; 4 KiB uplinks grew the trace ~29 GB an
hour; 72,809 ``uplink/dynamic-qr/request`` in 10 s made 7,524 pending transactions while the HTTP
dynamic QR is rate-limited. Now each device has a budget per uplink kind (``MQTT_UPLINK_BUDGET_*``):
past it the broker drops the kind, counts it on the device, and traces one drop in
``MQTT_UPLINK_TRACE_SAMPLE``; the MQTT dynamic QR counts in the HTTP one's rate-limit bucket.

A real MQTT client floods at QoS 0 as fast as it can. Each flood ends with a QoS 1 uplink of a kind
still within budget: its PUBACK comes once its handlers have run, after every earlier uplink's (one lane
per device, in order), so what the flood made is all written when the test counts it.
"""

from __future__ import annotations

import math

import aiomqtt
import msgspec

from tests.devices.helpers import device_detail, eventually, first_message, provisioned_device
from tests.payments.test_announcements import bound_soundbox, subscribed
from tests.support import PlatformFactory, RunningPlatform

BUDGET = 40
SAMPLE = 100
WINDOW_MS = 600_000  # longer than the test: no window ends during a flood
FLOOD = 3_000
QR_LIMIT = 15  # RATE_LIMIT_DEVICE_MAX: the HTTP dynamic QR's limit, below the uplink budget


async def _flood(client: aiomqtt.Client, topic: str, payloads: list[bytes]) -> None:
    for payload in payloads:
        await client.publish(topic, payload, qos=0)


async def _settled(client: aiomqtt.Client, device_id: str) -> None:
    # A kind the flood did not touch: within budget, so its PUBACK waits for its handlers, and theirs
    # ran after every uplink the device sent before it.
    await client.publish(f"devices/{device_id}/uplink/command/ack", b'{"message_id": "none"}', qos=1, timeout=30)


async def _trace_rows(running: RunningPlatform, device_id: str) -> int:
    await running.platform.uplink_writes.flush()
    return await running.platform.db.pool.fetchval(
        "SELECT count(*) FROM device_mqtt_messages WHERE device_id = $1 AND direction = 'uplink'", device_id
    )


def _dropped_metric(running: RunningPlatform, kind: str) -> float:
    value = running.platform.metrics.registry.get_sample_value("qris_broker_uplinks_dropped_total", {"kind": kind})
    return value or 0.0


async def test_a_heartbeat_and_junk_flood_writes_its_budget_and_a_sample_and_a_quiet_device_is_unaffected(
    platform_factory: PlatformFactory,
) -> None:
    running = await platform_factory.start(
        mqtt_uplink_budget_max=BUDGET, mqtt_uplink_budget_window_ms=WINDOW_MS, mqtt_uplink_trace_sample=SAMPLE
    )
    try:
        flooder, flooder_secret = await provisioned_device(running)
        quiet, quiet_secret = await provisioned_device(running)
        heartbeat = b'{"battery_level": 50}'
        junk = b'{"x": "' + b"j" * 4096 + b'"}'  # 4 KiB on suffixes no handler knows: all one kind
        async with running.mqtt(flooder, flooder_secret) as client, running.mqtt(quiet, quiet_secret) as other:
            await _flood(client, f"devices/{flooder}/uplink/heartbeat", [heartbeat] * FLOOD)
            for n in range(FLOOD):
                await client.publish(f"devices/{flooder}/uplink/junk/{n}", junk, qos=0)
            await _settled(client, flooder)
            for level in range(10):  # the well-behaved device, after the flood, on the same broker
                await other.publish(f"devices/{quiet}/uplink/heartbeat", b'{"battery_level": %d}' % level, qos=1)

        dropped = 2 * (FLOOD - BUDGET)
        # Each kind: its budget, and one in SAMPLE of its drops (the first of them included); plus the settling ack.
        expected = 2 * (BUDGET + math.ceil((FLOOD - BUDGET) / SAMPLE)) + 1
        assert await _trace_rows(running, flooder) == expected
        assert await _trace_rows(running, quiet) == 10
        await running.platform.uplink_budget.dropped.flush()
        flooded, calm = await device_detail(running, flooder), await device_detail(running, quiet)
        assert flooded["uplinks_dropped"] == dropped and flooded["last_uplink_drop_at"] is not None
        assert calm["uplinks_dropped"] == 0 and calm["battery_level"] == 9
        assert _dropped_metric(running, "heartbeat") == FLOOD - BUDGET
        assert _dropped_metric(running, "other") == FLOOD - BUDGET
    finally:
        await platform_factory.stop(running)


async def test_a_dynamic_qr_flood_makes_at_most_the_http_limit_of_transactions_shared_with_http(
    platform_factory: PlatformFactory,
) -> None:
    running = await platform_factory.start(
        mqtt_uplink_budget_max=BUDGET,
        mqtt_uplink_budget_window_ms=WINDOW_MS,
        rate_limit_device_max=QR_LIMIT,
        rate_limit_device_window_ms=WINDOW_MS,
    )
    try:
        ids, flooder, flooder_secret = await bound_soundbox(running, "generic-screen")
        other_ids, quiet, quiet_secret = await bound_soundbox(running, "generic-screen")
        requests = [msgspec.json.encode({"request_id": f"r{n}", "amount": 10_000 + n}) for n in range(FLOOD)]
        async with running.mqtt(flooder, flooder_secret) as client:
            await _flood(client, f"devices/{flooder}/uplink/dynamic-qr/request", requests)
            await _settled(client, flooder)

        db = running.platform.db.pool
        made = await db.fetchval("SELECT count(*) FROM transactions WHERE terminal_id = $1", ids["terminal_id"])
        assert made == QR_LIMIT
        replies = await db.fetch(
            "SELECT payload FROM device_outbox WHERE device_id = $1 AND kind = 'dynamic_qr_response'", flooder
        )
        # The budget's worth of requests was answered: QR_LIMIT QR codes, the rest 'rate_limited'.
        assert len(replies) == BUDGET
        errors = [r["payload"]["error"]["code"] for r in replies if "error" in r["payload"]]
        assert errors == ["rate_limited"] * (BUDGET - QR_LIMIT)

        # One budget for both ways of asking: the device's HTTP dynamic QR is refused now.
        refused = await running.http.post(
            "/device/transactions/dynamic-qr",
            json={"amount": 10_000},
            headers={"X-Device-Id": flooder, "X-Device-Secret": flooder_secret},
        )
        assert refused.status_code == 429, refused.text

        # Another device still gets its QR over MQTT.
        async with running.mqtt(quiet, quiet_secret) as client:
            await subscribed(client, quiet)
            await client.publish(
                f"devices/{quiet}/uplink/dynamic-qr/request", b'{"request_id": "mine", "amount": 25000}', qos=1
            )
            message = await first_message(client, timeout=10)
        assert message is not None
        reply = msgspec.json.decode(message.payload)
        assert reply["request_id"] == "mine" and reply["qr_payload"], reply
        assert await eventually(lambda: _one_transaction(running, other_ids["terminal_id"]), timeout=10), (
            "the quiet device's QR made no transaction"
        )
    finally:
        await platform_factory.stop(running)


async def _one_transaction(running: RunningPlatform, terminal_id: str) -> bool:
    count = await running.platform.db.pool.fetchval(
        "SELECT count(*) FROM transactions WHERE terminal_id = $1", terminal_id
    )
    return count == 1
