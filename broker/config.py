"""Loading ``broker.yaml`` and applying the environment's and the command line's listener choices."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from qris_soundbox.broker.tls import TlsConfigError, TlsFiles, server_context

log = logging.getLogger(__name__)

# The broker.yaml that ships inside the package: in a checkout, broker/broker.yaml is a
# symlink to the repository root's file (the one to edit); a wheel carries a copy of it.
# `serve --broker-config PATH` replaces it.
DEFAULT_CONFIG_PATH = Path(str(resources.files("qris_soundbox.broker").joinpath("broker.yaml")))
DEFAULT_MQTT_PORT = 1883
DEFAULT_MQTTS_PORT = 8883
# broker.yaml's listener for MQTT over TLS (amqtt's listener keys: bind, certfile, keyfile, cafile).
TLS_LISTENER = "tls"
# A listener key of ours, taken out before amqtt sees the listener: ``enabled: false`` on ``default``
# turns plain MQTT off (as MQTT_PLAIN_ENABLED=false does).
ENABLED_KEY = "enabled"


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
        if not isinstance(listener, dict):
            raise BrokerConfigError(f"{path}: listener {name!r} must be a mapping")
        if listener.get("type", "tcp") != "tcp":
            raise BrokerConfigError(f"{path}: listener {name!r}: only 'tcp' listeners are served (docs/broker.md)")
        if not isinstance(listener.get(ENABLED_KEY, True), bool):
            raise BrokerConfigError(f"{path}: listener {name!r}: '{ENABLED_KEY}' is true or false")
    ProtocolSettings.from_config(config.get(PROTOCOL_SECTION))
    return config


def _bind_of(listener: dict[str, Any], default_port: int) -> tuple[str, int]:
    bind = str(listener.get("bind", f"0.0.0.0:{default_port}"))
    host, _, port = bind.rpartition(":")
    return host or "0.0.0.0", int(port or default_port)


def default_bind(config: dict[str, Any]) -> tuple[str, int]:
    return _bind_of(config["listeners"]["default"], DEFAULT_MQTT_PORT)


@dataclass(frozen=True, slots=True)
class ListenerChoices:
    """What the environment and the command line say about the listeners; None leaves broker.yaml's word."""

    host: str | None = None
    port: int | None = None
    plain_enabled: bool | None = None
    tls_port: int | None = None
    tls_certfile: str | None = None
    tls_keyfile: str | None = None
    tls_client_cafile: str | None = None


@dataclass(frozen=True, slots=True)
class Listeners:
    """The listeners a broker serves: plain MQTT and MQTT over TLS, each (host, port) or None."""

    plain: tuple[str, int] | None
    tls: tuple[str, int] | None


def resolve_listeners(config: dict[str, Any], choices: ListenerChoices) -> tuple[dict[str, Any], Listeners]:
    """amqtt's configuration for the listeners ``choices`` and ``config`` (broker.yaml) ask for.

    Plain MQTT is served on ``default`` unless turned off. TLS is served when a
    certificate and key are given (environment first, then the ``tls``
    listener of broker.yaml), on the TLS port (``choices``, else that
    listener's bind, else 8883). The certificate, key and client CA are loaded
    once here, so a file that cannot be used stops start-up with its name. amqtt
    requires a listener named ``default``: with plain MQTT off, the TLS
    listener takes that name.
    """
    listeners = {name: dict(listener) for name, listener in config["listeners"].items()}
    default = listeners["default"]
    plain_on = default.pop(ENABLED_KEY, True) if choices.plain_enabled is None else choices.plain_enabled
    host, port = default_bind(config)
    host, port = choices.host or host, choices.port or port
    default["bind"] = f"{host}:{port}"

    tls = listeners.pop(TLS_LISTENER, None) or {}
    tls.pop(ENABLED_KEY, None)
    certfile = choices.tls_certfile or tls.get("certfile")
    keyfile = choices.tls_keyfile or tls.get("keyfile")
    client_cafile = choices.tls_client_cafile or tls.get("cafile")
    if (certfile is None) != (keyfile is None):
        raise BrokerConfigError(
            "MQTT over TLS needs both a certificate and its key (MQTT_TLS_CERT_FILE and MQTT_TLS_KEY_FILE,"
            f" or certfile and keyfile of the '{TLS_LISTENER}' listener)"
        )
    if client_cafile is not None and certfile is None:
        raise BrokerConfigError(
            "MQTT_TLS_CLIENT_CA_FILE needs MQTT over TLS: set MQTT_TLS_CERT_FILE and MQTT_TLS_KEY_FILE"
        )
    tls_files = None
    tls_address = None
    if certfile is not None and keyfile is not None:
        tls_files = TlsFiles(str(certfile), str(keyfile), None if client_cafile is None else str(client_cafile))
        try:
            server_context(tls_files)
        except TlsConfigError as exc:
            raise BrokerConfigError(f"MQTT over TLS: {exc}") from None
        tls_host, tls_port = _bind_of(tls, DEFAULT_MQTTS_PORT)
        tls_address = (choices.host or (tls_host if "bind" in tls else host), choices.tls_port or tls_port)
        if plain_on and tls_address == (host, port):
            raise BrokerConfigError(f"MQTT and MQTT over TLS cannot share {host}:{port}")
        tls |= {
            "type": "tcp",
            "bind": f"{tls_address[0]}:{tls_address[1]}",
            "ssl": True,
            "certfile": tls_files.certfile,
            "keyfile": tls_files.keyfile,
            "cafile": tls_files.client_cafile,
        }
        tls.setdefault("max_connections", default.get("max_connections", -1))
    if plain_on and tls_files is not None and tls_files.client_cafile is not None:
        # Mutual TLS makes a certificate part of a device's identity, but only on the TLS listener.
        log.warning(
            f"mutual TLS is configured, yet plain MQTT on {host}:{port} still accepts a device secret alone;"
            " set MQTT_PLAIN_ENABLED=false to require a client certificate of every device"
        )
    if not plain_on:
        if tls_address is None:
            raise BrokerConfigError(
                "plain MQTT is off (MQTT_PLAIN_ENABLED=false) and no TLS certificate is configured"
                " (MQTT_TLS_CERT_FILE, MQTT_TLS_KEY_FILE): the broker would listen nowhere"
            )
        listeners["default"] = tls
    elif tls_address is not None:
        listeners[TLS_LISTENER] = tls
    return {**config, "listeners": listeners}, Listeners(plain=(host, port) if plain_on else None, tls=tls_address)
