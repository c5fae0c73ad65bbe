"""The soundbox hears a refund where its model can say it (a text model on the platform's own wire):
"Pengembalian dana QRIS, …" on the payment topic, acked and tracked like a payment. A clip model
hears nothing: it has no recording of those words, and the amount alone would sound like a payment."""

from __future__ import annotations

import msgspec

from tests.devices.helpers import eventually, first_message
from tests.payments.helpers import callback_body, post_callback
from tests.payments.test_announcements import bound_soundbox, subscribed
from tests.refunds.helpers import refund
from tests.support import RunningPlatform


async def downlink_states(running: RunningPlatform, transaction_id: str) -> list[tuple[str, str]]:
    rows = await running.platform.db.pool.fetch(
        "SELECT payload->>'type' AS type, status FROM device_outbox WHERE transaction_id = $1 AND kind = 'payment'"
        " ORDER BY id",
        transaction_id,
    )
    return [(r["type"], r["status"]) for r in rows]


async def test_a_text_soundbox_announces_the_refund_and_acks_it(running: RunningPlatform) -> None:
    ids, device_id, secret = await bound_soundbox(running, "generic-screen")
    async with running.mqtt(device_id, secret) as device:
        await subscribed(device, device_id)
        paid = (await post_callback(running, callback_body(amount=25_000, terminal_id=ids["terminal_id"]))).json()
        payment = await first_message(device, timeout=10)
        assert payment is not None and msgspec.json.decode(payment.payload)["type"] == "payment"
        made = await refund(running, paid["transaction_id"], 10_000)
        assert made.status_code == 201, made.text
        message = await first_message(device, timeout=10)
        assert message is not None and str(message.topic) == f"devices/{device_id}/downlink/payment"
        body = msgspec.json.decode(message.payload)
        assert body["type"] == "refund" and body["refund_id"] == made.json()["id"]
        assert body["transaction_id"] == paid["transaction_id"] and body["amount"] == 10_000
        assert body["announcement"]["format"] == "text"
        assert body["announcement"]["text"] == "Pengembalian dana QRIS, sepuluh ribu rupiah"
        await device.publish(
            f"devices/{device_id}/uplink/payment/ack", msgspec.json.encode({"message_id": body["message_id"]}), qos=1
        )

        async def acked() -> bool:
            return ("refund", "acked") in await downlink_states(running, paid["transaction_id"])

        assert await eventually(acked)


async def test_a_clip_soundbox_is_not_told_a_refund(running: RunningPlatform) -> None:
    ids, _, _ = await bound_soundbox(running, "generic-audio")
    paid = (await post_callback(running, callback_body(amount=25_000, terminal_id=ids["terminal_id"]))).json()
    assert (await refund(running, paid["transaction_id"], 25_000)).json()["status"] == "succeeded"
    assert [kind for kind, _ in await downlink_states(running, paid["transaction_id"])] == ["payment"]
