"""A paid callback makes the bound soundbox speak: real broker, real MQTT client as
the device, real HTTP, real PostgreSQL (SPEC §5, §9, §10)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiomqtt
import msgspec

from qris_soundbox.core.qris import parse_qris
from tests.devices.helpers import eventually, first_message, provisioned_device
from tests.onboarding import onboarded_terminal
from tests.payments.helpers import callback_body, post_callback
from tests.support import PlatformFactory, RunningPlatform


async def bound_soundbox(running: RunningPlatform, model: str = "generic-audio", *, qris_ready: bool = True):
    ids = await onboarded_terminal(running, qris_ready=qris_ready, merchant_name="Warung Bu Sri")
    device_id, secret = await provisioned_device(running, model)
    bound = await running.http.post(
        f"/admin/devices/{device_id}/bind", json={"terminal_id": ids["terminal_id"]}, headers=running.admin_headers
    )
    assert bound.status_code == 200, bound.text
    return ids, device_id, secret


async def subscribed(client: aiomqtt.Client, device_id: str) -> None:
    await client.subscribe(f"devices/{device_id}/downlink/#", qos=1)


async def notification_status(running: RunningPlatform, transaction_id: str) -> str | None:
    txn = (await running.http.get(f"/admin/transactions/{transaction_id}", headers=running.admin_headers)).json()
    return (txn.get("notification") or {}).get("status")


async def test_paid_callback_is_announced_and_acked(running: RunningPlatform) -> None:
    ids, device_id, secret = await bound_soundbox(running)
    async with running.mqtt(device_id, secret) as device:
        await subscribed(device, device_id)
        result = (await post_callback(running, callback_body(amount=25_000, terminal_id=ids["terminal_id"]))).json()
        message = await first_message(device, timeout=5)
        assert message is not None and str(message.topic) == f"devices/{device_id}/downlink/payment"
        assert message.qos == 1
        payload = msgspec.json.decode(message.payload)
        assert payload["type"] == "payment" and payload["transaction_id"] == result["transaction_id"]
        assert payload["amount"] == 25_000 and payload["currency"] == "IDR" and payload["paid_at"]
        assert payload["announcement"] == {
            "format": "clips",
            "language": "id",
            "amount": 25_000,
            "text": "Pembayaran QRIS diterima, dua puluh lima ribu rupiah",
            "clips": ["pembayaran_qris_diterima", "dua", "puluh", "lima", "ribu", "rupiah"],
        }

        # "sent" is recorded after the PUBLISH left, so the device can hear it first.
        async def sent() -> bool:
            return await notification_status(running, result["transaction_id"]) == "sent"

        assert await eventually(sent)
        await device.publish(
            f"devices/{device_id}/uplink/payment/ack", msgspec.json.encode({"message_id": payload["message_id"]}), qos=1
        )

        async def acked() -> bool:
            return await notification_status(running, result["transaction_id"]) == "acked"

        assert await eventually(acked)
    await running.platform.uplink_writes.flush()  # the node writes its uplinks' trace in batches
    trace = (await running.http.get(f"/admin/devices/{device_id}/mqtt-messages", headers=running.admin_headers)).json()
    directions = {(m["direction"], m["topic"].rsplit("/", 2)[-2:][-1]) for m in trace["items"]}
    assert ("downlink", "payment") in directions and ("uplink", "ack") in directions


async def test_screen_model_announcement_carries_display(running: RunningPlatform) -> None:
    ids, device_id, secret = await bound_soundbox(running, "generic-screen")
    async with running.mqtt(device_id, secret) as device:
        await subscribed(device, device_id)
        await post_callback(running, callback_body(amount=1_500, terminal_id=ids["terminal_id"]))
        message = await first_message(device, timeout=5)
        announcement = msgspec.json.decode(message.payload)["announcement"]
        assert announcement["format"] == "text"
        assert announcement["text"] == "Pembayaran QRIS diterima, seribu lima ratus rupiah"
        assert announcement["display"]["merchant_name"] == "Warung Bu Sri"
        assert announcement["display"]["formatted_amount"] == "Rp1.500"


async def test_announcements_go_on_after_the_server_closes_the_publishers_listening_connection(
    running: RunningPlatform,
) -> None:
    """The publisher's LISTEN connection dies under it (a restarted PgBouncer, an operator's
    pg_terminate_backend): it must listen again and keep announcing, not stop."""
    ids, device_id, secret = await bound_soundbox(running)
    async with running.mqtt(device_id, secret) as device:
        await subscribed(device, device_id)
        pool = running.platform.db.pool

        async def listeners() -> list[int]:
            return [
                row["pid"]
                for row in await pool.fetch(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE datname = current_database() AND query ILIKE 'LISTEN%device_outbox%'"
                )
            ]

        (killed,) = await listeners()
        assert await pool.fetchval("SELECT pg_terminate_backend($1)", killed)

        async def listening_again() -> bool:
            return [pid for pid in await listeners() if pid != killed] != []

        # The publisher's tick notices the closed connection and listens on a new one.
        assert await eventually(listening_again, timeout=30), "the publisher did not listen again"
        result = (await post_callback(running, callback_body(amount=13_000, terminal_id=ids["terminal_id"]))).json()
        message = await first_message(device, timeout=10)
        assert message is not None, "nothing was announced after the listening connection was closed"
        assert msgspec.json.decode(message.payload)["transaction_id"] == result["transaction_id"]


async def test_an_offline_soundboxs_backlog_is_deferred_once_not_rewritten_every_tick(
    running: RunningPlatform,
) -> None:
    """Each tick defers what became due for an offline device; rows deferred already are left alone
    (rewriting the whole backlog every second made a busy offline terminal cost O(backlog) per tick)."""
    ids, device_id, _ = await bound_soundbox(running)
    pool = running.platform.db.pool

    async def open_rows() -> dict[str, tuple[str, object]]:
        rows = await pool.fetch(
            "SELECT id, xmin::text AS version, next_attempt_at FROM device_outbox"
            " WHERE device_id = $1 AND status IN ('pending', 'sent')",
            device_id,
        )
        return {row["id"]: (row["version"], row["next_attempt_at"]) for row in rows}

    async def all_deferred() -> bool:
        rows = await pool.fetch(
            "SELECT next_attempt_at > now() + interval '10 seconds' AS later FROM device_outbox"
            " WHERE device_id = $1 AND status IN ('pending', 'sent')",
            device_id,
        )
        return bool(rows) and all(row["later"] for row in rows)

    for amount in (1_100, 1_200, 1_300):
        assert (
            await post_callback(running, callback_body(amount=amount, terminal_id=ids["terminal_id"]))
        ).status_code == 200
    assert await eventually(all_deferred, 10)
    backlog = await open_rows()
    assert len(backlog) == 3
    assert (
        await post_callback(running, callback_body(amount=1_400, terminal_id=ids["terminal_id"]))
    ).status_code == 200
    assert await eventually(all_deferred, 10)
    await asyncio.sleep(2.5)  # two more ticks
    after = await open_rows()
    assert len(after) == 4
    assert {row_id: after[row_id] for row_id in backlog} == backlog, "the deferred backlog was rewritten"


async def test_fifty_concurrent_replays_announce_once(running: RunningPlatform) -> None:
    ids, device_id, secret = await bound_soundbox(running)
    async with running.mqtt(device_id, secret) as device:
        await subscribed(device, device_id)
        body = callback_body(amount=11_000, terminal_id=ids["terminal_id"])
        await asyncio.gather(*(post_callback(running, body) for _ in range(50)))
        first = await first_message(device, timeout=5)
        assert first is not None
        assert await first_message(device, timeout=1.5) is None
    rows = await running.platform.db.pool.fetchval(
        "SELECT count(*) FROM device_outbox WHERE device_id = $1 AND kind = 'payment'", device_id
    )
    assert rows == 1


async def test_offline_device_gets_the_payment_on_reconnect(running: RunningPlatform) -> None:
    ids, device_id, secret = await bound_soundbox(running)
    result = (await post_callback(running, callback_body(amount=5_000, terminal_id=ids["terminal_id"]))).json()
    async with running.mqtt(device_id, secret) as device:
        await subscribed(device, device_id)
        message = await first_message(device, timeout=5)
        assert message is not None
        assert msgspec.json.decode(message.payload)["transaction_id"] == result["transaction_id"]


async def test_unacked_announcement_is_resent_with_the_same_message_id(running: RunningPlatform) -> None:
    ids, device_id, secret = await bound_soundbox(running)
    async with running.mqtt(device_id, secret) as device:
        await subscribed(device, device_id)
        await post_callback(running, callback_body(amount=7_000, terminal_id=ids["terminal_id"]))
        first = msgspec.json.decode((await first_message(device, timeout=5)).payload)
    async with running.mqtt(device_id, secret) as device:
        await subscribed(device, device_id)
        again = msgspec.json.decode((await first_message(device, timeout=5)).payload)
    assert again["message_id"] == first["message_id"]


async def test_payment_older_than_the_announcement_age_is_not_played(running: RunningPlatform) -> None:
    ids, device_id, secret = await bound_soundbox(running)
    body = callback_body(amount=9_000, terminal_id=ids["terminal_id"])
    max_age = running.platform.settings.payment_announcement_max_age_seconds
    body["paid_at"] = (datetime.now(UTC) - timedelta(seconds=max_age + 60)).isoformat()
    result = (await post_callback(running, body)).json()
    assert result["status"] == "paid"
    async with running.mqtt(device_id, secret) as device:
        await subscribed(device, device_id)
        assert await first_message(device, timeout=2.5) is None

    async def skipped() -> bool:
        return await notification_status(running, result["transaction_id"]) == "skipped_late"

    assert await eventually(skipped)


async def test_another_devices_ack_does_not_close_the_announcement(running: RunningPlatform) -> None:
    ids, device_id, secret = await bound_soundbox(running)
    intruder_id, intruder_secret = await provisioned_device(running)
    async with running.mqtt(device_id, secret) as device:
        await subscribed(device, device_id)
        result = (await post_callback(running, callback_body(amount=3_000, terminal_id=ids["terminal_id"]))).json()
        message_id = msgspec.json.decode((await first_message(device, timeout=5)).payload)["message_id"]
    async with running.mqtt(intruder_id, intruder_secret) as intruder:
        await intruder.publish(
            f"devices/{intruder_id}/uplink/payment/ack", msgspec.json.encode({"message_id": message_id}), qos=1
        )
        await intruder.publish(f"devices/{intruder_id}/uplink/payment/ack", b"not json", qos=1)
    await asyncio.sleep(0.3)
    assert await notification_status(running, result["transaction_id"]) == "sent"


async def test_outbox_rows_survive_a_server_restart(platform_factory: PlatformFactory) -> None:
    first = await platform_factory.start()
    ids, device_id, secret = await bound_soundbox(first)
    # The device is offline; the payment's outbox row is written, then the server goes away.
    response = await post_callback(first, callback_body(amount=4_000, terminal_id=ids["terminal_id"]))
    assert response.status_code == 200
    await platform_factory.stop(first)

    restarted = await platform_factory.start()
    try:
        async with restarted.mqtt(device_id, secret) as device:
            await subscribed(device, device_id)
            message = await first_message(device, timeout=5)
        assert message is not None
        assert msgspec.json.decode(message.payload)["transaction_id"] == response.json()["transaction_id"]
    finally:
        await platform_factory.stop(restarted)


async def paid_and_acked(
    running: RunningPlatform, device: aiomqtt.Client, device_id: str, terminal_id: str, amount: int
) -> tuple[dict, dict]:
    """A paid static-QR callback on the terminal whose announcement ``device`` (subscribed) receives and acks:
    the callback's answer and the announcement."""
    result = (await post_callback(running, callback_body(amount=amount, terminal_id=terminal_id))).json()
    announced = msgspec.json.decode((await first_message(device, timeout=5)).payload)
    await device.publish(
        f"devices/{device_id}/uplink/payment/ack", msgspec.json.encode({"message_id": announced["message_id"]}), qos=1
    )

    async def acked() -> bool:
        return await notification_status(running, result["transaction_id"]) == "acked"

    assert await eventually(acked)
    return result, announced


