"""Device uplinks: topic parsing, tracing, bounded decoding and dispatch.

The broker's uplink plugin (``plugins/uplinks.py``) owns the handler table
(topic suffix → handler); this module does what every uplink needs: check the
topic belongs to the publishing device, trace it, refuse oversized or
malformed payloads (logged, never raised into the broker) and call the handler.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

import msgspec

from qris_soundbox.core.devices import presence
from qris_soundbox.core.devices.errors import MalformedUplink
from qris_soundbox.core.devices.schemas import Heartbeat
from qris_soundbox.core.errors import DomainError
from qris_soundbox.core.logging import device_id_var

if TYPE_CHECKING:
    from qris_soundbox.core.context import PlatformContext

log = logging.getLogger(__name__)
MAX_UPLINK_BYTES = 16 * 1024
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Uplink:
    device_id: str
    suffix: str  # the topic after devices/<id>/uplink/, e.g. "heartbeat", "payment/ack"
    topic: str
    payload: bytes
    qos: int | None
    received_at: datetime


UplinkHandler = Callable[["PlatformContext", Uplink], Awaitable[None]]


def parse_uplink_topic(topic: str) -> tuple[str, str] | None:
    """``devices/<id>/uplink/<suffix>`` → (id, suffix); anything else → None."""
    parts = topic.split("/", 3)
    if len(parts) != 4 or parts[0] != "devices" or parts[2] != "uplink" or not parts[1] or not parts[3]:
        return None
    return parts[1], parts[3]


def decode(payload: bytes, type_: type[T]) -> T:
    """A JSON payload as ``type_`` or ``MalformedUplink`` saying what is wrong."""
    try:
        return msgspec.json.decode(payload, type=type_)
    except msgspec.ValidationError as exc:
        raise MalformedUplink(f"invalid payload: {exc}") from None
    except msgspec.DecodeError as exc:
        raise MalformedUplink(f"payload is not JSON: {exc}") from None


async def dispatch(
    platform: PlatformContext,
    handlers: dict[str, UplinkHandler],
    *,
    client_id: str,
    topic: str,
    payload: bytes,
    qos: int | None,
    received_at: datetime,
) -> None:
    """Handle one published message; never raises."""
    parsed = parse_uplink_topic(topic)
    if parsed is None or parsed[0] != client_id:
        return  # not an uplink of this client (the ACL lets nothing else through)
    device_id, suffix = parsed
    token = device_id_var.set(device_id)
    try:
        platform.uplink_writes.trace_uplink(device_id, topic, payload, qos, received_at)
        if len(payload) > MAX_UPLINK_BYTES:
            log.warning(
                "oversized uplink ignored", extra={"topic": topic, "bytes": len(payload), "limit": MAX_UPLINK_BYTES}
            )
            return
        handler = handlers.get(suffix)
        if handler is None:
            log.warning("uplink on an unknown topic ignored", extra={"topic": topic})
            return
        await handler(platform, Uplink(device_id, suffix, topic, payload, qos, received_at))
    except MalformedUplink as exc:
        log.warning("malformed uplink ignored", extra={"topic": topic, "error": exc.message})
    except DomainError as exc:
        log.warning("uplink refused", extra={"topic": topic, "code": exc.code, "error": exc.message})
    except Exception:
        log.exception("uplink handler failed", extra={"topic": topic})
    finally:
        device_id_var.reset(token)


async def heartbeat_uplink(platform: PlatformContext, uplink: Uplink) -> None:
    """``devices/<id>/uplink/heartbeat``: checked as ``POST /device/heartbeat`` is, written with the node's
    other heartbeats (nobody waits for an answer)."""
    heartbeat = decode(uplink.payload, Heartbeat)
    presence.check_heartbeat(uplink.device_id, heartbeat)
    platform.uplink_writes.heartbeat(uplink.device_id, heartbeat, uplink.received_at)
