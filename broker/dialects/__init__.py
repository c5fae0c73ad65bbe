"""Wire dialects: a vendor's topics and payloads as data (``acl/dialects/*.yaml``), translated at the broker's edge.

A device whose model names a dialect other than ``native`` speaks its
vendor's protocol; the broker turns what it publishes into the platform's
uplink (``devices/<id>/uplink/<kind>``, the same core handlers), maps its
subscription onto its native downlinks, and renders each native downlink in
the dialect. The translation is also the device's ACL: a message is taken
only on one of the dialect's topics rendered for the authenticated device,
and on a shared topic only if the payload names that device; anything else
is refused (and counted as an ACL denial by the broker). Nothing in ``core/``
knows a dialect. Files are validated when the broker starts; an error names
the file, the line and the field. docs/dialects.md is the reference.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import yaml

import qris_soundbox.acl as acl_package
from qris_soundbox.core.ids import new_id

log = logging.getLogger(__name__)

DIALECTS_DIR = Path(acl_package.__file__).parent / "dialects"
NATIVE = "native"
DEVICE_ID = "{device_id}"
# The kinds a dialect can carry, by the native topic suffix (SPEC §5).
UPLINK_KINDS = ("dynamic-qr/request",)
DOWNLINK_KINDS = ("payment", "dynamic-qr/response")
# What a downlink template may name: fields of the native downlink (``amount`` scaled, ``clips`` named).
DOWNLINK_FIELDS = frozenset({"amount", "clips", "currency", "message_id", "qr_payload", "request_id", "transaction_id"})
# Literal topic text: no wildcard, no '$', no space or control character, no empty level.
_TOPIC_LITERAL = re.compile(r"^[A-Za-z0-9_.:/-]+$")
_PLACEHOLDER = re.compile(r"\{([a-z_]*)\}")
_DIALECT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
# A device amount: digits only (no sign, no fraction, no exponent), at most 15 of them.
_AMOUNT = re.compile(r"^[0-9]{1,15}$")
MAX_AMOUNT_RUPIAH = 10_000_000_000  # as core.payments.schemas.Amount
MAX_UPLINK_BYTES = 256


class DialectError(ValueError):
    """A dialect file that cannot be used: ``file:line: field: what is wrong``."""


@dataclass(frozen=True)
class TopicTemplate:
    """A topic with at most one ``{device_id}``; without one the topic is shared by every device."""

    template: str

    @property
    def shared(self) -> bool:
        return DEVICE_ID not in self.template

    def render(self, device_id: str) -> str:
        return self.template.replace(DEVICE_ID, device_id)


@dataclass(frozen=True)
class Uplink:
    kind: str
    topic: TopicTemplate
    separator: str
    fields: tuple[str, ...]
    amount_scale: int


@dataclass(frozen=True)
class Downlink:
    kind: str
    topic: TopicTemplate
    codec: str  # "text" or "json"
    template: str | dict[str, Any]
    amount_scale: int
    clip_name: str
    # The device's PUBACK stands for the native ack (a device that acks nothing would hear it resent until expiry).
    acked_by_puback: bool


class Refused(msgspec.Struct, frozen=True):
    """Why a device's message was not taken (logged, and counted by the broker)."""

    reason: str


