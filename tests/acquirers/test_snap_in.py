"""SNAP in (SPEC §13) through the real HTTP server, PostgreSQL, broker and an MQTT soundbox: the
acquirer's side is signed in the test itself (tests/acquirers/snap_client.py), never by core/snap."""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgspec
import pytest

from tests.acquirers.snap_client import NOTIFY, Acquirer, minified, new_key, notify_body, public_pem, timestamp
from tests.devices.helpers import first_message
from tests.payments.helpers import pending_transaction
from tests.payments.test_announcements import bound_soundbox, subscribed
from tests.support import RunningPlatform

SECRET = "sym-client-secret-0123456789"


async def register(running: RunningPlatform, code: str, mode: str) -> Acquirer:
    key = new_key()
    settings: dict[str, Any] = {
        "client_key": f"{code}-key",
        "public_key_pem": public_pem(key),
        "notify_signature": mode,
    }
    if mode == "symmetric":
        settings["client_secret"] = SECRET
    made = await running.http.post(
        "/admin/acquirers",
        json={"code": code, "name": code.upper(), "protocol": "snap", "settings": settings},
        headers=running.admin_headers,
    )
    assert made.status_code == 201, made.text
    return Acquirer(f"{code}-key", key, SECRET if mode == "symmetric" else None)


async def attach(running: RunningPlatform, ids: dict[str, str], code: str, terminal: str) -> None:
    answer = await running.http.put(
        f"/admin/merchants/{ids['merchant_id']}/acquirer",
        json={"acquirer_code": code, "acquirer_merchant_id": f"M-{code}"},
        headers=running.admin_headers,
    )
    assert answer.status_code == 200, answer.text
    answer = await running.http.put(
        f"/admin/terminals/{ids['terminal_id']}/acquirer-id",
        json={"acquirer_terminal_id": terminal},
        headers=running.admin_headers,
    )
    assert answer.status_code == 200, answer.text


class World(msgspec.Struct):
    sym: Acquirer
    asym: Acquirer
    sym_ids: dict[str, str]
    asym_ids: dict[str, str]
    sym_device: tuple[str, str]
    asym_device: tuple[str, str]


@pytest.fixture(scope="module")
async def world(running: RunningPlatform) -> World:
    sym = await register(running, "bank-sym", "symmetric")
    asym = await register(running, "bank-asym", "asymmetric")
    sym_ids, sym_device, sym_secret = await bound_soundbox(running)
    asym_ids, asym_device, asym_secret = await bound_soundbox(running)
    await attach(running, sym_ids, "bank-sym", "TID-SYM-1")
    await attach(running, asym_ids, "bank-asym", "TID-ASYM-1")
    return World(
        sym=sym,
        asym=asym,
        sym_ids=sym_ids,
        asym_ids=asym_ids,
        sym_device=(sym_device, sym_secret),
        asym_device=(asym_device, asym_secret),
    )


async def written(running: RunningPlatform) -> tuple[int, ...]:
    """Everything a notification could write (transactions, ledger, outbox, external ids, reconciliation)."""
    pool = running.platform.db.pool
    return tuple(
        [
            await pool.fetchval(f"SELECT count(*) FROM {table}")
            for table in (
                "transactions",
                "ledger_entries",
                "device_outbox",
                "snap_external_ids",
                "reconciliation_exceptions",
            )
        ]
    )


async def post(running: RunningPlatform, raw: bytes, headers: dict[str, str]):
    return await running.http.post(NOTIFY, content=raw, headers=headers)


# --- the happy paths: each mode makes the soundbox speak, once ---


