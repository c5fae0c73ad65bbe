"""Hostile HTTP against a real platform: no request, however malformed, gets a 500 (SPEC §3).

Each case is a real request through uvicorn to the real app on the real
database, and each answer must be the error envelope with a stable code. The
cases are the ones an adversarial run found (deep JSON in a callback, U+0000
reaching PostgreSQL, callbacks without a JSON content type) and their family:
other JSON routes, path and query parameters, integers beyond bigint, invalid
UTF-8, very long ids.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import msgspec
import pytest

from tests.devices.helpers import provisioned_device
from tests.foundation.test_http_basics import assert_envelope
from tests.onboarding import onboarded_terminal
from tests.payments.helpers import callback_body, signed_headers
from tests.support import ADMIN_TOKEN, RunningPlatform

CALLBACK = "/integrations/qris/callback"
JSON = {"Content-Type": "application/json"}
DEEP = "[" * 5_000 + "]" * 5_000


async def _count(running: RunningPlatform, sql: str, *args: Any) -> int:
    return await running.platform.db.pool.fetchval(sql, *args)


async def _callback_trace(running: RunningPlatform) -> tuple[int, int, int]:
    """What a callback can leave behind: claimed callbacks, transactions, callback audit rows."""
    return (
        await _count(running, "SELECT count(*) FROM acquirer_callbacks"),
        await _count(running, "SELECT count(*) FROM transactions"),
        await _count(running, "SELECT count(*) FROM audit_logs WHERE action LIKE 'qris.callback.%'"),
    )


def assert_answered(response: httpx.Response) -> None:
    """Not a 5xx, and a 4xx is the envelope."""
    assert response.status_code < 500, (response.request.url, response.text[:300])
    if response.status_code >= 400:
        assert_envelope(response, response.status_code, response.json()["error"]["code"])


def _with_field(body: dict[str, Any], name: str, raw_json: str) -> bytes:
    """The body with one more field whose value is ``raw_json`` verbatim."""
    encoded = msgspec.json.encode(body)
    return encoded[:-1] + f',"{name}":{raw_json}}}'.encode()


@pytest.fixture(scope="module")
async def terminal(running: RunningPlatform) -> dict[str, str]:
    return await onboarded_terminal(running)


@pytest.fixture(scope="module")
async def device_headers(running: RunningPlatform) -> dict[str, str]:
    device_id, secret = await provisioned_device(running)
    return {"X-Device-Id": device_id, "X-Device-Secret": secret} | JSON


# --------------------------------------------------------------------------- deep JSON


async def test_deeply_nested_unknown_field_in_a_signed_callback_is_400(
    running: RunningPlatform, terminal: dict[str, str]
) -> None:
    body = callback_body(amount=5_000, terminal_id=terminal["terminal_id"])
    raw = _with_field(body, "acquirer_metadata", DEEP)
    before = await _callback_trace(running)
    response = await running.http.post(CALLBACK, content=raw, headers=signed_headers(raw))
    error = assert_envelope(response, 400, "validation_error")
    assert error["details"] == {"max_depth": 32}
    assert await _callback_trace(running) == before


async def test_moderately_nested_unknown_field_is_still_accepted(
    running: RunningPlatform, terminal: dict[str, str]
) -> None:
    # An acquirer's own metadata, a few levels deep, is tolerated as before; brackets
    # inside strings (escaped quotes and all) are text, not nesting.
    body = callback_body(amount=5_000, terminal_id=terminal["terminal_id"])
    text = msgspec.json.encode('\\"[{' * 200 + '"]').decode()
    raw = _with_field(body, "acquirer_metadata", f'{{"a": {{"b": [[{{"c": [1, 2, {{"d": {text}}}]}}]]}}, "e": [[]]}}')
    response = await running.http.post(CALLBACK, content=raw, headers=signed_headers(raw))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "paid"


@pytest.mark.parametrize(
    ("path", "auth"),
    [("/admin/merchants", True), ("/admin/login", False), ("/merchant/login", False)],
)
async def test_deeply_nested_body_on_any_json_route_is_400(running: RunningPlatform, path: str, auth: bool) -> None:
    headers = (running.admin_headers if auth else {}) | JSON
    for raw in (f'{{"name": {DEEP}}}', DEEP, '{"a":' * 3_000 + "1" + "}" * 3_000):
        assert_envelope(await running.http.post(path, content=raw, headers=headers), 400, "validation_error")


async def test_deep_json_in_a_device_heartbeat_is_400(running: RunningPlatform, device_headers: dict[str, str]) -> None:
    raw = f'{{"battery_level": {DEEP}}}'
    response = await running.http.post("/device/heartbeat", content=raw, headers=device_headers)
    assert_envelope(response, 400, "validation_error")


# --------------------------------------------------------------------------- U+0000


@pytest.mark.parametrize("field", ["event_id", "provider_reference", "failure_reason", "transaction_id"])
async def test_nul_in_a_signed_callback_string_is_400_and_changes_nothing(
    running: RunningPlatform, terminal: dict[str, str], field: str
) -> None:
    body = callback_body(amount=5_000, terminal_id=terminal["terminal_id"])
    if field == "transaction_id":
        del body["terminal_id"]
    body[field] = "x\x00y"
    raw = msgspec.json.encode(body)
    before = await _callback_trace(running)
    response = await running.http.post(CALLBACK, content=raw, headers=signed_headers(raw))
    assert_envelope(response, 400, "validation_error")
    assert await _callback_trace(running) == before


@pytest.mark.parametrize(
    "path",
    [
        "/admin/merchants/%00abc",
        "/admin/transactions/txn_%00",
        "/admin/devices/%00/config/status",
        "/admin/settlement-batches/stb%00x",
        "/admin/merchants?cursor=%00",
        "/admin/transactions?status=%00&merchant_id=a%00b",
        "/admin/audit-logs?entity_id=%00",
        "/admin/ledger-entries?transaction_id=%00",
    ],
)
async def test_nul_in_a_path_or_query_parameter_is_400(running: RunningPlatform, path: str) -> None:
    assert_envelope(await running.http.get(path, headers=running.admin_headers), 400, "validation_error")


async def test_nul_in_json_strings_of_other_routes_is_400(
    running: RunningPlatform, device_headers: dict[str, str]
) -> None:
    cases = [
        ("/admin/login", {"email": "a\x00@example.test", "password": "p"}, JSON),
        ("/merchant/login", {"email": "m\x00@example.test", "password": "p"}, JSON),
        ("/device/heartbeat", {"firmware_version": "1.0\x00"}, device_headers),
        ("/admin/device-models", {"code": "m\x00", "name": "x"}, running.admin_headers | JSON),
    ]
    for path, body, headers in cases:
        response = await running.http.post(path, content=msgspec.json.encode(body), headers=headers)
        assert response.status_code in (400, 422), (path, response.text)
        assert_envelope(response, response.status_code, "validation_error")


# --------------------------------------------------------------------------- numbers, UTF-8, long ids


@pytest.mark.parametrize("version", [2**31, 2**63, 10**30])
async def test_integer_beyond_the_column_is_400_not_500(
    running: RunningPlatform, device_headers: dict[str, str], version: int
) -> None:
    raw = msgspec.json.encode({"version": version, "status": "applied"})
    response = await running.http.post("/device/config/ack", content=raw, headers=device_headers)
    assert_envelope(response, 400, "validation_error")


@pytest.mark.parametrize("amount", [2**63, 10**30, -(2**63) - 1])
async def test_money_beyond_bigint_is_a_validation_error(
    running: RunningPlatform, terminal: dict[str, str], amount: int
) -> None:
    raw = msgspec.json.encode(callback_body(amount=amount, terminal_id=terminal["terminal_id"]))
    response = await running.http.post(CALLBACK, content=raw, headers=signed_headers(raw))
    assert_envelope(response, 400, "validation_error")
    admin = await running.http.post(
        "/admin/transactions",
        headers=running.admin_headers,
        json={"terminal_id": terminal["terminal_id"], "amount": amount},
    )
    assert_envelope(admin, 400, "validation_error")


@pytest.mark.parametrize(
    "query",
    [
        "/admin/transactions?from=9999-12-31T23:59:59-14:00",
        "/admin/ledger-entries?to=0001-01-01T00:00:00%2B14:00",
        "/admin/audit-logs?from=0001-01-01T00:00:00%2B23:59",
    ],
)
async def test_a_date_beyond_what_postgresql_stores_is_400(running: RunningPlatform, query: str) -> None:
    # Valid RFC 3339, but in UTC it falls in year 10000 or year 0.
    assert_envelope(await running.http.get(query, headers=running.admin_headers), 400, "validation_error")


async def test_invalid_utf8_is_a_validation_error(running: RunningPlatform) -> None:
    raw = b'{"name": "Warung \xff\xfe", "city": "Bandung"}'
    response = await running.http.post("/admin/merchants", content=raw, headers=running.admin_headers | JSON)
    assert_envelope(response, 400, "validation_error")
    signed = b'{"event_id": "\xc3\x28"}'
    assert_envelope(
        await running.http.post(CALLBACK, content=signed, headers=signed_headers(signed)), 400, "validation_error"
    )
    # In the URL, percent-escapes that are not UTF-8 are decoded with U+FFFD: an unknown id, an empty page.
    for path in ("/admin/merchants/%FF%FE", "/admin/merchants?cursor=%C3%28", "/admin/transactions?status=%ED%A0%80"):
        assert_answered(await running.http.get(path, headers=running.admin_headers))


@pytest.mark.parametrize("length", [256, 5_000, 60_000])
async def test_very_long_ids_are_answered(running: RunningPlatform, length: int) -> None:
    long_id = "mer_" + "A" * length
    for method, path, body in [
        ("GET", f"/admin/merchants/{long_id}", None),
        ("GET", f"/admin/merchants?cursor={long_id}", None),
        ("POST", f"/admin/merchants/{long_id}/approve", None),
        ("POST", "/admin/transactions", {"terminal_id": long_id, "amount": 1000}),
        ("POST", "/admin/settlement-batches", {"merchant_id": long_id}),
    ]:
        assert_answered(await running.http.request(method, path, json=body, headers=running.admin_headers))


# --------------------------------------------------------------------------- content type


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        None,
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
        "multipart/form-data; boundary=x",
    ],
)
@pytest.mark.parametrize("signed", [True, False])
async def test_callback_that_is_not_json_is_415_and_changes_nothing(
    running: RunningPlatform, terminal: dict[str, str], content_type: str | None, signed: bool
) -> None:
    body = callback_body(amount=5_000, terminal_id=terminal["terminal_id"])
    raw = msgspec.json.encode(body)
    headers = signed_headers(raw) if signed else {}
    headers.pop("Content-Type", None)
    if content_type is not None:
        headers["Content-Type"] = content_type
    before = await _callback_trace(running)
    # httpx adds no Content-Type to raw `content`: the request really goes without one.
    request = running.http.build_request("POST", CALLBACK, content=raw, headers=headers)
    assert request.headers.get("content-type") == content_type
    response = await running.http.send(request)
    error = assert_envelope(response, 415, "unsupported_media_type")
    assert "application/json" in error["message"]
    assert await _callback_trace(running) == before


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON; Charset=UTF-8",
        "application/vnd.acquirer.v2+json",
    ],
)
async def test_callback_with_a_json_content_type_is_accepted(
    running: RunningPlatform, terminal: dict[str, str], content_type: str
) -> None:
    raw = msgspec.json.encode(callback_body(amount=5_000, terminal_id=terminal["terminal_id"]))
    response = await running.http.post(
        CALLBACK, content=raw, headers=signed_headers(raw) | {"Content-Type": content_type}
    )
    assert response.status_code == 200, response.text


async def test_every_json_route_refuses_a_body_that_is_not_json(
    running: RunningPlatform, device_headers: dict[str, str]
) -> None:
    raw = msgspec.json.encode({"name": "Warung Teks", "city": "Bogor"})
    merchants = await _count(running, "SELECT count(*) FROM merchants")
    for path, headers in [
        ("/admin/merchants", running.admin_headers),
        ("/admin/login", {}),
        ("/device/heartbeat", {k: v for k, v in device_headers.items() if k != "Content-Type"}),
    ]:
        response = await running.http.post(path, content=raw, headers=headers | {"Content-Type": "text/plain"})
        assert_envelope(response, 415, "unsupported_media_type")
    assert await _count(running, "SELECT count(*) FROM merchants") == merchants


async def test_bodyless_writes_need_no_content_type(running: RunningPlatform) -> None:
    # POSTs that take no body (or an optional one) work without any Content-Type.
    response = await running.http.post("/admin/transactions/expire-due", headers=running.admin_headers)
    assert response.status_code == 200, response.text


async def test_unknown_routes_stay_404_whatever_the_body(running: RunningPlatform) -> None:
    response = await running.http.post("/no/such/route", content=b"x", headers={"Content-Type": "text/plain"})
    assert_envelope(response, 404, "not_found")


async def _raw_status(running: RunningPlatform, request: bytes) -> int:
    host, port = running.http_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=10)
    finally:
        writer.close()
    return int(status_line.split()[1])


@pytest.mark.parametrize(
    "target",
    [
        b"/admin/merchants/\x00abc",
        b"/admin/merchants/\xff\xfe",
        b"/admin/merchants?cursor=\x00",
        b"/admin/merchants/" + b"a" * 70_000,
    ],
)
async def test_a_malformed_request_target_is_never_a_500(running: RunningPlatform, target: bytes) -> None:
    # Bytes no HTTP client would send, written on the socket by hand.
    request = b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ADMIN_TOKEN.encode() + b"\r\n\r\n"
    assert 400 <= await _raw_status(running, request) < 500
