"""Two broker nodes on one PostgreSQL (two platforms in this process, each with its own broker and
instance id): a payment reaches the device on whichever node holds its session, a device that moves
gets what is pending on the new node, one live session per client id across nodes, and the devices of a
silent node are marked offline by the live one."""

from __future__ import annotations

import asyncio
import uuid

import aiomqtt
import msgspec
import pytest

from qris_soundbox.core import outbox
from qris_soundbox.tools.api import AdminApi, DeviceCredential, callback_body, callback_headers
from tests.broker.raw_client import WAIT_S
from tests.devices.helpers import eventually
from tests.support import ADMIN_TOKEN, WEBHOOK_SECRET, PlatformFactory, RunningPlatform

# Long enough for any resend of an acknowledged announcement to show up (first back-off 5 s).
QUIET_S = 6.0


@pytest.fixture
async def nodes(platform_factory: PlatformFactory) -> tuple[RunningPlatform, RunningPlatform]:
    # A quick heartbeat, so that a silent node is noticed within a test's patience.
    first = await platform_factory.start(instance_heartbeat_interval_ms=200)
    second = await platform_factory.start(instance_heartbeat_interval_ms=200)
    return first, second


async def provisioned(running: RunningPlatform) -> tuple[DeviceCredential, str]:
    async with AdminApi(running.http_url, ADMIN_TOKEN) as api:
        onboarded = await api.onboard_terminal(f"Warung {uuid.uuid4().hex[:6]}")
        terminal_id = onboarded["terminal"]["id"]
        credential = await api.provision_device(f"SN-NODE-{uuid.uuid4().hex[:10]}", "generic-audio", terminal_id)
    return credential, terminal_id


def device_client(node: RunningPlatform, credential: DeviceCredential, password: str | None = None) -> aiomqtt.Client:
    return aiomqtt.Client(
        node.mqtt_host,
        node.mqtt_port,
        username=credential.device_id,
        password=password or credential.secret,
        identifier=credential.device_id,
        timeout=5,
    )


async def pay(node: RunningPlatform, terminal_id: str, amount: int) -> str:
    body = callback_body(amount=amount, terminal_id=terminal_id)
    raw = msgspec.json.encode(body)
    response = await node.http.post(
        "/integrations/qris/callback", content=raw, headers=callback_headers(WEBHOOK_SECRET, raw)
    )
    assert response.status_code == 200, response.text
    return str(response.json()["transaction_id"])


async def presence(node: RunningPlatform, device_id: str) -> tuple[bool, str | None]:
    row = await node.platform.db.pool.fetchrow(
        "SELECT online, broker_instance_id FROM devices WHERE id = $1", device_id
    )
    assert row is not None
    return row["online"], row["broker_instance_id"]


async def test_a_payment_taken_on_one_node_is_announced_by_the_node_holding_the_device(
    nodes: tuple[RunningPlatform, RunningPlatform],
) -> None:
    api_node, device_node = nodes
    credential, terminal_id = await provisioned(api_node)
    async with device_client(device_node, credential) as client:
        await client.subscribe(f"devices/{credential.device_id}/downlink/#", qos=1)
        assert await eventually(lambda: _online_on(device_node, credential.device_id), WAIT_S)
        transaction_id = await pay(api_node, terminal_id, 25_000)
        async with asyncio.timeout(WAIT_S):
            message = await anext(aiter(client.messages))
        assert msgspec.json.decode(message.payload)["transaction_id"] == transaction_id


async def test_a_node_leaves_the_due_rows_of_a_device_online_elsewhere_to_that_node(
    nodes: tuple[RunningPlatform, RunningPlatform],
) -> None:
    first, second = nodes
    held_elsewhere, terminal_id = await provisioned(first)
    offline, other_terminal = await provisioned(first)
    # The device hears its payment on the second node but never acknowledges it: the row is due again later.
    async with device_client(second, held_elsewhere) as client:
        await client.subscribe(f"devices/{held_elsewhere.device_id}/downlink/#", qos=1)
        assert await eventually(lambda: _online_on(second, held_elsewhere.device_id), WAIT_S)
        await pay(first, terminal_id, 10_000)
        async with asyncio.timeout(WAIT_S):
            await anext(aiter(client.messages))
        await pay(first, other_terminal, 12_000)  # for a device that is online nowhere
        db = first.platform.db
        await db.pool.execute(
            "UPDATE device_outbox SET next_attempt_at = now() WHERE device_id = ANY($1::text[])",
            [held_elsewhere.device_id, offline.device_id],
        )
        seen_by_first = await outbox.devices_with_due_downlinks(db, first.platform.instance_id, 500)
        seen_by_second = await outbox.devices_with_due_downlinks(db, second.platform.instance_id, 500)
    assert held_elsewhere.device_id not in seen_by_first  # neither deferred nor claimed by the first node
    assert held_elsewhere.device_id in seen_by_second
    assert offline.device_id in seen_by_first and offline.device_id in seen_by_second  # deferred by either


