"""Loading ``broker.yaml`` and applying the command line's host/port."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

# The broker.yaml that ships inside the package: in a checkout, broker/broker.yaml is a
# symlink to the repository root's file (the one to edit); a wheel carries a copy of it.
# `serve --broker-config PATH` replaces it.
DEFAULT_CONFIG_PATH = Path(str(resources.files("qris_soundbox.broker").joinpath("broker.yaml")))
DEFAULT_MQTT_PORT = 1883


class BrokerConfigError(Exception):
    pass


# broker.yaml's section read by broker/protocol.py; amqtt's strict BrokerConfig must not see it.
PROTOCOL_SECTION = "protocol"
# MQTT's remaining-length field cannot express more (four bytes of seven bits).
MQTT_MAX_REMAINING_LENGTH = 268_435_455


@dataclass(frozen=True, slots=True)
class ProtocolSettings:
    """The packet path's limits (broker.yaml ``protocol:``); see docs/broker.md."""

    max_packet_size: int = 256 * 1024
    """Largest remaining length accepted; a larger packet closes the connection."""
    max_connect_size: int = 16 * 1024
    """Largest first packet (a CONNECT) accepted: what an unauthenticated client can make the broker hold."""
    connect_timeout: int = 10
    """Seconds a new TCP connection may take to send CONNECT."""
    retry_interval: int = 5
    """Seconds before an unacknowledged QoS 1 PUBLISH is sent again with DUP=1."""
    max_inflight_messages: int = 20
    """QoS 1 messages a session may have awaiting PUBACK; more wait in its queue (Mosquitto's name)."""
    max_queued_messages: int = 100
    """QoS 1 messages a session may hold beyond those in flight, connected or offline; more are dropped.
    Safe because the device outbox, not broker memory, is the durable store: it delivers them again."""

    @classmethod
    def from_config(cls, section: Any) -> ProtocolSettings:
        if section is None:
            return cls()
        names = cls.__dataclass_fields__
        if not isinstance(section, dict) or set(section) - set(names):
            raise BrokerConfigError(f"'{PROTOCOL_SECTION}' takes {', '.join(names)}")
        settings = cls(**section)
        for name in names:
            value = getattr(settings, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise BrokerConfigError(f"'{PROTOCOL_SECTION}.{name}' must be a positive integer, not {value!r}")
        if settings.max_packet_size > MQTT_MAX_REMAINING_LENGTH:
            raise BrokerConfigError(f"'{PROTOCOL_SECTION}.max_packet_size' is at most {MQTT_MAX_REMAINING_LENGTH}")
        return settings


def split_protocol_settings(config: dict[str, Any]) -> tuple[dict[str, Any], ProtocolSettings]:
    """amqtt's part of ``config`` and the packet path's settings."""
    rest = {key: value for key, value in config.items() if key != PROTOCOL_SECTION}
    return rest, ProtocolSettings.from_config(config.get(PROTOCOL_SECTION))


def load_broker_config(path: Path = DEFAULT_CONFIG_PATH) -> dict[str, Any]:
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise BrokerConfigError(f"cannot read broker config {path}: {exc}") from None
    if not isinstance(config, dict) or not isinstance(config.get("listeners", {}).get("default"), dict):
        raise BrokerConfigError(f"{path}: a 'listeners.default' section is required")
    if config.get("plugins") is None:
        # Without a 'plugins' key amqtt falls back to entry points, which include
        # its anonymous-allowing auth plugin: refuse rather than run open.
        raise BrokerConfigError(f"{path}: a 'plugins' section is required")
    for name, listener in config["listeners"].items():
        if isinstance(listener, dict) and listener.get("type", "tcp") != "tcp":
            raise BrokerConfigError(f"{path}: listener {name!r}: only 'tcp' listeners are served (docs/broker.md)")
    ProtocolSettings.from_config(config.get(PROTOCOL_SECTION))
    return config


def default_bind(config: dict[str, Any]) -> tuple[str, int]:
    bind = str(config["listeners"]["default"].get("bind", f"0.0.0.0:{DEFAULT_MQTT_PORT}"))
    host, _, port = bind.rpartition(":")
    return host or "0.0.0.0", int(port or DEFAULT_MQTT_PORT)


def with_bind(config: dict[str, Any], host: str, port: int) -> dict[str, Any]:
    """A copy of ``config`` whose default listener binds ``host:port``."""
    listeners = {name: dict(listener) for name, listener in config["listeners"].items()}
    listeners["default"]["bind"] = f"{host}:{port}"
    return {**config, "listeners": listeners}
