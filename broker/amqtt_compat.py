"""The one door into amqtt's internals: every name the project uses that is not amqtt's public API.

amqtt is pinned (``pyproject.toml``) because ``PlatformBroker`` subclasses its
``Broker`` and replaces parts of it. Everything below is what that reliance
consists of, in one place: the plugin manager's private lists, the broker's
private state and the methods ``PlatformBroker`` overrides or calls, the
``Session`` attributes ``DeviceSession`` re-declares, and where a plugin
context keeps its broker. ``tests/broker/test_amqtt_compat.py`` checks each
against the installed amqtt, so an upgrade is this file to audit and that
test to run. docs/broker.md says which amqtt parts still run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from amqtt.broker import Broker, BrokerContext, Server
from amqtt.events import BrokerEvents, MQTTEvents
from amqtt.plugins.manager import PluginManager

# amqtt's session state machine raises this from transitions (an amqtt dependency), and amqtt's broker
# catches it: DeviceSession's lighter state object raises the same type.
from transitions import MachineError

__all__ = [
    "BROKER_METHODS",
    "BROKER_STATE",
    "MachineError",
    "SESSION_ATTRIBUTES",
    "SESSION_HOOKS",
    "SERVER_ATTRIBUTES",
    "auth_plugins",
    "broker_of_context",
    "event_callbacks",
    "listener_server",
    "packet_event_listeners",
    "topic_plugins",
    "track_event_task",
]

# Broker methods PlatformBroker overrides (same name, same parameters) or calls, with amqtt's parameters.
BROKER_METHODS: dict[str, tuple[str, ...]] = {
    "_create_server_instance": ("listener_name", "listener_type", "address", "port", "ssl_context"),
    "_session_monitor": (),
    "_authenticate": ("session", "_"),
    "_topic_filtering": ("session", "topic", "action"),
    "add_subscription": ("subscription", "session"),
    "_del_subscription": ("a_filter", "session"),
    "_del_all_subscriptions": ("session",),
    "_broadcast_message": ("session", "topic", "data", "force_qos"),
    "_cleanup_session": ("client_id",),
    "create_offline_session": ("client_id",),
    "_delete_session": ("client_id",),
    "_retain_broadcast_message": ("broadcast", "qos", "target_session"),
    "_matches": ("topic", "a_filter"),
    "retain_message": ("source_session", "topic_name", "data", "qos"),
}

# Broker attributes amqtt creates and PlatformBroker reads or replaces, with their types. The session table
# is not among them: PlatformBroker reads and writes it through amqtt's public ``Broker.sessions``.
BROKER_STATE: dict[str, type] = {
    "_subscriptions": dict,  # filter -> [(session, qos)]
    "_retained_messages": dict,  # topic -> RetainedApplicationMessage
    "_servers": dict,  # listener name -> Server
}

# What a connection reads of its listener's amqtt ``Server`` (connection count against the listener's limit).
SERVER_ATTRIBUTES = ("conn_count", "max_connections")

# What amqtt's Session.__init__ sets; DeviceSession skips that __init__ and sets these itself, except the
# two it replaces: ``transitions`` (a lighter state object) and ``retained_messages`` (a lazy property).
SESSION_ATTRIBUTES = frozenset(
    {
        "_packet_id",
        "attributes",
        "broker_uri",
        "cadata",
        "cafile",
        "capath",
        "clean_session",
        "client_id",
        "delivered_message_queue",
        "inflight_in",
        "inflight_out",
        "is_anonymous",
        "keep_alive",
        "last_connect_time",
        "last_disconnect_time",
        "parent",
        "password",
        "publish_retry_delay",
        "remote_address",
        "remote_port",
        "retained_messages",
        "ssl_object",
        "transitions",
        "username",
        "will_flag",
        "will_message",
        "will_qos",
        "will_retain",
        "will_topic",
    }
)
# Session methods the state object calls on entering a state, as amqtt's Machine does.
SESSION_HOOKS = ("_on_enter_connected", "_on_enter_disconnected")


def event_callbacks(manager: PluginManager[Any], event: BrokerEvents) -> list[Callable[..., Any]]:
    """The plugins' handlers of ``event`` (amqtt collects them at start-up)."""
    return manager._event_plugin_callbacks.get(event) or []


def packet_event_listeners(manager: PluginManager[Any]) -> list[str]:
    """Packet events some plugin listens to; PlatformBroker's packet path fires none."""
    return [str(event) for event in MQTTEvents if manager._event_plugin_callbacks.get(event)]


def track_event_task(manager: PluginManager[Any], task: asyncio.Future[Any]) -> None:
    """Register a task running plugin handlers with the manager, so amqtt's shutdown waits for it."""
    manager._fired_events.append(task)
    task.add_done_callback(manager._clean_fired_events)


def auth_plugins(manager: PluginManager[Any]) -> list[Any]:
    """The authentication plugins, in broker.yaml's order (loaded when the manager is built)."""
    return manager._auth_plugins


def topic_plugins(manager: PluginManager[Any]) -> list[Any]:
    """The topic (ACL) plugins, in broker.yaml's order (loaded when the manager is built)."""
    return manager._topic_plugins


def broker_of_context(context: object) -> object | None:
    """The broker a plugin's context belongs to (amqtt keeps it private)."""
    return getattr(context, "_broker_instance", None) if isinstance(context, BrokerContext) else None


def listener_server(broker: Broker, listener_name: str) -> Server | None:
    """amqtt's bookkeeping of a listener (None until amqtt registers it, just after it starts serving)."""
    return broker._servers.get(listener_name)


def listener_servers(broker: Broker) -> list[Server]:
    """amqtt's bookkeeping of every listener serving now (their ``conn_count`` is the open connections)."""
    return list(broker._servers.values())