async def test_a_device_that_moves_gets_what_is_pending_on_the_new_node_once_each(
    nodes: tuple[RunningPlatform, RunningPlatform],
) -> None:
    first, second = nodes
    credential, terminal_id = await provisioned(first)
    async with device_client(first, credential) as client:
        await client.subscribe(f"devices/{credential.device_id}/downlink/#", qos=1)
        assert await eventually(lambda: _online_on(first, credential.device_id), WAIT_S)
    # Gone from the first node; the payments arrive while it is between nodes.
    paid = {await pay(first, terminal_id, 20_000 + index) for index in range(3)}
    heard: dict[str, list[str]] = {}
    async with device_client(second, credential) as client:
        await client.subscribe(f"devices/{credential.device_id}/downlink/#", qos=1)

        async def listen() -> None:
            async for message in client.messages:
                body = msgspec.json.decode(message.payload)
                heard.setdefault(body["transaction_id"], []).append(body["message_id"])
                ack = msgspec.json.encode({"message_id": body["message_id"]})
                await client.publish(f"devices/{credential.device_id}/uplink/payment/ack", ack, qos=1)

        listening = asyncio.create_task(listen())
        try:
            assert await eventually(lambda: _heard(heard, paid), WAIT_S)
            await asyncio.sleep(QUIET_S)
        finally:
            listening.cancel()
    assert set(heard) == paid
    assert all(len(ids) == 1 for ids in heard.values()), heard
    assert await eventually(lambda: _offline(first, credential.device_id), WAIT_S)
    assert (await presence(first, credential.device_id))[1] == second.platform.instance_id


async def test_one_live_session_per_client_id_across_nodes_the_authenticated_one(
    nodes: tuple[RunningPlatform, RunningPlatform],
) -> None:
    first, second = nodes
    credential, _ = await provisioned(first)
    device_id = credential.device_id
    async with device_client(first, credential) as on_first:
        await on_first.subscribe(f"devices/{device_id}/downlink/#", qos=1)
        assert await eventually(lambda: _online_on(first, device_id), WAIT_S)

        # A CONNECT on the other node with a wrong secret is refused and disturbs nothing here.
        with pytest.raises(aiomqtt.MqttCodeError):
            async with device_client(second, credential, password="not-the-secret"):
                pass
        await asyncio.sleep(1.0)
        await on_first.publish(f"devices/{device_id}/uplink/heartbeat", b'{"battery_level": 90}', qos=1)
        assert await presence(first, device_id) == (True, first.platform.instance_id)

        # The device reconnects through the other node (the old TCP connection half-open): the
        # authenticated newcomer wins and the first node closes its copy.
        async with device_client(second, credential) as on_second:
            await on_second.subscribe(f"devices/{device_id}/downlink/#", qos=1)
            assert await eventually(lambda: _closed(first, device_id), WAIT_S), "the first node kept its copy"
            assert second.platform.broker is not None and second.platform.broker.is_device_online(device_id)
            await asyncio.sleep(0.5)  # the first node's disconnect write lands after the move
            assert await presence(first, device_id) == (True, second.platform.instance_id)
            await on_second.publish(f"devices/{device_id}/uplink/heartbeat", b'{"battery_level": 80}', qos=1)
        with pytest.raises(aiomqtt.MqttError):
            await on_first.publish(f"devices/{device_id}/uplink/heartbeat", b"{}", qos=1, timeout=2)


async def test_a_move_whose_notification_was_missed_is_caught_when_the_listener_reconnects(
    nodes: tuple[RunningPlatform, RunningPlatform],
) -> None:
    first, _ = nodes
    credential, _ = await provisioned(first)
    device_id = credential.device_id
    async with device_client(first, credential) as client:
        await client.subscribe(f"devices/{device_id}/downlink/#", qos=1)
        assert await eventually(lambda: _online_on(first, device_id), WAIT_S)
        db = first.platform.db.pool
        # The device moved to a live node whose NOTIFY this one never heard (its listening connection was down).
        await db.execute(
            "INSERT INTO runtime_instances (id, hostname, pid, roles, alive_until)"
            " VALUES ('another-node', 'elsewhere', 1, '{broker}', now() + interval '1 hour')"
        )
        await db.execute(
            "UPDATE devices SET broker_instance_id = 'another-node', presence_changed_at = now() WHERE id = $1",
            device_id,
        )
        await asyncio.sleep(0.5)
        assert not await _closed(first, device_id)  # nothing told it yet
        await db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE pid <> pg_backend_pid() AND query ILIKE 'LISTEN%device_sessions%'"
        )
        assert await eventually(lambda: _closed(first, device_id), 3 * WAIT_S), "the resync kept the moved copy"


async def test_the_devices_of_a_silent_node_are_marked_offline_by_a_live_one(
    platform_factory: PlatformFactory,
) -> None:
    # The first node reports in every 10 minutes (alive for 30); the test makes its time run out.
    silent = await platform_factory.start(instance_heartbeat_interval_ms=600_000)
    live = await platform_factory.start(instance_heartbeat_interval_ms=200)
    credential, _ = await provisioned(silent)
    async with device_client(silent, credential) as client:
        await client.subscribe(f"devices/{credential.device_id}/downlink/#", qos=1)
        assert await eventually(lambda: _online_on(silent, credential.device_id), WAIT_S)
        await asyncio.sleep(1.0)
        assert (await presence(live, credential.device_id))[0], "marked offline while its node still reports in"
        await live.platform.db.pool.execute(
            "UPDATE runtime_instances SET alive_until = now() - interval '1 second' WHERE id = $1",
            silent.platform.instance_id,
        )
        assert await eventually(lambda: _offline(live, credential.device_id), WAIT_S)


async def _online_on(node: RunningPlatform, device_id: str) -> bool:
    return await presence(node, device_id) == (True, node.platform.instance_id)


async def _offline(node: RunningPlatform, device_id: str) -> bool:
    return not (await presence(node, device_id))[0]


async def _closed(node: RunningPlatform, device_id: str) -> bool:
    return node.platform.broker is not None and not node.platform.broker.is_device_online(device_id)


async def _heard(heard: dict[str, list[str]], paid: set[str]) -> bool:
    return paid <= set(heard)
