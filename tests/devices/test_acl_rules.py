"""ACL rule matching: what a granted filter admits, and which rule sets are unsafe."""

from __future__ import annotations

import pytest

from qris_soundbox.core.devices.acl import AclRules, AclRulesError, filter_within, parse_mosquitto_acl, topic_matches

RULES = AclRules.load()


@pytest.mark.parametrize(
    ("requested", "allowed"),
    [
        ("devices/A/downlink/#", True),
        ("devices/A/downlink/payment", True),
        ("devices/A/downlink/+", True),
        ("devices/A/downlink/+/response", True),
        ("devices/A/downlink", True),
        ("devices/A/#", False),
        ("devices/+/downlink/#", False),
        ("devices/#", False),
        ("#", False),
        ("+/A/downlink/#", False),
        ("devices/B/downlink/#", False),
        ("devices/A/uplink/#", False),
        ("devices/A/downlinkx/#", False),
    ],
)
def test_subscribe_rules(requested: str, allowed: bool) -> None:
    assert RULES.allows("subscribe", "A", requested) is allowed


@pytest.mark.parametrize(
    ("topic", "allowed"),
    [
        ("devices/A/uplink/heartbeat", True),
        ("devices/A/uplink/payment/ack", True),
        ("devices/A/uplink", True),
        ("devices/B/uplink/heartbeat", False),
        ("devices/A/downlink/payment", False),
        ("devices/A", False),
        ("other", False),
    ],
)
def test_publish_rules(topic: str, allowed: bool) -> None:
    assert RULES.allows("publish", "A", topic) is allowed


@pytest.mark.parametrize("username", [None, "", "a/b", "+", "#", "dev 1", "x" * 200])
def test_unsafe_usernames_get_nothing(username: str | None) -> None:
    assert not RULES.allows("publish", username, f"devices/{username}/uplink/heartbeat")
    assert not RULES.allows("subscribe", username, f"devices/{username}/downlink/#")


def test_matching_helpers_follow_mqtt() -> None:
    assert topic_matches("a/b/c", "a/+/c") and topic_matches("a/b/c", "a/#") and topic_matches("a", "a/#")
    assert not topic_matches("a/b", "a/b/c") and not topic_matches("a/b/c", "a/b")
    assert filter_within("a/b/c", "a/+/c") and not filter_within("a/+/c", "a/b/c")
    assert filter_within("a/b/#", "a/#") and not filter_within("a/#", "a/b/#")


def test_unsafe_rule_sets_are_reported() -> None:
    problems = AclRules.parse(
        {
            "rules": [
                {"action": "subscribe", "topic": "devices/+/%u/#"},
                {"action": "publish", "topic": "devices/dev-%u/uplink/#"},
                {"action": "publish", "topic": "broadcast/#"},
                {"action": "subscribe", "topic": "devices/%u/#/x"},
            ]
        }
    ).problems()
    assert len(problems) == 4
    with pytest.raises(AclRulesError):
        AclRules.parse({"rules": [{"action": "delete", "topic": "x"}]})
    with pytest.raises(AclRulesError):
        parse_mosquitto_acl("user alice\ntopic read #\n")
    assert parse_mosquitto_acl(RULES.template()).problems() == []
