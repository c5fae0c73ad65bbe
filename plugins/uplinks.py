"""amqtt plugin: device uplinks (``devices/<id>/uplink/<suffix>``) to the domain core.

The table below is the one place a new uplink is wired in: one line per
topic suffix. Handlers take ``(platform, Uplink)``, decode with
``core.devices.uplinks.decode`` and raise ``MalformedUplink`` (or any
``DomainError``) for bad payloads: the dispatcher logs and drops those, so a
device can never crash the broker.
"""

from __future__ import annotations

from datetime import UTC, datetime

from amqtt.broker import BrokerContext
from amqtt.session import ApplicationMessage

from qris_soundbox.core.devices import commands, config_shadow, uplinks
from qris_soundbox.core.devices.uplinks import UplinkHandler
from qris_soundbox.core.payments import device_requests
from qris_soundbox.plugins._platform import PlatformPlugin

HANDLERS: dict[str, UplinkHandler] = {
    "heartbeat": uplinks.heartbeat_uplink,
    "payment/ack": device_requests.payment_ack_uplink,
    "dynamic-qr/request": device_requests.dynamic_qr_request_uplink,
    "config/ack": config_shadow.ack_uplink,
    "command/ack": commands.ack_uplink,
}


class DeviceUplinksPlugin(PlatformPlugin):
    def __init__(self, context: BrokerContext) -> None:
        super().__init__(context)
        # The broker holds each device to a budget per kind of uplink: one per handler, the rest as one.
        self.platform.uplink_budget.track(HANDLERS)

    async def close(self) -> None:
        # What the last uplinks left pending is written before the broker's database goes.
        await self.platform.uplink_writes.close()
        await self.platform.uplink_budget.dropped.close()

    async def on_broker_message_broadcast(self, *, client_id: str, message: ApplicationMessage) -> None:
        # Fired only for messages the ACL let through (a refused publish never gets here).
        await uplinks.dispatch(
            self.platform,
            HANDLERS,
            client_id=client_id,
            topic=message.topic,
            payload=bytes(message.data or b""),
            qos=message.qos,
            received_at=datetime.now(UTC),
        )
