"""Topic ACL for devices: rules as data (``acl/rules.yaml``), matching, denial counting.

A subscription filter is allowed only if every topic it can match is inside
a granted filter (``devices/+/...``, ``devices/#`` and ``#`` are therefore
refused even though they would also match the device's own topics). A publish
topic is allowed if a granted filter matches it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

import qris_soundbox.acl as acl_package

DEFAULT_RULES_PATH = Path(acl_package.__file__).parent / "rules.yaml"
ACTIONS = ("publish", "subscribe", "receive")
PLACEHOLDERS = ("%u", "%c")
# Usernames substituted into rules: nothing that could act as a separator or wildcard.
SAFE_USERNAME = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class AclRulesError(ValueError):
    """A rules file that cannot be loaded, or would let one device reach another."""


@dataclass(frozen=True)
class Rule:
    action: str
    topic: str

    def expand(self, username: str) -> str:
        return "/".join(username if level in PLACEHOLDERS else level for level in self.topic.split("/"))


def topic_matches(topic: str, topic_filter: str) -> bool:
    """MQTT matching of a concrete topic against a filter."""
    t_levels = topic.split("/")
    f_levels = topic_filter.split("/")
    for index, level in enumerate(f_levels):
        if level == "#":
            return True
        if index >= len(t_levels):
            return False
        if level != "+" and level != t_levels[index]:
            return False
    return len(t_levels) == len(f_levels)


def filter_within(requested: str, granted: str) -> bool:
    """True if every topic ``requested`` can match is matched by ``granted``."""
    r_levels = requested.split("/")
    g_levels = granted.split("/")
    for index, g_level in enumerate(g_levels):
        if g_level == "#":
            return True
        if index >= len(r_levels):
            return False
        r_level = r_levels[index]
        if r_level == "#":
            return False  # requested reaches deeper than granted allows
        if g_level == "+":
            continue
        if r_level != g_level:  # a literal grant admits only the same literal, not '+'
            return False
    return len(r_levels) == len(g_levels)


class AclRules:
    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self._by_action = {action: [r for r in rules if r.action == action] for action in ACTIONS}

    @classmethod
    def load(cls, path: Path | str | None = None) -> AclRules:
        path = Path(path) if path else DEFAULT_RULES_PATH
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise AclRulesError(f"cannot read ACL rules {path}: {exc}") from None
        rules = cls.parse(data, source=str(path))
        problems = rules.problems()
        if problems:
            raise AclRulesError(f"{path}: " + "; ".join(problems))
        return rules

    @classmethod
    def parse(cls, data: object, source: str = "rules") -> AclRules:
        if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
            raise AclRulesError(f"{source}: expected a mapping with a 'rules' list")
        rules = []
        for index, item in enumerate(data["rules"]):
            if not isinstance(item, dict) or set(item) != {"action", "topic"}:
                raise AclRulesError(f"{source}: rule {index + 1} must have exactly 'action' and 'topic'")
            if item["action"] not in ACTIONS or not isinstance(item["topic"], str) or not item["topic"]:
                raise AclRulesError(f"{source}: rule {index + 1}: action must be one of {ACTIONS} and topic a string")
            rules.append(Rule(item["action"], item["topic"]))
        return cls(rules)

    def problems(self) -> list[str]:
        """Why these rules could let a device reach another device's topics (empty: they cannot)."""
        found = []
        for rule in self.rules:
            levels = rule.topic.split("/")
            placeholder_at = next((i for i, level in enumerate(levels) if level in PLACEHOLDERS), None)
            if any(p in level and level not in PLACEHOLDERS for level in levels for p in PLACEHOLDERS):
                found.append(f"{rule.action} {rule.topic}: a placeholder must fill a whole level")
            elif placeholder_at is None:
                found.append(f"{rule.action} {rule.topic}: no %u level, so every device would share it")
            elif any(level in ("+", "#") for level in levels[:placeholder_at]):
                found.append(f"{rule.action} {rule.topic}: a wildcard before %u reaches other devices")
            if any(("#" in level and level != "#") or ("+" in level and level != "+") for level in levels) or (
                "#" in levels[:-1]
            ):
                found.append(f"{rule.action} {rule.topic}: not a valid MQTT topic filter")
        for action in ("publish", "subscribe"):
            if not self._by_action[action]:
                found.append(f"no {action} rule: devices could not work")
        return found

    def allows(self, action: str, username: str | None, topic: str) -> bool:
        if not username or not SAFE_USERNAME.match(username):
            return False
        check = filter_within if action == "subscribe" else topic_matches
        return any(check(topic, rule.expand(username)) for rule in self._by_action.get(action, ()))

    def template(self) -> str:
        """The rules as a Mosquitto ``acl_file`` (for a broker in front, or for comparison)."""
        mosquitto = {"publish": "write", "subscribe": "read", "receive": "read"}
        lines = [
            "# QRIS soundbox device ACL (generated by `qris-soundbox acl check --print-template`)",
            "# Each device's MQTT username is its device id.",
        ]
        seen = set()
        for rule in self.rules:
            line = f"pattern {mosquitto[rule.action]} {rule.topic.replace('%c', '%u')}"
            if line not in seen:
                seen.add(line)
                lines.append(line)
        return "\n".join(lines) + "\n"

    def to_yaml(self) -> str:
        return yaml.safe_dump(
            {"version": 1, "rules": [{"action": r.action, "topic": r.topic} for r in self.rules]}, sort_keys=False
        )


def parse_mosquitto_acl(text: str) -> AclRules:
    """The ``pattern`` lines of a Mosquitto ACL file as rules (read = subscribe + receive)."""
    rules: list[Rule] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split(None, 2)
        if words[0] == "pattern" and len(words) == 3 and words[1] in ("read", "write", "readwrite"):
            topic = words[2]
            if words[1] in ("write", "readwrite"):
                rules.append(Rule("publish", topic))
            if words[1] in ("read", "readwrite"):
                rules += [Rule("subscribe", topic), Rule("receive", topic)]
        elif words[0] in ("topic", "user", "pattern"):
            raise AclRulesError(
                f"line {number}: only 'pattern read|write|readwrite <topic>' lines are device rules: {line!r}"
            )
        else:
            raise AclRulesError(f"line {number}: not an ACL line: {line!r}")
    return AclRules(rules)
