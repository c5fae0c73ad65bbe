"""Runs the outbox publisher inside the broker: starts it with the broker,
wakes a device's queue when it subscribes to its downlinks, stops it on close."""

from __future__ import annotations

import re
from dataclasses import dataclass

from amqtt.contexts import BaseContext
from amqtt.plugins.base import BasePlugin

from qris_soundbox.broker.outbox_publisher import OutboxPublisher
from qris_soundbox.plugins._platform import broker_of

_DOWNLINK_FILTER = re.compile(r"^devices/([^/+#]+)/downlink/")


class OutboxPlugin(BasePlugin[BaseContext]):
    @dataclass
    class Config:
        """No options: delivery timings live in broker/outbox_publisher.py."""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self._publisher: OutboxPublisher | None = None

    async def on_broker_post_start(self) -> None:
        broker = broker_of(self.context)
        signer = broker.platform.announcement_signer
        if signer is None:
            raise RuntimeError("the outbox needs the announcement signing key: serve loads it before the broker")
        self._publisher = OutboxPublisher(
            broker.platform.db, broker, broker.platform.instance_id, broker.platform.metrics, signer
        )
        await self._publisher.start()

    async def on_broker_client_subscribed(self, *, client_id: str, topic: str, qos: int) -> None:
        match = _DOWNLINK_FILTER.match(topic)
        if self._publisher is not None and match and match.group(1) == client_id:
            self._publisher.device_ready(client_id)

    async def close(self) -> None:
        if self._publisher is not None:
            await self._publisher.stop()
            self._publisher = None
