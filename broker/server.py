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
