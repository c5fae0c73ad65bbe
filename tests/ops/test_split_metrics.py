"""Split processes: the API answers the callback, a broker-only process holds the device. The broker
process serves its own figures on METRICS_PORT, where the callback → ack histogram lives."""

from __future__ import annotations

import httpx
import msgspec

from tests.devices.helpers import eventually, first_message
from tests.ops.helpers import scrape_url, value
from tests.payments.helpers import callback_body, post_callback
from tests.payments.test_announcements import bound_soundbox, subscribed
from tests.support import PlatformFactory, free_port


async def test_a_broker_only_process_serves_its_figures_on_the_metrics_port(platform_factory: PlatformFactory) -> None:
    api = await platform_factory.start(roles=frozenset({"api"}))
    port = free_port()
    broker = await platform_factory.start(roles=frozenset({"broker", "worker"}), metrics_port=port)
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    async with httpx.AsyncClient(timeout=10) as http:
        before = await scrape_url(http, metrics_url, broker.platform)
        assert "qris_broker_sessions_connected" in {name for name, _ in before}
        # Only the figures and health there: no API on a broker node.
        assert (await http.get(f"http://127.0.0.1:{port}/admin/merchants")).status_code == 404
        assert (await http.get(f"http://127.0.0.1:{port}/health")).status_code == 200

        ids, device_id, secret = await bound_soundbox(api)
        async with broker.mqtt(device_id, secret) as device:
            await subscribed(device, device_id)
            assert (
                await post_callback(api, callback_body(amount=4_000, terminal_id=ids["terminal_id"]))
            ).status_code == 200
            message = await first_message(device, timeout=10)
            assert message is not None
            await device.publish(
                f"devices/{device_id}/uplink/payment/ack",
                msgspec.json.encode({"message_id": msgspec.json.decode(message.payload)["message_id"]}),
                qos=1,
            )

            async def acked() -> bool:
                now = await scrape_url(http, metrics_url, broker.platform)
                return value(now, "qris_announcement_ack_seconds_count") > value(
                    before, "qris_announcement_ack_seconds_count"
                )

            assert await eventually(acked)
            during = await scrape_url(http, metrics_url, broker.platform)
            assert value(during, "qris_broker_sessions_connected") == 1
    assert value(during, "qris_announcements_total", event="sent") >= 1
    # The callback was counted where it was answered: the API process.
    assert value(await scrape_url(api.http, "/metrics", api.platform), "qris_payments_recorded_total") == 1