async def test_symmetric_notification_is_announced_once(running: RunningPlatform, world: World) -> None:
    token = await world.sym.access_token(running.http)
    device_id, secret = world.sym_device
    reference = uuid.uuid4().hex[:20]
    raw = minified(notify_body(reference=reference, terminal_id="TID-SYM-1"))
    async with running.mqtt(device_id, secret) as device:
        await subscribed(device, device_id)
        answer = await post(running, raw, world.sym.notify_headers(raw, token=token))
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"responseCode": "2005200", "responseMessage": "Successful"}
        message = await first_message(device, timeout=5)
        assert message is not None and str(message.topic) == f"devices/{device_id}/downlink/payment"
        payload = msgspec.json.decode(message.payload)
        assert payload["amount"] == 25_000
        await device.publish(
            f"devices/{device_id}/uplink/payment/ack", msgspec.json.encode({"message_id": payload["message_id"]}), qos=1
        )
        before = await written(running)
        # The acquirer resends with a new X-EXTERNAL-ID: acknowledged, nothing new, no second announcement.
        again = await post(running, raw, world.sym.notify_headers(raw, token=token))
        assert again.status_code == 200 and again.json()["responseCode"] == "2005200"
        assert await first_message(device, timeout=1) is None
    after = await written(running)
    assert after[:3] == before[:3] and after[3] == before[3] + 1
    ledger = await running.platform.db.pool.fetchval(
        "SELECT count(*) FROM ledger_entries l JOIN transactions t ON t.id = l.transaction_id"
        " WHERE t.provider_reference = $1",
        reference,
    )
    assert ledger == 3


async def test_asymmetric_notification_pretty_printed_is_announced(running: RunningPlatform, world: World) -> None:
    device_id, secret = world.asym_device
    body = notify_body(reference=uuid.uuid4().hex[:20], terminal_id="TID-ASYM-1", amount="1500.00")
    # Pretty-printed with keys reordered and non-ASCII escaped: the sender signs the minified form.
    pretty = json.dumps(dict(reversed(list(body.items()))), indent=2, ensure_ascii=True).replace("/", "\\/")
    raw = pretty.encode()
    signed = json.dumps(dict(reversed(list(body.items()))), separators=(",", ":"), ensure_ascii=True)
    signed = signed.replace("/", "\\/").encode()
    async with running.mqtt(device_id, secret) as device:
        await subscribed(device, device_id)
        answer = await post(running, raw, world.asym.notify_headers(raw, signed_body=signed))
        assert answer.status_code == 200, answer.text
        message = await first_message(device, timeout=5)
        assert message is not None and msgspec.json.decode(message.payload)["amount"] == 1500


async def test_dynamic_qr_found_by_partner_reference(running: RunningPlatform, world: World) -> None:
    transaction_id = await pending_transaction(running, world.asym_ids["terminal_id"], 7_000)
    raw = minified(notify_body(reference=uuid.uuid4().hex[:20], transaction_id=transaction_id, amount="7000.00"))
    answer = await post(running, raw, world.asym.notify_headers(raw))
    assert answer.status_code == 200, answer.text
    status = await running.platform.db.pool.fetchval("SELECT status FROM transactions WHERE id = $1", transaction_id)
    assert status == "paid"


async def test_pending_status_is_acknowledged_and_changes_nothing(running: RunningPlatform, world: World) -> None:
    before = await written(running)
    raw = minified(notify_body(reference=uuid.uuid4().hex[:20], terminal_id="TID-ASYM-1", status="03"))
    answer = await post(running, raw, world.asym.notify_headers(raw))
    assert answer.status_code == 200 and answer.json()["responseCode"] == "2005200"
    after = await written(running)
    assert after[:3] == before[:3]


# --- the token endpoint ---


async def test_token_answers_per_standard(running: RunningPlatform, world: World) -> None:
    answer = await world.sym.token(running.http)
    assert answer.status_code == 200
    body = answer.json()
    assert body["responseCode"] == "2007300" and body["tokenType"] == "Bearer" and body["expiresIn"] == "900"
    stored = await running.platform.db.pool.fetchval(
        "SELECT count(*) FROM snap_access_tokens WHERE client_id = 'bank-sym'"
    )
    assert stored >= 1


@pytest.mark.parametrize("case", ["stale", "future", "wrong-key", "unknown-client", "no-signature"])
async def test_token_refusals(running: RunningPlatform, world: World, case: str) -> None:
    ts = timestamp(-400 if case == "stale" else 400 if case == "future" else 0)
    acquirer = world.sym
    if case == "wrong-key":
        acquirer = Acquirer(world.sym.client_key, new_key(), SECRET)
    if case == "unknown-client":
        acquirer = Acquirer("nobody", world.sym.key, SECRET)
    before = await running.platform.db.pool.fetchval("SELECT count(*) FROM snap_access_tokens")
    if case == "no-signature":
        answer = await running.http.post(
            "/v1.0/access-token/b2b",
            content=b'{"grantType":"client_credentials"}',
            headers={"Content-Type": "application/json", "X-CLIENT-KEY": acquirer.client_key, "X-TIMESTAMP": ts},
        )
    else:
        answer = await acquirer.token(running.http, ts)
    assert answer.status_code == 401, answer.text
    assert answer.json()["responseCode"] == "4017300"
    assert await running.platform.db.pool.fetchval("SELECT count(*) FROM snap_access_tokens") == before


