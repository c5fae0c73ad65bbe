"""Lighter per-device session for amqtt 0.12.1.

A stock amqtt ``Session`` costs ~23 KB and 360 µs to build, mostly a
``transitions.Machine`` per session, plus two ``asyncio.Queue`` objects. Here
a session carries a three-state object instead of the Machine and its
offline-message queue only once it needs one. The connection itself is
``protocol.Connection``; a session outlives it when it is persistent.
"""

from __future__ import annotations

import logging
from collections import deque
from datetime import datetime
from typing import Any, NamedTuple

from amqtt.session import Session

from qris_soundbox.broker.amqtt_compat import MachineError

log = logging.getLogger(__name__)


class QueuedMessage(NamedTuple):
    """A QoS 1 message waiting for room in its session's in-flight window."""

    topic: str
    data: bytes
    retain: bool
    key: str | None


class OfflineQueue:
    """The messages kept for an offline persistent session, with the ``asyncio.Queue`` methods amqtt calls.

    ``asyncio.Queue`` keeps three deques and an Event (~2.5 KB empty); nobody
    waits on this queue, so one deque does. At ``limit`` messages new ones
    are dropped, as Mosquitto's ``max_queued_messages`` does.
    """

    __slots__ = ("_items", "limit")

    def __init__(self, limit: int) -> None:
        self._items: deque[Any] = deque()
        self.limit = limit

    def put_nowait(self, item: Any) -> None:
        if len(self._items) >= self.limit:
            log.warning(
                "offline message dropped: queue full",
                extra={"topic": getattr(item, "topic", None), "limit": self.limit},
            )
            return
        self._items.append(item)

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        if not self._items:
            raise IndexError("offline queue is empty")
        return self._items.popleft()

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)


class SessionState:
    """The ``session.transitions`` amqtt reads: ``state``, ``connect()``, ``disconnect()``, ``is_connected()``.

    Same states and transitions as ``Session._init_states`` (connect from
    new/disconnected, disconnect from anywhere) and the same enter callbacks,
    without a ``transitions.Machine`` (~20 KB) per session.
    """

    __slots__ = ("_session", "state")

    def __init__(self, session: Session) -> None:
        self._session = session
        self.state = "new"

    def connect(self) -> None:
        if self.state == "connected":
            raise MachineError("Can't trigger event connect from state connected!")
        self.state = "connected"
        self._session._on_enter_connected()

    def disconnect(self) -> None:
        self.state = "disconnected"
        self._session._on_enter_disconnected()

    def is_new(self) -> bool:
        return self.state == "new"

    def is_connected(self) -> bool:
        return self.state == "connected"

    def is_disconnected(self) -> bool:
        return self.state == "disconnected"


class DeviceSession(Session):
    """amqtt's ``Session`` with the same attributes, built lighter (see the module docstring).

    ``delivered_message_queue`` is gone: received messages are handled by the
    connection as they arrive (``protocol.Connection``), not queued.
    """

    def __init__(self, max_queued: int) -> None:
        # Session.__init__ is not called: it builds the Machine and two Queues this class replaces.
        self.max_queued = max_queued
        # QoS 1 messages beyond the in-flight window, sent as PUBACKs make room; created on first use.
        self.queued_out: deque[QueuedMessage] | None = None
        self.transitions = SessionState(self)  # type: ignore[assignment]
        self.remote_address: str | None = None
        self.remote_port: int | None = None
        self.client_id: str | None = None
        self.clean_session: bool | None = None
        self.will_flag = False
        self.will_message: bytes | bytearray | None = None
        self.will_qos: int | None = None
        self.will_retain: bool | None = None
        self.will_topic: str | None = None
        self.keep_alive = 0
        self.publish_retry_delay = 0
        self.broker_uri: str | None = None
        self.username: str | None = None
        self.password: str | None = None
        self.cafile: str | None = None
        self.capath: str | None = None
        self.cadata: bytes | None = None
        self._packet_id = 0
        self.parent = 0
        self.last_connect_time: int | None = None
        self.ssl_object: Any = None
        self.last_disconnect_time: int | None = None
        self.attributes: dict[str, Any] = {}
        # amqtt uses OrderedDicts but only dict operations; a dict keeps insertion order too.
        self.inflight_out: dict[int, Any] = {}  # type: ignore[assignment]
        self.inflight_in: dict[int, Any] = {}  # type: ignore[assignment]
        self._offline: OfflineQueue | None = None
        self.is_anonymous = False
        # When this session's current connection was accepted: of two nodes holding one device, the later wins.
        self.connected_at: datetime | None = None

    @property  # type: ignore[override]
    def retained_messages(self) -> OfflineQueue:
        """Messages queued while this persistent session is offline; created on first use."""
        if self._offline is None:
            self._offline = OfflineQueue(self.max_queued)
        return self._offline

    @retained_messages.setter
    def retained_messages(self, queue: OfflineQueue) -> None:
        self._offline = queue

    @property
    def retained_messages_count(self) -> int:
        return 0 if self._offline is None else self._offline.qsize()

    def take_offline_messages(self) -> list[Any]:
        """Remove and return the messages queued while offline, oldest first."""
        if self._offline is None or self._offline.empty():
            return []
        messages = list(self._offline._items)
        self._offline = None
        return messages

    def clear_queues(self) -> None:
        self._offline = None
        self.queued_out = None

    def holds(self, key: str) -> bool:
        """True while a message delivered with ``key`` is in flight or queued: one copy per key at a time."""
        return any(getattr(m, "key", None) == key for m in self.inflight_out.values()) or (
            self.queued_out is not None and any(m.key == key for m in self.queued_out)
        )

    def room(self, max_inflight: int) -> int:
        """How many more QoS 1 messages this session takes now (free in-flight slots plus free queue places)."""
        queued = len(self.queued_out) if self.queued_out is not None else 0
        return max(0, max_inflight - len(self.inflight_out)) + max(0, self.max_queued - queued)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_offline"], state["transitions"]
        state["_state"] = self.transitions.state
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        saved = state.pop("_state")
        self.__dict__.update(state)
        restored = SessionState(self)
        restored.state = saved
        self.transitions = restored  # type: ignore[assignment]
        self._offline = None
