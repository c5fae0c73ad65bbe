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

    async def disconnect_client(self, client_id: str) -> bool:
        """Close the live connection of ``client_id`` (e.g. its credential was rotated).

        The client's message loop then runs amqtt's normal disconnect handling
        (handler stopped, socket closed, ``broker_client_disconnected`` fired).
        Returns False when no connected session has that id.
        """
        session, handler = self.sessions.get(client_id, (None, None))
        if session is None or handler is None or not session.transitions.is_connected():
            return False
        await handler.handle_connection_closed()
        return True
