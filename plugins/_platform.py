"""How an amqtt plugin reaches the platform (database, settings) and the broker.

amqtt 0.12.1 gives each plugin a copy of the ``BrokerContext``, which keeps
the broker privately (``broker/amqtt_compat.py``). ``PlatformBroker`` sets
``self.platform`` before amqtt builds the plugins, so the context's broker
is ours; plugins reach it only through this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from amqtt.broker import BrokerContext
from amqtt.plugins.base import BasePlugin

from qris_soundbox.broker.amqtt_compat import broker_of_context

if TYPE_CHECKING:
    from qris_soundbox.broker.server import PlatformBroker
    from qris_soundbox.core.context import PlatformContext


def broker_of(context: object) -> PlatformBroker:
    broker = broker_of_context(context)
    if broker is None or not hasattr(broker, "platform"):
        raise RuntimeError("the project's plugins run only inside qris_soundbox.broker.server.PlatformBroker")
    return cast("PlatformBroker", broker)


def platform_of_broker_context(context: object) -> PlatformContext:
    return broker_of(context).platform


class PlatformPlugin(BasePlugin[BrokerContext]):
    """An event plugin of ours: ``self.platform`` is the running platform."""

    @dataclass
    class Config:
        pass

    def __init__(self, context: BrokerContext) -> None:
        super().__init__(context)
        self.platform = platform_of_broker_context(context)
