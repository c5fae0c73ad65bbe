"""Test-only amqtt plugin: records the broker events the platform's plugins listen to, with their arguments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amqtt.plugins.base import BasePlugin
from amqtt.session import ApplicationMessage, Session


class RecordingPlugin(BasePlugin):  # type: ignore[type-arg]
    @dataclass
    class Config:
        pass

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.events: list[tuple[Any, ...]] = []

    async def on_broker_client_connected(self, *, client_id: str, client_session: Session) -> None:
        self.events.append(("connected", client_id, client_session.client_id))

    async def on_broker_client_subscribed(self, *, client_id: str, topic: str, qos: int) -> None:
        self.events.append(("subscribed", client_id, topic, qos))

    async def on_broker_client_unsubscribed(self, *, client_id: str, topic: str) -> None:
        self.events.append(("unsubscribed", client_id, topic))

    async def on_broker_message_received(self, *, client_id: str, message: ApplicationMessage) -> None:
        self.events.append(("received", client_id, message.topic, bytes(message.data)))

    async def on_broker_message_broadcast(self, *, client_id: str, message: ApplicationMessage) -> None:
        self.events.append(("broadcast", client_id, message.topic, bytes(message.data)))

    async def on_broker_client_disconnected(self, *, client_id: str, client_session: Session) -> None:
        self.events.append(("disconnected", client_id, client_session.client_id))

    def of(self, client_id: str) -> list[tuple[Any, ...]]:
        return [event for event in self.events if event[1] == client_id]