@dataclass(frozen=True)
class Dialect:
    id: str
    description: str
    signs_announcements: bool
    qos: int
    subscribe: TopicTemplate
    uplinks: tuple[Uplink, ...]
    downlinks: dict[str, Downlink]

    def native_filter(self, device_id: str, topic_filter: str) -> str | None:
        """The native filter a dialect subscription stands for (its downlinks), None for any other filter."""
        if topic_filter == self.subscribe.render(device_id):
            return f"devices/{device_id}/downlink/#"
        return None

    def inbound(self, device_id: str, topic: str, payload: bytes) -> tuple[str, bytes] | Refused:
        """The native uplink (topic, payload) a dialect message is, or why it is refused."""
        uplink = next((u for u in self.uplinks if u.topic.render(device_id) == topic), None)
        if uplink is None:
            return Refused("topic_outside_dialect")
        if len(payload) > MAX_UPLINK_BYTES:
            return Refused("payload_too_large")
        try:
            parts = payload.decode("utf-8").split(uplink.separator)
        except UnicodeDecodeError:
            return Refused("malformed")
        if len(parts) != len(uplink.fields):
            return Refused("malformed")
        values = dict(zip(uplink.fields, parts, strict=True))
        if "device_id" in values and values["device_id"] != device_id:
            return Refused("names_another_device")
        if not _AMOUNT.match(values["amount"]):
            return Refused("malformed_amount")
        units = int(values["amount"])
        if units % uplink.amount_scale:
            return Refused("fraction_of_a_rupiah")
        amount = units // uplink.amount_scale
        if not 0 < amount <= MAX_AMOUNT_RUPIAH:
            return Refused("amount_out_of_range")
        # The device sends no request id: each message is a new request (a resend asks for another QR).
        body = msgspec.json.encode({"request_id": new_id(f"dlc_{self.id.replace('-', '')}"), "amount": amount})
        return f"devices/{device_id}/uplink/{uplink.kind}", body

    def puback_ack(self, device_id: str, topic: str, payload: bytes) -> tuple[str, bytes] | None:
        """The native ack uplink the device's PUBACK of this native downlink stands for, if the dialect says so."""
        prefix = f"devices/{device_id}/downlink/"
        downlink = self.downlinks.get(topic[len(prefix) :]) if topic.startswith(prefix) else None
        if downlink is None or not downlink.acked_by_puback:
            return None
        message_id = msgspec.json.decode(payload).get("message_id")
        return f"devices/{device_id}/uplink/{downlink.kind}/ack", msgspec.json.encode({"message_id": message_id})

    def outbound(self, device_id: str, topic: str, payload: bytes) -> tuple[str, bytes] | None:
        """A native downlink rendered in the dialect, or None when the dialect does not carry it."""
        prefix = f"devices/{device_id}/downlink/"
        downlink = self.downlinks.get(topic[len(prefix) :]) if topic.startswith(prefix) else None
        if downlink is None:
            return None
        native = msgspec.json.decode(payload)
        if not isinstance(native, dict):
            return None
        values = {name: native.get(name) for name in DOWNLINK_FIELDS}
        if isinstance(values["amount"], int):
            values["amount"] = values["amount"] * downlink.amount_scale
        clips = (native.get("announcement") or {}).get("clips") or []
        values["clips"] = [downlink.clip_name.replace("{clip}", str(clip)) for clip in clips]
        rendered: bytes
        if downlink.codec == "text":
            assert isinstance(downlink.template, str)
            names = _PLACEHOLDER.findall(downlink.template)
            if any(values[name] is None for name in names):
                return None  # e.g. a dynamic-QR error: the dialect has no form for it
            text = _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), downlink.template)
            rendered = text.encode()
        else:
            assert isinstance(downlink.template, dict)
            rendered = msgspec.json.encode(
                {key: _json_value(value, values) for key, value in downlink.template.items()}
            )
        return downlink.topic.render(device_id), rendered


def _json_value(template: Any, values: dict[str, Any]) -> Any:
    if isinstance(template, str):
        whole = _PLACEHOLDER.fullmatch(template)
        if whole:
            return values[whole.group(1)]
    return template


class Dialects:
    """The dialects the broker knows: ``native`` (no translation) and every valid file of the directory."""

    def __init__(self, dialects: dict[str, Dialect]) -> None:
        self._dialects = dialects

    def get(self, dialect_id: str | None) -> Dialect | None:
        """The dialect to translate with; None for ``native``, and for a name no file defines (such a
        device meets the native topics and ACL, where it can reach nothing but its own)."""
        if dialect_id is None or dialect_id == NATIVE:
            return None
        return self._dialects.get(dialect_id)

    def ids(self) -> list[str]:
        return [NATIVE, *sorted(self._dialects)]

    def signs_announcements(self, dialect_id: str) -> bool:
        dialect = self.get(dialect_id)
        return dialect is None or dialect.signs_announcements

    @classmethod
    def load(cls, directory: Path = DIALECTS_DIR) -> Dialects:
        dialects: dict[str, Dialect] = {}
        for path in sorted(directory.glob("*.yaml")):
            dialect = load_dialect(path)
            if dialect.id in dialects or dialect.id == NATIVE:
                raise DialectError(f"{path}:1: id: dialect {dialect.id!r} is defined twice")
            dialects[dialect.id] = dialect
        return cls(dialects)


