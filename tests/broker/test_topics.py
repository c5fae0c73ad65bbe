"""The topic tries agree with amqtt's own matcher (``Broker._matches``), which they replace for routing."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from amqtt.broker import Broker
from hypothesis import given, settings
from hypothesis import strategies as st

from qris_soundbox.broker.topics import FilterTrie, RetainedMessages

LEVELS = st.sampled_from(["a", "b", "devices", "d1", "$SYS", "", "x"])
TOPICS = st.lists(LEVELS, min_size=1, max_size=4).map("/".join)
FILTERS = st.lists(st.one_of(LEVELS, st.just("+")), min_size=1, max_size=4).flatmap(
    lambda levels: st.sampled_from(["/".join(levels), "/".join([*levels, "#"]), "#"])
)


# amqtt's matcher only needs a logger from its instance.
_STOCK = SimpleNamespace(logger=logging.getLogger(__name__))


def stock_matches(topic: str, topic_filter: str) -> bool:
    return Broker._matches(_STOCK, topic, topic_filter)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.lists(FILTERS, max_size=12), TOPICS)
def test_filter_trie_matches_what_amqtt_matches(filters: list[str], topic: str) -> None:
    trie = FilterTrie()
    for topic_filter in filters:
        trie.add(topic_filter)
    expected = {f for f in filters if ("+" in f or "#" in f) and stock_matches(topic, f)}
    wildcard_only = {f for f in trie.matching(topic) if "+" in f or "#" in f}
    assert wildcard_only == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(TOPICS, max_size=12), FILTERS)
def test_retained_lookup_matches_what_amqtt_matches(topics: list[str], topic_filter: str) -> None:
    retained = RetainedMessages()
    for topic in topics:
        retained[topic] = topic
    assert sorted(retained.matching(topic_filter)) == sorted({t for t in topics if stock_matches(t, topic_filter)})


def test_removed_filters_leave_no_nodes_behind() -> None:
    trie = FilterTrie()
    for device in range(100):
        trie.add(f"devices/d{device}/downlink/#")
    trie.add("devices/+/uplink/#")
    for device in range(100):
        trie.discard(f"devices/d{device}/downlink/#")
    assert trie.matching("devices/d1/downlink/payment") == []
    assert trie.matching("devices/d1/uplink/heartbeat") == ["devices/+/uplink/#"]
    assert list(trie._root.children["devices"].children) == ["+"]


def test_cleared_retained_topic_is_no_longer_found() -> None:
    retained = RetainedMessages()
    retained["a/b"] = "first"
    retained["a/c"] = "second"
    del retained["a/b"]
    assert retained.matching("a/#") == ["second"]
    retained.clear()
    assert retained.matching("#") == []
