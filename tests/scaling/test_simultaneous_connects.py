"""One live session per client id across broker nodes when a device's CONNECTs land on two nodes at
once (issue 23, finding 4).

Before: 8 of 10 simultaneous CONNECTs of one device to two nodes kept both sessions, payments were
split between the copies, and once the registry showed the device offline while a copy was live.
The newer node's presence batch could commit first: the older node's write then lost (an older event
never overwrites a newer one) and nobody told the older node to close its copy; or both batches read
the device's state from snapshots taken before the other committed, and neither saw the other.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiomqtt
import pytest
import yaml

from qris_soundbox.broker.config import DEFAULT_CONFIG_PATH
from qris_soundbox.tools.api import DeviceCredential
from tests.broker.raw_client import WAIT_S
from tests.devices.helpers import eventually
from tests.scaling.test_broker_nodes import device_client, presence, provisioned
from tests.support import PlatformFactory, RunningPlatform

PRESENCE_PLUGIN = "qris_soundbox.plugins.presence.DevicePresencePlugin"
TRIALS = 10


def _slow_presence_config(directory: Path, flush_after_s: float) -> Path:
    """broker.yaml with the presence writer flushing only every ``flush_after_s``."""
    config = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    config["plugins"][PRESENCE_PLUGIN] = {"flush_after_s": flush_after_s}
    path = directory / "broker-slow-presence.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _live_on(node: RunningPlatform, device_id: str) -> bool:
    return node.platform.broker is not None and node.platform.broker.is_device_online(device_id)


async def _one_session_and_the_registry_agrees(nodes: tuple[RunningPlatform, RunningPlatform], device_id: str) -> bool:
    holders = [node for node in nodes if _live_on(node, device_id)]
    if len(holders) != 1:
        return False
    return await presence(nodes[0], device_id) == (True, holders[0].platform.instance_id)


@pytest.fixture
async def older_and_newer(
    platform_factory: PlatformFactory, tmp_path: Path
) -> tuple[RunningPlatform, RunningPlatform, DeviceCredential]:
    """Two nodes, the first writing its presence 1.5 s late (its batch commits after the second's), and a device."""
    older = await platform_factory.start(broker_config=_slow_presence_config(tmp_path, 1.5))
    newer = await platform_factory.start()
    credential, _ = await provisioned(older)
    return older, newer, credential


async def test_the_older_session_is_closed_when_the_newer_nodes_presence_commits_first(
    older_and_newer: tuple[RunningPlatform, RunningPlatform, DeviceCredential],
) -> None:
    # The older session connects first; the newer node's batch commits first.
    older, newer, credential = older_and_newer
    device_id = credential.device_id
    on_older, on_newer = device_client(older, credential), device_client(newer, credential)
    await on_older.__aenter__()
    try:
        await on_newer.__aenter__()
        try:
            assert await eventually(lambda: _one_session_and_the_registry_agrees((older, newer), device_id), WAIT_S), (
                f"live on the older node: {_live_on(older, device_id)}, on the newer: {_live_on(newer, device_id)},"
                f" registry: {await presence(older, device_id)}"
            )
            assert _live_on(newer, device_id), "the newer session was the one closed"
            # And it stays so once the older node's late write and its copy's disconnect have landed.
            await on_newer.publish(f"devices/{device_id}/uplink/heartbeat", b'{"battery_level": 70}', qos=1)
            assert await presence(older, device_id) == (True, newer.platform.instance_id)
        finally:
            await _leave(on_newer)
    finally:
        await _leave(on_older)


async def _leave(client: aiomqtt.Client) -> None:
    # A client whose connection its node closed raises on leaving: that is the point of the test.
    with contextlib.suppress(aiomqtt.MqttError):
        await client.__aexit__(None, None, None)


async def test_simultaneous_connects_to_two_nodes_leave_one_session_the_registry_naming_its_node(
    platform_factory: PlatformFactory,
) -> None:
    nodes = (await platform_factory.start(), await platform_factory.start())
    credential, _ = await provisioned(nodes[0])
    device_id = credential.device_id
    for trial in range(TRIALS):
        clients = [device_client(node, credential) for node in nodes]
        entered = await asyncio.gather(*(client.__aenter__() for client in clients), return_exceptions=True)
        try:
            assert await eventually(lambda: _one_session_and_the_registry_agrees(nodes, device_id), WAIT_S), (
                f"trial {trial}: connects {entered}, live on {[_live_on(n, device_id) for n in nodes]},"
                f" registry {await presence(nodes[0], device_id)}"
            )
        finally:
            for client, outcome in zip(clients, entered, strict=True):
                if not isinstance(outcome, BaseException):
                    await _leave(client)
        assert await eventually(lambda: _offline_everywhere(nodes, device_id), WAIT_S), f"trial {trial}: still online"


async def _offline_everywhere(nodes: tuple[RunningPlatform, RunningPlatform], device_id: str) -> bool:
    return not any(_live_on(node, device_id) for node in nodes) and not (await presence(nodes[0], device_id))[0]


async def test_a_live_copy_is_never_shown_offline_when_the_newer_session_has_already_ended(
    older_and_newer: tuple[RunningPlatform, RunningPlatform, DeviceCredential],
) -> None:
    # The newer session comes and goes before the older node writes its presence: the registry's newest
    # event is then the newer session's offline, and the older node's copy is still live.
    older, newer, credential = older_and_newer
    device_id = credential.device_id
    on_older = device_client(older, credential)
    await on_older.__aenter__()
    try:
        async with device_client(newer, credential) as on_newer:
            await on_newer.publish(f"devices/{device_id}/uplink/heartbeat", b"{}", qos=1)
        assert await eventually(lambda: _one_session_and_the_registry_agrees((older, newer), device_id), WAIT_S), (
            f"live on the older node: {_live_on(older, device_id)}, registry: {await presence(older, device_id)}"
        )
    finally:
        await _leave(on_older)