async def test_retry_notification_announces_again(platform_factory: PlatformFactory) -> None:
    running = await platform_factory.start()
    ids, device_id, secret = await bound_soundbox(running)
    async with running.mqtt(device_id, secret) as device:
        await subscribed(device, device_id)
        result, first = await paid_and_acked(running, device, device_id, ids["terminal_id"], 2_000)
        retried = await running.http.post(
            f"/admin/transactions/{result['transaction_id']}/retry-notification", headers=running.admin_headers
        )
        assert retried.status_code == 200, retried.text
        # At-least-once: a late resend of the first message may come before the retry; skip it as a device would.
        again = first
        for _ in range(3):
            again = msgspec.json.decode((await first_message(device, timeout=5)).payload)
            if again["message_id"] != first["message_id"]:
                break
        assert again["transaction_id"] == result["transaction_id"] and again["message_id"] != first["message_id"]

    # The publisher records "sent" after the PUBLISH left, so the device can hear it first.
    async def statuses() -> list[str]:
        listed = await running.http.get(f"/admin/devices/{device_id}/notifications", headers=running.admin_headers)
        return [n["status"] for n in listed.json()["items"]]

    async def sent_and_acked() -> bool:
        return await statuses() == ["sent", "acked"]

    assert await eventually(sent_and_acked), await statuses()


