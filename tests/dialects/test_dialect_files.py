"""Dialect files are validated when the broker starts: each error names the file, the line and the field;
the docs' worked example (a third vendor, data only) loads and translates."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from qris_soundbox.broker.dialects import DIALECTS_DIR, DialectError, Dialects, Refused, load_dialect

Q161 = (DIALECTS_DIR / "q161-pro.yaml").read_text()
DOCS = Path(__file__).parents[2] / "docs" / "dialects.md"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vendor.yaml"
    path.write_text(text)
    return path


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        ('subscribe: "topic_{device_id}"', 'subscribe: "topic_+"', "downlinks.subscribe", "unsafe topic"),
        ("topic: qris/request", "topic: qris/#", "uplinks.dynamic-qr/request.topic", "unsafe topic"),
        ("topic: qris/request", "topic: $SYS/request", "uplinks.dynamic-qr/request.topic", "unsafe topic"),
        ("topic: qris/request", "topic: qris//request", "uplinks.dynamic-qr/request.topic", "unsafe topic"),
        ("topic: qris/request", 'topic: "qris/{amount}"', "uplinks.dynamic-qr/request.topic", "placeholder"),
        ("topic: qris/request", "topic: devices/x/uplink", "uplinks.dynamic-qr/request.topic", "native"),
        ('subscribe: "topic_{device_id}"', "subscribe: topic_all", "downlinks.subscribe", "own"),
        ("fields: [device_id, amount]", "fields: [amount]", "uplinks.dynamic-qr/request.fields", "name the device"),
        ("fields: [device_id, amount]", "fields: [device_id, price]", "uplinks.dynamic-qr/request.fields", "amount"),
        ('separator: "|"', 'separator: "ab"', "uplinks.dynamic-qr/request.separator", "one character"),
        ("amount_scale: 100  #", "amount_scale: -100  #", "uplinks.dynamic-qr/request.amount_scale", "must be"),
        ("amount_scale: 100  #", "amount_scale: 0.5  #", "uplinks.dynamic-qr/request.amount_scale", "must be a int"),
        ('template: "QR:{qr_payload}"', 'template: "QR:{secret}"', "downlinks.dynamic-qr/response.template", "unknown"),
        ("qos: 1", "qos: 2", "qos", "0 or 1"),
        ("version: 1", "version: 2", "version", "version 1"),
        ('client_id: "{device_id}"', 'client_id: "sb-{device_id}"', "client.client_id", "only {device_id}"),
        ("codec: delimited", "codec: protobuf", "uplinks.dynamic-qr/request.codec", "delimited"),
        ("    codec: json", "    codec: xml", "downlinks.payment.codec", "'text' and 'json'"),
        ('clip_name: "{clip}.mp3"', 'clip_name: "x.mp3"', "downlinks.payment.clip_name", "{clip}"),
        ("qos: 1", "qos: 1\ncolour: red", "colour", "unknown field"),
    ],
)
def test_a_dialect_file_error_names_file_line_and_field(
    tmp_path: Path, old: str, new: str, field: str, message: str
) -> None:
    assert old in Q161
    text = Q161.replace(old, new, 1)
    path = _write(tmp_path, text)
    with pytest.raises(DialectError) as raised:
        load_dialect(path)
    error = str(raised.value)
    match = re.match(rf"^{re.escape(str(path))}:(\d+): {re.escape(field)}: (.*)$", error)
    assert match is not None, error
    assert message in match.group(2), error
    assert int(match.group(1)) == _line_of(text, new.splitlines()[-1]), error


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", ":1: the file is empty"), ("version: [1\n", "not valid YAML"), ("- 1\n", ":1: : must be a mapping")],
)
def test_a_file_that_is_no_dialect_is_refused(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(DialectError, match=re.escape(expected)):
        load_dialect(_write(tmp_path, text))


def test_a_missing_field_and_a_duplicate_id_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DialectError, match=r"vendor.yaml:\d+: qos: is required"):
        load_dialect(_write(tmp_path, Q161.replace("qos: 1\n", "")))
    (tmp_path / "a.yaml").write_text(Q161)
    (tmp_path / "b.yaml").write_text(Q161)
    with pytest.raises(DialectError, match="b.yaml:1: id: dialect 'q161-pro' is defined twice"):
        Dialects.load(tmp_path)


def test_the_docs_third_dialect_loads_from_data_alone(tmp_path: Path) -> None:
    """docs/dialects.md's worked example, copied out of the page as a vendor would, translates both ways."""
    example = re.search(r"```yaml\n(# acl/dialects/acme-box\.yaml.*?)```", DOCS.read_text(), re.S)
    assert example is not None
    (tmp_path / "acme-box.yaml").write_text(example.group(1))
    dialect = Dialects.load(tmp_path).get("acme-box")
    assert dialect is not None and not dialect.signs_announcements
    topic, body = dialect.inbound("dev_7", "acme/dev_7/qr", b"15000")  # type: ignore[misc]
    assert topic == "devices/dev_7/uplink/dynamic-qr/request"
    assert msgspec.json.decode(body)["amount"] == 15_000
    assert dialect.inbound("dev_7", "acme/dev_8/qr", b"15000") == Refused("topic_outside_dialect")
    assert dialect.native_filter("dev_7", "acme/dev_7/out") == "devices/dev_7/downlink/#"
    native = msgspec.json.encode({"message_id": "m1", "amount": 15_000, "announcement": {"clips": ["lima", "belas"]}})
    assert dialect.outbound("dev_7", "devices/dev_7/downlink/payment", native) == (
        "acme/dev_7/out",
        b'{"event":"paid","rp":15000,"id":"m1","voice":["lima.wav","belas.wav"]}',
    )
    assert dialect.outbound("dev_7", "devices/dev_7/downlink/config", b"{}") is None
