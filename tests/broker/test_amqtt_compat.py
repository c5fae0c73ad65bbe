"""The installed amqtt still has every internal name the project relies on, with the shape it relies on.

``broker/amqtt_compat.py`` lists them; when this fails after an amqtt
upgrade, that file (and the overrides it names) is what to re-read.
"""

from __future__ import annotations

import asyncio
import inspect

import pytest
from amqtt.broker import Broker, BrokerContext
from amqtt.events import BrokerEvents
from amqtt.session import Session

from qris_soundbox.broker import amqtt_compat
from qris_soundbox.broker.server import PlatformBroker
from qris_soundbox.broker.session import DeviceSession


@pytest.mark.parametrize("name", sorted(amqtt_compat.BROKER_METHODS))
def test_each_broker_method_relied_on_exists_with_its_parameters(name: str) -> None:
    method = getattr(Broker, name)
    assert tuple(inspect.signature(method).parameters)[1:] == amqtt_compat.BROKER_METHODS[name]
    # PlatformBroker's override (if any) takes what amqtt's callers pass, positionally.
    assert (
        len(inspect.signature(getattr(PlatformBroker, name)).parameters) == len(amqtt_compat.BROKER_METHODS[name]) + 1
    )


async def test_stock_broker_state_and_plugin_manager_internals_have_the_shapes_used() -> None:
    broker = Broker({"listeners": {"default": {"type": "tcp", "bind": "127.0.0.1:0"}}, "plugins": {}})
    for name, kind in amqtt_compat.BROKER_STATE.items():
        assert isinstance(getattr(broker, name), kind), name
    manager = broker.plugins_manager
    assert isinstance(amqtt_compat.auth_plugins(manager), list)
    assert isinstance(amqtt_compat.topic_plugins(manager), list)
    assert amqtt_compat.event_callbacks(manager, BrokerEvents.CLIENT_CONNECTED) == []
    assert amqtt_compat.packet_event_listeners(manager) == []
    task = asyncio.ensure_future(asyncio.sleep(0))
    amqtt_compat.track_event_task(manager, task)
    assert task in manager._fired_events
    await task
    await asyncio.sleep(0)  # the done callback runs
    assert task not in manager._fired_events
    assert amqtt_compat.broker_of_context(BrokerContext(broker)) is broker
    assert amqtt_compat.broker_of_context(object()) is None
    assert amqtt_compat.listener_server(broker, "default") is None  # registered once it serves


def test_a_listener_server_has_what_connections_count_with(broker: PlatformBroker) -> None:
    server = amqtt_compat.listener_server(broker, "default")
    assert server is not None
    for name in amqtt_compat.SERVER_ATTRIBUTES:
        assert isinstance(getattr(server, name), int), name


def test_device_session_sets_every_session_attribute_amqtt_sets() -> None:
    stock = set(vars(Session()))
    assert stock == amqtt_compat.SESSION_ATTRIBUTES, "amqtt's Session changed: re-read DeviceSession"
    ours = set(vars(DeviceSession(1))) | {"retained_messages"}  # a property on DeviceSession
    assert stock - ours == {"delivered_message_queue"}  # deliberately gone (docs/broker.md)
    for hook in amqtt_compat.SESSION_HOOKS:
        assert callable(getattr(Session, hook))


def test_session_state_raises_what_amqtt_catches() -> None:
    import amqtt.broker

    assert amqtt.broker.MachineError is amqtt_compat.MachineError
    session = DeviceSession(1)
    session.transitions.connect()
    with pytest.raises(amqtt_compat.MachineError):
        session.transitions.connect()