async def _dynamic_qr_reply(running: RunningPlatform, device_id: str, secret: str, request: bytes) -> dict:
    async with running.mqtt(device_id, secret) as device:
        await subscribed(device, device_id)
        await device.publish(f"devices/{device_id}/uplink/dynamic-qr/request", request, qos=1)
        message = await first_message(device, timeout=5)
    assert message is not None and str(message.topic).endswith("/downlink/dynamic-qr/response")
    return msgspec.json.decode(message.payload)


async def test_dynamic_qr_over_mqtt_gives_a_valid_qris_payload(running: RunningPlatform) -> None:
    _, device_id, secret = await bound_soundbox(running, "generic-screen")
    reply = await _dynamic_qr_reply(
        running, device_id, secret, msgspec.json.encode({"request_id": "req-1", "amount": 45_000})
    )
    assert reply["request_id"] == "req-1" and reply["message_id"] and reply["expires_at"]
    parsed = parse_qris(reply["qr_payload"])
    assert parsed.amount == 45_000 and parsed.point_of_initiation == "dynamic"
    txn = (
        await running.http.get(f"/admin/transactions/{reply['transaction_id']}", headers=running.admin_headers)
    ).json()
    assert txn["status"] == "pending" and txn["device_id"] == device_id


async def test_dynamic_qr_errors_over_mqtt(running: RunningPlatform) -> None:
    _, audio_id, audio_secret = await bound_soundbox(running, "generic-audio")
    reply = await _dynamic_qr_reply(
        running, audio_id, audio_secret, msgspec.json.encode({"request_id": "a", "amount": 1_000})
    )
    assert reply["error"]["code"] == "capability_not_supported" and reply["request_id"] == "a"

    unbound_id, unbound_secret = await provisioned_device(running, "generic-screen")
    reply = await _dynamic_qr_reply(
        running, unbound_id, unbound_secret, msgspec.json.encode({"request_id": "b", "amount": 1_000})
    )
    assert reply["error"]["code"] == "device_not_bound"

    _, screen_id, screen_secret = await bound_soundbox(running, "generic-screen")
    reply = await _dynamic_qr_reply(running, screen_id, screen_secret, b'{"request_id": "c", "amount": -5}')
    assert reply["error"]["code"] == "malformed_uplink" and reply["request_id"] == "c"
    reply = await _dynamic_qr_reply(running, screen_id, screen_secret, b"garbage")
    assert reply["error"]["code"] == "malformed_uplink" and reply["request_id"] is None


