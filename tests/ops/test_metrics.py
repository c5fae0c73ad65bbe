"""``GET /metrics`` of a real platform: what a payment, a refused credential and a
forbidden topic do to the figures (real HTTP, real MQTT, real PostgreSQL)."""

from __future__ import annotations

import aiomqtt
import msgspec
import pytest

from qris_soundbox.core.context import PlatformContext
from qris_soundbox.core.db import Database
from tests.devices.helpers import eventually, first_message, provisioned_device
from tests.onboarding import onboarded_terminal
from tests.ops.helpers import names, scrape, value
from tests.payments.helpers import callback_body, post_callback
from tests.payments.test_announcements import bound_soundbox, subscribed
from tests.support import PlatformFactory, RunningPlatform, settings_for_tests

CALLBACK = {"route": "/integrations/qris/callback", "method": "POST", "status": "200"}


async def test_a_paid_and_acked_payment_moves_the_counters_and_the_latency_histogram(running: RunningPlatform) -> None:
    ids, device_id, secret = await bound_soundbox(running)
    before = await scrape(running)
    async with running.mqtt(device_id, secret) as device:
        await subscribed(device, device_id)
        paid = await post_callback(running, callback_body(amount=12_000, terminal_id=ids["terminal_id"]))
        assert paid.status_code == 200, paid.text
        message = await first_message(device, timeout=5)
        assert message is not None
        during = await scrape(running)

        async def fleet_online() -> bool:  # presence reaches the database in batches
            return value(await scrape(running), "qris_fleet_devices_online") >= 1

        assert await eventually(fleet_online)
        await device.publish(
            f"devices/{device_id}/uplink/payment/ack",
            msgspec.json.encode({"message_id": msgspec.json.decode(message.payload)["message_id"]}),
            qos=1,
        )

        async def acked() -> bool:
            return value(await scrape(running), "qris_announcements_total", event="acked") > value(
                before, "qris_announcements_total", event="acked"
            )

        assert await eventually(acked)
    after = await scrape(running)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("qris_callbacks_total", outcome="paid", reason="") == 1
    assert moved("qris_payments_recorded_total") == 1
    assert moved("qris_http_requests_total", **CALLBACK) == 1
    assert moved("qris_http_request_duration_seconds_count", route=CALLBACK["route"], method="POST") == 1
    assert moved("qris_announcements_total", event="sent") >= 1
    assert moved("qris_announcements_total", event="acked") == 1
    assert moved("qris_announcement_ack_seconds_count") == 1
    assert moved("qris_announcement_ack_seconds_sum") > 0
    assert moved("qris_broker_connects_total", result="accepted") == 1
    assert moved("qris_broker_messages_received_total") >= 1  # the ack
    assert moved("qris_broker_messages_sent_total") >= 1  # the announcement
    # While the device was connected: its session, and its announcement waiting for the ack.
    assert value(during, "qris_broker_sessions_connected") >= 1
    assert value(during, "qris_outbox_open") >= 1


async def test_a_duplicate_and_a_forged_callback_are_counted_by_outcome(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running, qris_ready=True)
    body = callback_body(amount=3_000, terminal_id=ids["terminal_id"])
    before = await scrape(running)
    assert (await post_callback(running, body)).status_code == 200
    assert (await post_callback(running, body)).json()["duplicate"] is True
    assert (await post_callback(running, body, secret="not-the-secret")).status_code == 401
    after = await scrape(running)
    for labels, count in (
        ({"outcome": "paid", "reason": ""}, 1),
        ({"outcome": "duplicate", "reason": ""}, 1),
        ({"outcome": "rejected", "reason": "invalid_signature"}, 1),
    ):
        assert value(after, "qris_callbacks_total", **labels) - value(before, "qris_callbacks_total", **labels) == count
    assert value(after, "qris_payments_recorded_total") - value(before, "qris_payments_recorded_total") == 1
    signature = {"channel": "http", "reason": "invalid_signature"}
    assert (
        value(after, "qris_auth_failures_total", **signature) - value(before, "qris_auth_failures_total", **signature)
        == 1
    )


