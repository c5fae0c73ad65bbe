"""Topic tries: which subscription filters match a topic, which retained topics match a filter.

amqtt 0.12.1 answers both questions by string-matching every entry (all
filters per published message, all retained topics per SUBSCRIBE). These tries
answer them in O(levels + matches). The MQTT 3.1.1 rules they keep, the same as
amqtt's ``Broker._matches``: ``+`` is one whole level, ``#`` the last level and
also matches its parent (``a/#`` matches ``a``), and a topic starting with
``$`` is not matched by ``+`` or ``#`` at the first level [MQTT-4.7.2-1].
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def has_wildcard(topic_filter: str) -> bool:
    return "+" in topic_filter or "#" in topic_filter


class _Node:
    __slots__ = ("children", "key")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        # The filter (or retained topic) that ends at this node, if any.
        self.key: str | None = None


class _Trie:
    """Strings split on ``/``, one node per level; nodes are pruned when emptied."""

    __slots__ = ("_root",)

    def __init__(self) -> None:
        self._root = _Node()

    def add(self, key: str) -> None:
        node = self._root
        for level in key.split("/"):
            child = node.children.get(level)
            if child is None:
                child = node.children[level] = _Node()
            node = child
        node.key = key

    def discard(self, key: str) -> None:
        path = [self._root]
        for level in key.split("/"):
            child = path[-1].children.get(level)
            if child is None:
                return
            path.append(child)
        path[-1].key = None
        levels = key.split("/")
        # Prune from the leaf up so a departed device leaves no nodes behind.
        for depth in range(len(levels), 0, -1):
            node = path[depth]
            if node.key is not None or node.children:
                break
            del path[depth - 1].children[levels[depth - 1]]

    def clear(self) -> None:
        self._root = _Node()


class FilterTrie(_Trie):
    """Wildcard subscription filters; ``matching(topic)`` yields the filters a topic matches."""

    __slots__ = ()

    def matching(self, topic: str) -> list[str]:
        found: list[str] = []
        nodes = [self._root]
        first = True
        dollar = topic.startswith("$")
        for level in topic.split("/"):
            next_nodes: list[_Node] = []
            for node in nodes:
                children = node.children
                if not (first and dollar):
                    multi = children.get("#")
                    if multi is not None and multi.key is not None:
                        found.append(multi.key)
                    single = children.get("+")
                    if single is not None:
                        next_nodes.append(single)
                child = children.get(level)
                if child is not None:
                    next_nodes.append(child)
            if not next_nodes:
                return found
            nodes = next_nodes
            first = False
        for node in nodes:
            if node.key is not None:
                found.append(node.key)
            # 'a/#' also matches 'a' itself.
            multi = node.children.get("#")
            if multi is not None and multi.key is not None:
                found.append(multi.key)
        return found


class TopicTrie(_Trie):
    """Concrete topics (retained messages); ``matched_by(filter)`` yields the topics a filter matches."""

    __slots__ = ()

    def matched_by(self, topic_filter: str) -> Iterator[str]:
        levels = topic_filter.split("/")
        stack: list[tuple[_Node, int]] = [(self._root, 0)]
        while stack:
            node, depth = stack.pop()
            if depth == len(levels):
                if node.key is not None:
                    yield node.key
                continue
            level = levels[depth]
            if level == "#":
                # '#' matches the parent level too, then everything below it.
                if node.key is not None and depth > 0:
                    yield node.key
                yield from self._below(node, skip_dollar=depth == 0)
            elif level == "+":
                for name, child in node.children.items():
                    if depth == 0 and name.startswith("$"):
                        continue
                    stack.append((child, depth + 1))
            else:
                exact = node.children.get(level)
                if exact is not None:
                    stack.append((exact, depth + 1))

    @staticmethod
    def _below(node: _Node, *, skip_dollar: bool) -> Iterator[str]:
        stack = [child for name, child in node.children.items() if not (skip_dollar and name.startswith("$"))]
        while stack:
            current = stack.pop()
            if current.key is not None:
                yield current.key
            stack.extend(current.children.values())


class RetainedMessages(dict[str, Any]):
    """amqtt's retained-message dict (topic -> message) that keeps a topic trie in step.

    A dict subclass rather than a new attribute so every reader and writer of
    ``Broker.retained_messages`` (amqtt, its plugins, ours) stays consistent.
    """

    def __init__(self) -> None:
        super().__init__()
        self.topics = TopicTrie()

    def __setitem__(self, topic: str, message: Any) -> None:
        if topic not in self:
            self.topics.add(topic)
        super().__setitem__(topic, message)

    def __delitem__(self, topic: str) -> None:
        super().__delitem__(topic)
        self.topics.discard(topic)

    def pop(self, topic: str, *default: Any) -> Any:
        if topic in self:
            self.topics.discard(topic)
        return super().pop(topic, *default)

    def clear(self) -> None:
        super().clear()
        self.topics.clear()

    def matching(self, topic_filter: str) -> list[Any]:
        if not has_wildcard(topic_filter):
            message = self.get(topic_filter)
            return [] if message is None else [message]
        return [self[topic] for topic in self.topics.matched_by(topic_filter)]