async def test_dynamic_qr_over_http(running: RunningPlatform) -> None:
    _, device_id, secret = await bound_soundbox(running, "generic-screen")
    headers = {"X-Device-Id": device_id, "X-Device-Secret": secret}
    response = await running.http.post("/device/transactions/dynamic-qr", json={"amount": 12_345}, headers=headers)
    assert response.status_code == 201, response.text
    assert parse_qris(response.json()["qr_payload"]).amount == 12_345

    _, audio_id, audio_secret = await bound_soundbox(running, "generic-audio")
    refused = await running.http.post(
        "/device/transactions/dynamic-qr",
        json={"amount": 1_000},
        headers={"X-Device-Id": audio_id, "X-Device-Secret": audio_secret},
    )
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "capability_not_supported"


async def test_http_bridge_answers_over_mqtt(running: RunningPlatform) -> None:
    _, device_id, secret = await bound_soundbox(running, "generic-screen")
    async with running.mqtt(device_id, secret) as device:
        await subscribed(device, device_id)
        response = await running.http.post(
            "/device/mqtt/uplink/dynamic-qr/request",
            json={"request_id": "bridge-1", "amount": 8_000},
            headers={"X-Device-Id": device_id, "X-Device-Secret": secret},
        )
        assert response.status_code == 202, response.text
        message = await first_message(device, timeout=5)
    reply = msgspec.json.decode(message.payload)
    assert reply["message_id"] == response.json()["message_id"] and parse_qris(reply["qr_payload"]).amount == 8_000