async def test_token_accepts_grant_type_spelling(running: RunningPlatform, world: World) -> None:
    from tests.acquirers.snap_client import rsa_b64

    ts = timestamp()
    answer = await running.http.post(
        "/v1.0/access-token/b2b",
        content=b'{"grant_type":"client_credentials"}',
        headers={
            "Content-Type": "application/json",
            "X-CLIENT-KEY": world.sym.client_key,
            "X-TIMESTAMP": ts,
            "X-SIGNATURE": rsa_b64(world.sym.key, f"{world.sym.client_key}|{ts}"),
        },
    )
    assert answer.status_code == 200 and answer.json()["responseCode"] == "2007300"


# --- every bad input: a SNAP error, nothing written, nothing announced ---


async def _refused(running: RunningPlatform, world: World, raw: bytes, headers: dict[str, str], code: str) -> None:
    device_id, secret = world.sym_device
    before = await written(running)
    async with running.mqtt(device_id, secret) as device:
        await subscribed(device, device_id)
        answer = await post(running, raw, headers)
        assert answer.json()["responseCode"] == code, answer.text
        assert answer.status_code == int(code[:3])
        assert await first_message(device, timeout=0.5) is None
    after = await written(running)
    # A reconciliation record is the one thing an amount mismatch must leave.
    assert after[:4] == before[:4]


def _sym_body(**kwargs: Any) -> bytes:
    return minified(notify_body(reference=uuid.uuid4().hex[:20], terminal_id="TID-SYM-1", **kwargs))


@pytest.mark.parametrize(
    "case",
    [
        "no-signature",
        "garbage-signature",
        "other-path",
        "other-timestamp",
        "body-changed",
        "other-secret",
        "stale-timestamp",
        "no-token",
        "unknown-token",
        "foreign-token",
    ],
)
async def test_signature_and_token_refusals(running: RunningPlatform, world: World, case: str) -> None:
    token = await world.sym.access_token(running.http)
    raw = _sym_body()
    headers = world.sym.notify_headers(raw, token=token)
    expected = "4015200"
    if case == "no-signature":
        del headers["X-SIGNATURE"]
    elif case == "garbage-signature":
        headers["X-SIGNATURE"] = "bm90IGEgc2lnbmF0dXJl"
    elif case == "other-path":
        headers = world.sym.notify_headers(raw, token=token, path="/v1.0/qr/qr-mpm-query")
    elif case == "other-timestamp":
        headers["X-TIMESTAMP"] = timestamp(1)
        if headers["X-TIMESTAMP"] == world.sym.notify_headers(raw, token=token)["X-TIMESTAMP"]:
            headers["X-TIMESTAMP"] = timestamp(-2)
    elif case == "body-changed":
        raw = raw.replace(b"25000.00", b"25001.00")
    elif case == "other-secret":
        headers = Acquirer(world.sym.client_key, world.sym.key, "another-secret-xyz").notify_headers(raw, token=token)
    elif case == "stale-timestamp":
        headers = world.sym.notify_headers(raw, token=token, ts=timestamp(-301))
    elif case == "no-token":
        del headers["Authorization"]
        expected = "4015201"
    elif case == "unknown-token":
        headers = world.sym.notify_headers(raw, token=token + "x")
        expected = "4015201"
    elif case == "foreign-token":
        # A token the asymmetric acquirer got, presented under the symmetric acquirer's partner id.
        other = Acquirer(world.asym.client_key, world.asym.key, None)
        foreign = await other.access_token(running.http)
        headers = world.sym.notify_headers(raw, token=foreign)
        expected = "4015201"
    await _refused(running, world, raw, headers, expected)