async def test_refused_credentials_and_forbidden_topics_are_counted(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    before = await scrape(running)
    with pytest.raises(aiomqtt.MqttError):
        async with running.mqtt(device_id, "wrong-secret-of-the-device"):
            pass
    bearer = await running.http.get("/admin/merchants", headers={"Authorization": "Bearer nobody"})
    assert bearer.status_code == 401
    async with running.mqtt(device_id, secret) as device:
        await device.publish("devices/dev_someone_else/uplink/heartbeat", b"{}", qos=1)
        await device.subscribe("devices/dev_someone_else/downlink/#", qos=1)

        async def denied_both_ways() -> bool:
            now = await scrape(running)
            return all(
                value(now, "qris_broker_acl_denials_total", direction=d)
                > value(before, "qris_broker_acl_denials_total", direction=d)
                for d in ("publish", "subscribe")
            )

        assert await eventually(denied_both_ways)
    after = await scrape(running)
    for name, labels in (
        ("qris_auth_failures_total", {"channel": "mqtt", "reason": "bad_credentials"}),
        ("qris_auth_failures_total", {"channel": "http", "reason": "unauthorized"}),
        ("qris_broker_connects_total", {"result": "not_authorized"}),
    ):
        assert value(after, name, **labels) - value(before, name, **labels) == 1, (name, labels)
    assert (
        "qris_http_requests_total",
        frozenset({"route": "/admin/merchants", "method": "GET", "status": "401"}.items()),
    ) in after


async def test_unknown_paths_share_one_route_label(running: RunningPlatform) -> None:
    for path in ("/no/such/1", "/no/such/2"):
        assert (await running.http.get(path)).status_code == 404
    samples = await scrape(running)
    assert value(samples, "qris_http_requests_total", route="unmatched", method="GET", status="404") >= 2
    assert not any(dict(labels).get("route", "").startswith("/no/such") for _, labels in samples)


async def test_metrics_token_requires_a_bearer_and_registries_are_per_platform(
    running: RunningPlatform, platform_factory: PlatformFactory
) -> None:
    ids = await onboarded_terminal(running, qris_ready=True)
    assert (
        await post_callback(running, callback_body(amount=2_000, terminal_id=ids["terminal_id"]))
    ).status_code == 200
    guarded = await platform_factory.start(roles=frozenset({"api"}), metrics_token="scrape-token-123")
    try:
        assert (await guarded.http.get("/metrics")).status_code == 401
        wrong = await guarded.http.get("/metrics", headers={"Authorization": "Bearer scrape-token-12"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"
        samples = await scrape(guarded, headers={"Authorization": "Bearer scrape-token-123"})
        # An API-only process: no broker figures of its own, but the fleet from the database.
        assert "qris_broker_sessions_connected" not in names(samples)
        assert "qris_fleet_devices_online" in names(samples)
        # Its own registry: the other platform's traffic is not in it.
        assert value(samples, "qris_payments_recorded_total") == 0
        assert value(await scrape(running), "qris_payments_recorded_total") >= 1
    finally:
        await platform_factory.stop(guarded)


async def test_the_database_gauges_go_missing_while_the_database_cannot_be_reached(database_url: str) -> None:
    db = await Database.connect(database_url, min_size=1, max_size=1)
    platform = PlatformContext(settings_for_tests(database_url), db)
    try:
        metrics = platform.metrics
        metrics.database_cache_s = 0
        await metrics.refresh_database(platform)
        assert metrics.database_figures is not None
        await db.close()  # every later acquire fails, as during an outage
        await metrics.refresh_database(platform)
        assert metrics.database_figures is None
        metrics.snapshot_state()
        text = metrics.render().decode()
        assert "qris_fleet_devices_online" not in text and "qris_outbox_open" not in text
        assert "qris_payments_recorded_total" in text and "qris_db_pool_in_use" in text
    finally:
        platform.device_verifier.close()
