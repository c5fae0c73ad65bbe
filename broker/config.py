"""Loading ``broker.yaml`` and applying the command line's host/port."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# The repository root's broker.yaml; the project is installed editable (make run).
DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "broker.yaml"
DEFAULT_MQTT_PORT = 1883


class BrokerConfigError(Exception):
    pass


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
