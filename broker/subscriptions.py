"""The broker's subscriptions: amqtt's table (filter -> [(session, qos)]) kept in amqtt's shape, and two indexes.

amqtt scans every filter of its table for every message it routes. Here the
table stays what amqtt and its plugins read, and beside it sit a trie of the
wildcard filters (a topic is matched by one dict lookup plus one trie walk)
and, per client id, that client's own filters (a downlink to one device is
checked against that device's filters only, and a session's end drops its
filters without a scan). ``SubscriptionIndex`` is the one writer of all
three, so they cannot drift apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qris_soundbox.broker.topics import FilterTrie, has_wildcard

if TYPE_CHECKING:
    from collections.abc import Collection

    from amqtt.session import Session


def valid_filter(topic_filter: str) -> bool:
    """A topic filter MQTT 3.1.1 allows: '#' alone on the last level, '+' a whole level."""
    levels = topic_filter.split("/")
    last = len(levels) - 1
    for index, level in enumerate(levels):
        # [MQTT-4.7.1-2] '#' alone on the last level; [MQTT-4.7.1-3] '+' a whole level.
        if "#" in level and (level != "#" or index != last):
            return False
        if "+" in level and level != "+":
            return False
    return True


class SubscriptionIndex:
    """Subscriptions by filter (amqtt's table, shared with amqtt), by wildcard trie and by client id."""

    def __init__(self, table: dict[str, list[tuple[Session, int]]]) -> None:
        self._table = table
        self._wildcards = FilterTrie()
        self._by_client: dict[str, dict[str, int]] = {}

    def clear(self) -> None:
        """Empty the indexes (amqtt clears its table itself when the broker starts)."""
        self._wildcards.clear()
        self._by_client.clear()

    def add(self, session: Session, topic_filter: str, qos: int) -> None:
        """Subscribe ``session`` to ``topic_filter`` at ``qos``; a repeated filter replaces the granted QoS
        (MQTT 3.1.1 §3.8.4; amqtt kept the first)."""
        client_id = session.client_id or ""
        subscribers = self._table.get(topic_filter)
        if subscribers is None:
            subscribers = self._table[topic_filter] = []
            if has_wildcard(topic_filter):
                self._wildcards.add(topic_filter)
        own = self._by_client.setdefault(client_id, {})
        if topic_filter in own:
            subscribers[:] = [(s, q) for s, q in subscribers if s.client_id != client_id]
        subscribers.append((session, qos))
        own[topic_filter] = qos

    def remove(self, session: Session, topic_filter: str) -> bool:
        """Drop one subscription, and the filter from the table and the trie once no one holds it.
        False if ``session`` did not hold it."""
        client_id = session.client_id or ""
        own = self._by_client.get(client_id)
        if own is None or own.pop(topic_filter, None) is None:
            return False
        if not own:
            del self._by_client[client_id]
        subscribers = self._table.get(topic_filter, [])
        subscribers[:] = [(s, q) for s, q in subscribers if s.client_id != client_id]
        if not subscribers:
            self._table.pop(topic_filter, None)
            self._wildcards.discard(topic_filter)
        return True

    def filters_of(self, client_id: str) -> Collection[str]:
        """The filters ``client_id`` holds (empty if none)."""
        return self._by_client.get(client_id, {}).keys()

    def holds_any(self, client_id: str) -> bool:
        return bool(self._by_client.get(client_id))

    def clients(self) -> Collection[str]:
        """The client ids holding at least one subscription."""
        return self._by_client.keys()

    def subscribers(self, topic: str) -> list[tuple[Session, int]]:
        """(session, qos) of every subscription matching ``topic``: one dict lookup plus one trie walk."""
        found = list(self._table.get(topic, ()))
        for topic_filter in self._wildcards.matching(topic):
            found.extend(self._table.get(topic_filter, ()))
        return found

    def wildcard_filters_matching(self, topic: str) -> list[str]:
        return self._wildcards.matching(topic)