async def test_duplicate_external_id(running: RunningPlatform, world: World) -> None:
    token = await world.sym.access_token(running.http)
    first = _sym_body(status="03")
    answer = await post(running, first, world.sym.notify_headers(first, token=token, external_id="ext-dup-1"))
    assert answer.status_code == 200
    raw = _sym_body()
    await _refused(running, world, raw, world.sym.notify_headers(raw, token=token, external_id="ext-dup-1"), "4095200")


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"amount": "25000.50"}, "4005201"),
        ({"amount": "25,000.00"}, "4005201"),
        ({"amount": "0.00"}, "4005201"),
        ({"status": "42"}, "4005201"),
        ({"terminal_id": "TID-NOBODY"}, "4045208"),
    ],
)
async def test_field_refusals(running: RunningPlatform, world: World, kwargs: dict[str, str], code: str) -> None:
    token = await world.sym.access_token(running.http)
    body = notify_body(reference=uuid.uuid4().hex[:20], **({"terminal_id": "TID-SYM-1"} | kwargs))
    raw = minified(body)
    await _refused(running, world, raw, world.sym.notify_headers(raw, token=token), code)


@pytest.mark.parametrize("paid_time", ["9999-12-31T23:59:59+07:00", "1970-01-01T07:00:00+07:00"])
async def test_an_implausible_paid_time_is_refused(running: RunningPlatform, world: World, paid_time: str) -> None:
    # Issue 23, finding 7: before 2019 or past now + 300 s is no real payment's time.
    token = await world.sym.access_token(running.http)
    body = notify_body(reference=uuid.uuid4().hex[:20], terminal_id="TID-SYM-1") | {"paidTime": paid_time}
    raw = minified(body)
    await _refused(running, world, raw, world.sym.notify_headers(raw, token=token), "4005201")


async def test_terminal_of_another_acquirer_is_unknown(running: RunningPlatform, world: World) -> None:
    token = await world.sym.access_token(running.http)
    raw = minified(notify_body(reference=uuid.uuid4().hex[:20], terminal_id="TID-ASYM-1"))
    await _refused(running, world, raw, world.sym.notify_headers(raw, token=token), "4045208")


async def test_missing_field_and_bad_json(running: RunningPlatform, world: World) -> None:
    token = await world.sym.access_token(running.http)
    body = notify_body(reference=uuid.uuid4().hex[:20], terminal_id="TID-SYM-1")
    del body["latestTransactionStatus"]
    raw = minified(body)
    await _refused(running, world, raw, world.sym.notify_headers(raw, token=token), "4005202")
    raw = b'{"originalReferenceNo":"x",'
    await _refused(running, world, raw, world.sym.notify_headers(raw, token=token), "4005201")


async def test_amount_mismatch_on_a_dynamic_qr_is_recorded(running: RunningPlatform, world: World) -> None:
    transaction_id = await pending_transaction(running, world.sym_ids["terminal_id"], 9_000)
    token = await world.sym.access_token(running.http)
    raw = minified(notify_body(reference=uuid.uuid4().hex[:20], transaction_id=transaction_id, amount="9100.00"))
    before = await written(running)
    await _refused(running, world, raw, world.sym.notify_headers(raw, token=token), "4045213")
    after = await written(running)
    assert after[4] == before[4] + 1
    status = await running.platform.db.pool.fetchval("SELECT status FROM transactions WHERE id = $1", transaction_id)
    assert status == "pending"


async def test_transaction_of_another_acquirer_is_not_found(running: RunningPlatform, world: World) -> None:
    transaction_id = await pending_transaction(running, world.asym_ids["terminal_id"], 9_000)
    token = await world.sym.access_token(running.http)
    raw = minified(notify_body(reference=uuid.uuid4().hex[:20], transaction_id=transaction_id, amount="9000.00"))
    await _refused(running, world, raw, world.sym.notify_headers(raw, token=token), "4045201")


async def test_framework_refusals_speak_snap(running: RunningPlatform, world: World) -> None:
    token = await world.sym.access_token(running.http)
    raw = _sym_body()
    headers = world.sym.notify_headers(raw, token=token) | {"Content-Type": "text/plain"}
    await _refused(running, world, raw, headers, "4155200")
    deep = b"[" * 100 + b"]" * 100
    await _refused(running, world, deep, world.sym.notify_headers(deep, token=token), "4005201")
    huge = b'{"x":"' + b"a" * (running.platform.settings.json_body_limit + 10) + b'"}'
    answer = await post(running, huge, world.sym.notify_headers(huge, token=token))
    assert answer.status_code == 413 and answer.json()["responseCode"] == "4135200"
    wrong_method = await running.http.get(NOTIFY)
    assert wrong_method.status_code == 405