# ---- loading: YAML nodes, so every error can name its line -------------------------------------------------------


class _Reader:
    def __init__(self, path: Path, node: yaml.Node) -> None:
        self.path = path
        self.root = node

    def fail(self, node: yaml.Node, field: str, message: str) -> DialectError:
        return DialectError(f"{self.path}:{node.start_mark.line + 1}: {field}: {message}")

    def mapping(self, node: yaml.Node, field: str, required: set[str], optional: set[str]) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, field, "must be a mapping")
        found: dict[str, yaml.Node] = {}
        for key, value in node.value:
            name = str(key.value)
            if name not in required | optional:
                raise self.fail(key, f"{field}.{name}".lstrip("."), "unknown field")
            found[name] = value
        for name in sorted(required - found.keys()):
            raise self.fail(node, f"{field}.{name}".lstrip("."), "is required")
        return found

    def scalar(self, node: yaml.Node, field: str, kind: Any) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, field, f"must be a {kind.__name__}")
        value = yaml.constructor.SafeConstructor().construct_object(node)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(node, field, f"must be a {getattr(kind, '__name__', 'string, number or boolean')}")
        return value

    def topic(self, node: yaml.Node, field: str) -> TopicTemplate:
        text = self.scalar(node, field, str)
        literal = text.replace(DEVICE_ID, "x")
        if text.count(DEVICE_ID) > 1 or "{" in literal or "}" in literal:
            raise self.fail(node, field, "the only placeholder a topic may hold is one {device_id}")
        if not _TOPIC_LITERAL.match(literal) or "//" in literal or literal.startswith("/") or literal.endswith("/"):
            raise self.fail(node, field, "unsafe topic: no wildcard (+ #), no '$', no space, no empty level")
        if literal.startswith("devices/"):
            raise self.fail(node, field, "devices/ is the native dialect's: a dialect topic must lie outside it")
        return TopicTemplate(text)

    def scale(self, nodes: dict[str, yaml.Node], field: str) -> int:
        if "amount_scale" not in nodes:
            return 1
        scale = self.scalar(nodes["amount_scale"], f"{field}.amount_scale", int)
        if scale not in (1, 10, 100, 1000):
            raise self.fail(nodes["amount_scale"], f"{field}.amount_scale", "must be 1, 10, 100 or 1000")
        return int(scale)


