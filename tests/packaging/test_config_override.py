"""The packaged broker.yaml and ACL rules give way to files named by path (SPEC §12)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from qris_soundbox.broker.config import DEFAULT_CONFIG_PATH
from qris_soundbox.core.devices.acl import DEFAULT_RULES_PATH, AclRules
from qris_soundbox.tools.serve import StartupError
from tests.devices.helpers import provisioned_device
from tests.support import PlatformFactory, free_port
from tests.tools.helpers import LiveCli

ACL_PLUGIN = "qris_soundbox.plugins.acl.DeviceTopicAclPlugin"
EXTRA_GRANT = {"action": "subscribe", "topic": "devices/%u/extra/#"}


def _broker_config(directory: Path, *, rules_file: Path | None = None, bind: str | None = None) -> Path:
    """The packaged broker.yaml, with the ACL plugin reading ``rules_file`` and the default listener on ``bind``."""
    config = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    if rules_file is not None:
        config["plugins"][ACL_PLUGIN] = {"rules_file": str(rules_file)}
    if bind is not None:
        config["listeners"]["default"]["bind"] = bind
    path = directory / "broker.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def test_acl_rules_named_in_a_broker_config_given_by_path_are_the_ones_applied(
    platform_factory: PlatformFactory, tmp_path: Path
) -> None:
    rules = yaml.safe_load(DEFAULT_RULES_PATH.read_text())
    rules["rules"].append(EXTRA_GRANT)
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(rules))
    running = await platform_factory.start(broker_config=_broker_config(tmp_path, rules_file=rules_file))

    device_id, secret = await provisioned_device(running)
    extra = f"devices/{device_id}/extra/anything"
    assert not AclRules.load().allows("subscribe", device_id, extra)  # the packaged rules refuse it
    async with running.mqtt(device_id, secret) as client:
        granted = (await client.subscribe(extra, qos=1))[0]
    assert getattr(granted, "value", granted) == 1
    await platform_factory.stop(running)


async def test_a_rules_file_that_cannot_be_read_stops_start_up_naming_it(
    platform_factory: PlatformFactory, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-rules.yaml"
    with pytest.raises(StartupError, match=str(missing)):
        await platform_factory.start(broker_config=_broker_config(tmp_path, rules_file=missing))


async def test_serve_takes_the_broker_listener_from_the_config_given_on_the_command_line(
    tmp_path: Path, database_url: str
) -> None:
    mqtt_port = free_port()
    config = _broker_config(tmp_path, bind=f"127.0.0.1:{mqtt_port}")
    serve = await LiveCli.start(
        "serve", "--broker-config", str(config), "--http-port", str(free_port()), env={"DATABASE_URL": database_url}
    )
    try:
        await serve.wait_for(lambda line: line.strip().startswith("mqtt"), timeout=60)
    finally:
        code, lines = await serve.interrupt()
        serve.kill()
    assert f"mqtt://127.0.0.1:{mqtt_port}" in "\n".join(lines)
    assert code == 0, "\n".join(lines)
