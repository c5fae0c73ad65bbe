"""Property-based: build → parse round-trips, single-character corruption is caught, only QrisError escapes."""

from __future__ import annotations

import msgspec
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from qris_soundbox.core.qris import (
    MERCHANT_CRITERIA,
    ParsedQris,
    QrisError,
    QrisInput,
    build_dynamic_qris,
    build_static_qris,
    parse_qris,
)
from tests.qris.payloads import DYNAMIC_FIELDS, assemble, crc, tlv

PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


def text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(PRINTABLE, min_size=1, max_size=max_size).filter(lambda s: s.strip())


def digits(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    return st.text(st.sampled_from("0123456789"), min_size=min_size, max_size=max_size)


@st.composite
def qris_inputs(draw: st.DrawFn) -> QrisInput:
    with_acquirer = draw(st.booleans())
    return QrisInput(
        merchant_name=draw(text(25)),
        merchant_city=draw(text(15)),
        postal_code=draw(text(10)),
        mcc=draw(digits(4, 4)),
        nmid="ID" + draw(digits(10, 13)),
        merchant_criteria=draw(st.sampled_from(MERCHANT_CRITERIA)),
        acquirer_guid=draw(text(32)) if with_acquirer else None,
        merchant_pan=draw(st.none() | digits(1, 19)) if with_acquirer else None,
        merchant_id=draw(st.none() | text(15)) if with_acquirer else None,
        amount=draw(st.integers(min_value=1, max_value=10**13 - 1)),
        bill_number=draw(st.none() | text(25)),
        reference_label=draw(st.none() | text(25)),
        terminal_label=draw(st.none() | text(25)),
    )


def assert_matches(parsed: ParsedQris, data: QrisInput) -> None:
    assert (parsed.merchant_name, parsed.merchant_city, parsed.postal_code) == (
        data.merchant_name,
        data.merchant_city,
        data.postal_code,
    )
    assert (parsed.mcc, parsed.nmid, parsed.merchant_criteria) == (data.mcc, data.nmid, data.merchant_criteria)
    assert (parsed.currency, parsed.country, parsed.payload_format) == ("360", "ID", "01")
    if data.acquirer_guid is None:
        assert "26" not in parsed.merchant_accounts
    else:
        account = parsed.merchant_accounts["26"]
        assert account.get("00") == data.acquirer_guid
        assert account.get("01") == data.merchant_pan
        assert account.get("02") == data.merchant_id
    labels = (data.bill_number, data.reference_label, data.terminal_label)
    if labels == (None, None, None):
        assert parsed.additional_data is None
    else:
        assert parsed.additional_data is not None
        extra = parsed.additional_data
        assert (extra.bill_number, extra.reference_label, extra.terminal_label) == labels


@given(qris_inputs())
def test_dynamic_round_trips(data: QrisInput) -> None:
    payload = build_dynamic_qris(data)
    parsed = parse_qris(payload)
    assert parsed.point_of_initiation == "dynamic"
    assert parsed.amount == data.amount
    assert parsed.crc == crc(payload[:-4])
    assert_matches(parsed, data)


@given(qris_inputs())
def test_static_round_trips(data: QrisInput) -> None:
    parsed = parse_qris(build_static_qris(msgspec.structs.replace(data, amount=None)))
    assert (parsed.point_of_initiation, parsed.amount) == ("static", None)
    assert_matches(parsed, data)


@given(qris_inputs(), st.data())
def test_any_single_character_substitution_is_rejected(data: QrisInput, draw: st.DataObject) -> None:
    payload = build_dynamic_qris(data)
    index = draw.draw(st.integers(min_value=0, max_value=len(payload) - 1))
    replacement = draw.draw(st.characters(min_codepoint=0, max_codepoint=0x2FF))
    assume(replacement != payload[index])
    mutated = payload[:index] + replacement + payload[index + 1 :]
    # CRC-16 catches every error confined to 16 bits, so one changed character never slips through.
    try:
        parse_qris(mutated)
    except QrisError:
        return
    raise AssertionError(f"accepted a payload with position {index} changed")


@given(qris_inputs(), st.data())
def test_an_inserted_or_deleted_character_is_rejected_or_parses_consistently(
    data: QrisInput, draw: st.DataObject
) -> None:
    payload = build_dynamic_qris(data)
    index = draw.draw(st.integers(min_value=0, max_value=len(payload)))
    if draw.draw(st.booleans()):
        mutated = payload[:index] + draw.draw(PRINTABLE) + payload[index:]
    else:
        assume(index < len(payload))
        mutated = payload[:index] + payload[index + 1 :]
    try:
        parsed = parse_qris(mutated)
    except QrisError:
        return
    # Only a payload that is itself valid may pass: its CRC and fields agree with the mutated text.
    assert mutated.endswith("6304" + parsed.crc)
    assert parsed.crc == crc(mutated[:-4])
    assert parse_qris(mutated) == parsed


@settings(max_examples=300)
@given(st.text(max_size=600))
def test_arbitrary_text_raises_nothing_but_qris_error(payload: str) -> None:
    try:
        parse_qris(payload)
    except QrisError:
        pass


TAGS = st.integers(min_value=0, max_value=99).map(lambda n: f"{n:02d}")


@settings(max_examples=300)
@given(st.lists(st.tuples(TAGS, text(40)), max_size=14), st.booleans())
def test_arbitrary_tlv_with_a_valid_crc_raises_nothing_but_qris_error(
    fields: list[tuple[str, str]], lead: bool
) -> None:
    if lead:  # start like a real payload so the deeper checks are reached
        fields = [("00", "01"), ("01", "12"), *fields]
    try:
        parse_qris(assemble(fields))
    except QrisError:
        pass


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=len(DYNAMIC_FIELDS) - 1), st.one_of(text(60), st.text(max_size=60)))
def test_one_field_replaced_by_anything_raises_nothing_but_qris_error(position: int, value: str) -> None:
    tag = DYNAMIC_FIELDS[position][0]
    body = "".join(tlv(t, value if t == tag else v) for t, v in DYNAMIC_FIELDS) + "6304"
    try:
        parsed = parse_qris(body + crc(body))
    except QrisError:
        return
    if tag == "59":
        assert parsed.merchant_name == value


@given(
    st.builds(
        QrisInput,
        merchant_name=st.text(max_size=30),
        merchant_city=st.text(max_size=20),
        postal_code=st.text(max_size=12),
        mcc=st.text(max_size=5),
        nmid=st.text(max_size=17),
        merchant_criteria=st.sampled_from([*MERCHANT_CRITERIA, "", "XXXX"]),
        acquirer_guid=st.none() | st.text(max_size=40),
        merchant_pan=st.none() | st.text(max_size=22),
        merchant_id=st.none() | st.text(max_size=18),
        amount=st.none() | st.integers(min_value=-10, max_value=10**14),
        bill_number=st.none() | st.text(max_size=30),
        reference_label=st.none() | st.text(max_size=30),
        terminal_label=st.none() | st.text(max_size=30),
    )
)
def test_the_builder_raises_nothing_but_qris_error_and_what_it_builds_parses(data: QrisInput) -> None:
    for build in (build_dynamic_qris, build_static_qris):
        try:
            payload = build(data)
        except QrisError:
            continue
        assert parse_qris(payload).merchant_name == data.merchant_name