def load_dialect(path: Path) -> Dialect:
    """One dialect file, validated (``DialectError`` names the file, line and field)."""
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DialectError(f"{path}:1: cannot be read: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DialectError(f"{path}:{(mark.line + 1) if mark else 1}: not valid YAML: {exc}") from None
    if node is None:
        raise DialectError(f"{path}:1: the file is empty")
    r = _Reader(path, node)
    top = r.mapping(
        node, "", {"version", "id", "client", "qos", "uplinks", "downlinks"}, {"description", "signs_announcements"}
    )
    if r.scalar(top["version"], "version", int) != 1:
        raise r.fail(top["version"], "version", "only version 1 is known")
    dialect_id = r.scalar(top["id"], "id", str)
    if not _DIALECT_ID.match(dialect_id):
        raise r.fail(top["id"], "id", "lower-case letters, digits and '-', at most 40")
    client = r.mapping(top["client"], "client", {"client_id", "username"}, set())
    for name, value in client.items():
        # The broker authenticates a device by username = client id = device id (docs/devices.md).
        if r.scalar(value, f"client.{name}", str) != DEVICE_ID:
            raise r.fail(value, f"client.{name}", "only {device_id} is supported")
    qos = r.scalar(top["qos"], "qos", int)
    if qos not in (0, 1):
        raise r.fail(top["qos"], "qos", "must be 0 or 1")

    uplink_nodes = r.mapping(top["uplinks"], "uplinks", set(), set(UPLINK_KINDS))
    uplinks = []
    for kind, unode in uplink_nodes.items():
        field = f"uplinks.{kind}"
        u = r.mapping(unode, field, {"topic", "codec", "separator", "fields"}, {"amount_scale"})
        if r.scalar(u["codec"], f"{field}.codec", str) != "delimited":
            raise r.fail(u["codec"], f"{field}.codec", "uplinks know the 'delimited' codec")
        separator = r.scalar(u["separator"], f"{field}.separator", str)
        if len(separator) != 1 or separator.isalnum() or separator in "{}":
            raise r.fail(u["separator"], f"{field}.separator", "one character, not a letter, digit or brace")
        if not isinstance(u["fields"], yaml.SequenceNode):
            raise r.fail(u["fields"], f"{field}.fields", "must be a list")
        fields = tuple(r.scalar(f, f"{field}.fields", str) for f in u["fields"].value)
        if sorted(fields) not in (["amount"], ["amount", "device_id"]):
            raise r.fail(u["fields"], f"{field}.fields", "amount, and at most once device_id")
        topic = r.topic(u["topic"], f"{field}.topic")
        if topic.shared and "device_id" not in fields:
            # Otherwise nothing would say which device asks (and any device could ask for any other).
            raise r.fail(u["fields"], f"{field}.fields", "a shared topic's payload must name the device (device_id)")
        uplinks.append(Uplink(kind, topic, separator, fields, r.scale(u, field)))

    down = r.mapping(top["downlinks"], "downlinks", {"subscribe"}, set(DOWNLINK_KINDS))
    subscribe = r.topic(down["subscribe"], "downlinks.subscribe")
    if subscribe.shared:
        raise r.fail(down["subscribe"], "downlinks.subscribe", "must hold {device_id}: a device hears only its own")
    downlinks = {}
    for kind in DOWNLINK_KINDS:
        if kind not in down:
            continue
        field = f"downlinks.{kind}"
        d = r.mapping(
            down[kind], field, {"topic", "codec", "template"}, {"amount_scale", "clip_name", "acked_by_puback"}
        )
        topic = r.topic(d["topic"], f"{field}.topic")
        if topic.render("x") != subscribe.render("x"):
            raise r.fail(d["topic"], f"{field}.topic", "must be the topic the device subscribes to")
        codec = r.scalar(d["codec"], f"{field}.codec", str)
        template: str | dict[str, Any]
        if codec == "text":
            text = r.scalar(d["template"], f"{field}.template", str)
            names = _PLACEHOLDER.findall(text)
            template = text
        elif codec == "json":
            tnode = d["template"]
            if not isinstance(tnode, yaml.MappingNode):
                raise r.fail(tnode, f"{field}.template", "a json template is a mapping of field to value")
            template = {
                str(k.value): r.scalar(v, f"{field}.template.{k.value}", str | int | bool) for k, v in tnode.value
            }
            names = [n for v in template.values() if isinstance(v, str) for n in _PLACEHOLDER.findall(v)]
        else:
            raise r.fail(d["codec"], f"{field}.codec", "downlinks know 'text' and 'json'")
        unknown = sorted(set(names) - DOWNLINK_FIELDS)
        if unknown:
            raise r.fail(d["template"], f"{field}.template", f"unknown placeholder(s) {unknown}")
        clip_name = r.scalar(d["clip_name"], f"{field}.clip_name", str) if "clip_name" in d else "{clip}"
        if "{clip}" not in clip_name:
            raise r.fail(d["clip_name"], f"{field}.clip_name", "must hold {clip}")
        acked = "acked_by_puback" in d and r.scalar(d["acked_by_puback"], f"{field}.acked_by_puback", bool)
        if acked and kind != "payment":
            raise r.fail(d["acked_by_puback"], f"{field}.acked_by_puback", "only a payment expects an ack")
        downlinks[kind] = Downlink(kind, topic, codec, template, r.scale(d, field), clip_name, bool(acked))

    return Dialect(
        id=dialect_id,
        description=r.scalar(top["description"], "description", str) if "description" in top else "",
        signs_announcements=bool(
            r.scalar(top["signs_announcements"], "signs_announcements", bool) if "signs_announcements" in top else False
        ),
        qos=qos,
        subscribe=subscribe,
        uplinks=tuple(uplinks),
        downlinks=downlinks,
    )