async def test_terminal_detail_shows_its_bound_soundbox(running: RunningPlatform) -> None:
    ids, device_id, _ = await bound_soundbox(running, "generic-screen")
    terminal = (await running.http.get(f"/admin/terminals/{ids['terminal_id']}", headers=running.admin_headers)).json()
    assert terminal["bound_device"]["id"] == device_id and terminal["bound_device"]["model"] == "generic-screen"
    await running.http.post(f"/admin/devices/{device_id}/unbind", headers=running.admin_headers)
    terminal = (await running.http.get(f"/admin/terminals/{ids['terminal_id']}", headers=running.admin_headers)).json()
    assert terminal["bound_device"] is None


async def test_announcement_speaks_the_devices_configured_language(running: RunningPlatform) -> None:
    ids, device_id, secret = await bound_soundbox(running)
    patched = await running.http.patch(
        f"/admin/devices/{device_id}/config", json={"language": "en"}, headers=running.admin_headers
    )
    assert patched.status_code == 200, patched.text
    async with running.mqtt(device_id, secret) as device:
        await subscribed(device, device_id)
        await post_callback(running, callback_body(amount=25_000, terminal_id=ids["terminal_id"]))
        announcement = None
        for _ in range(3):  # the config push may arrive first
            message = await first_message(device, timeout=5)
            if str(message.topic).endswith("/downlink/payment"):
                announcement = msgspec.json.decode(message.payload)["announcement"]
                break
    assert announcement is not None and announcement["language"] == "en"
    assert announcement["text"] == "QRIS payment received, twenty-five thousand rupiah"


async def test_api_only_process_payment_is_delivered_by_the_broker_process(
    platform_factory: PlatformFactory, running: RunningPlatform
) -> None:
    ids, device_id, secret = await bound_soundbox(running)
    api_only = await platform_factory.start(roles=frozenset({"api"}))
    try:
        async with running.mqtt(device_id, secret) as device:  # connected to the broker of `running`
            await subscribed(device, device_id)
            response = await post_callback(api_only, callback_body(amount=6_500, terminal_id=ids["terminal_id"]))
            assert response.status_code == 200, response.text
            message = await first_message(device, timeout=5)
        assert message is not None
        assert msgspec.json.decode(message.payload)["transaction_id"] == response.json()["transaction_id"]
    finally:
        await platform_factory.stop(api_only)
