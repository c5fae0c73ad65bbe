"""The project's broker: amqtt's ``Broker`` carrying the platform context.

Plugins are built by amqtt's plugin manager inside ``Broker.__init__``; they
reach the database and settings through ``broker.platform`` (see
``plugins``), which is why it is set before ``super().__init__``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from amqtt.broker import Broker

if TYPE_CHECKING:
    from qris_soundbox.core.context import PlatformContext


class PlatformBroker(Broker):
    def __init__(self, config: dict[str, Any], platform: PlatformContext) -> None:
        self.platform = platform
        super().__init__(config)

    @property
    def is_running(self) -> bool:
        return self.transitions.state == "started"

    def is_device_online(self, client_id: str) -> bool:
        session = self._sessions.get(client_id, (None, None))[0]
        return session is not None and session.transitions.is_connected()

    async def deliver_downlink(self, client_id: str, topic: str, payload: bytes) -> None:
        """QoS 1 to the device's own downlink topic (at-least-once; the outbox retries until acked)."""
        await self.internal_message_broadcast(topic, payload, qos=1)
