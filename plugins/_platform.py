"""How an amqtt plugin reaches the platform (database, settings) and the broker.

amqtt 0.12.1 gives each plugin a copy of the ``BrokerContext``, which keeps
the broker only as ``_broker_instance``. ``PlatformBroker`` sets
``self.platform`` before amqtt builds the plugins, so the context's broker
is ours; this is the one place that touches that attribute (pinned amqtt).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from amqtt.broker import BrokerContext

if TYPE_CHECKING:
    from qris_soundbox.broker.server import PlatformBroker
    from qris_soundbox.core.context import PlatformContext


def broker_of(context: object) -> PlatformBroker:
    broker = getattr(context, "_broker_instance", None) if isinstance(context, BrokerContext) else None
    if broker is None or not hasattr(broker, "platform"):
        raise RuntimeError("the project's plugins run only inside qris_soundbox.broker.server.PlatformBroker")
    return broker


def platform_of(context: object) -> PlatformContext:
    return broker_of(context).platform
