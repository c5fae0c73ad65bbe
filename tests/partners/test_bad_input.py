"""What a hostile or careless partner sends: each refused with SNAP's code, nothing written."""

from __future__ import annotations

import pytest

from tests.onboarding import onboarded_terminal
from tests.partners.helpers import GENERATE, QUERY, Partner, register_partner, snap_timestamp
from tests.support import PlatformFactory, RunningPlatform


@pytest.fixture(scope="module")
async def setup(running: RunningPlatform) -> tuple[Partner, dict[str, str], Partner, dict[str, str]]:
    mine = await onboarded_terminal(running, qris_ready=True)
    theirs = await onboarded_terminal(running, qris_ready=True)
    return (
        await register_partner(running, [mine["merchant_id"]]),
        mine,
        await register_partner(running, [theirs["merchant_id"]]),
        theirs,
    )


def body(terminal: dict[str, str], **changes: object) -> dict[str, object]:
    return {
        "partnerReferenceNo": "POS-BAD",
        "amount": {"value": "10000.00", "currency": "IDR"},
        "merchantId": terminal["merchant_id"],
        "terminalId": terminal["terminal_id"],
    } | changes


async def qr_count(running: RunningPlatform, partner: Partner) -> int:
    async with running.platform.db.transaction() as conn:
        return await conn.fetchval("SELECT count(*) FROM partner_qrs WHERE partner_id = $1", partner.id)


CASES = {
    "bad signature": ({"secret": "not-the-secret"}, 401, "4014700"),
    # Shifts from the moment of the call: a time taken at collection is minutes old when a long run reaches it.
    "stale timestamp": ({"shift_s": -600}, 401, "4014700"),
    "future timestamp": ({"shift_s": 600}, 401, "4014700"),
    "timestamp without a zone": ({"timestamp": "2026-12-07T10:55:00"}, 401, "4014700"),
    "no signature": ({"headers": {"X-SIGNATURE": None}}, 401, "4014700"),
    "unknown partner id": ({"headers": {"X-PARTNER-ID": "nobody"}}, 401, "4014700"),
    "no partner id": ({"headers": {"X-PARTNER-ID": None}}, 400, "4004702"),
    "unknown token": ({"token": "forged-token"}, 401, "4014701"),
    "no bearer": ({"headers": {"Authorization": None}}, 401, "4014701"),
    "no external id": ({"headers": {"X-EXTERNAL-ID": None}}, 400, "4004702"),
    "external id too long": ({"external_id": "x" * 65}, 400, "4004701"),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_refused_requests(running: RunningPlatform, setup, case: str) -> None:
    partner, mine, _, _ = setup
    options, status, code = CASES[case]
    if "shift_s" in options:
        options = {"timestamp": snap_timestamp(options["shift_s"])}  # type: ignore[arg-type]
    before = await qr_count(running, partner)
    answer = await partner.call(GENERATE, body(mine), **options)  # type: ignore[arg-type]
    assert (answer.status_code, answer.json()["responseCode"]) == (status, code), answer.text
    assert await qr_count(running, partner) == before


BODIES = {
    "not json": (b"{not-json", 400, "4004701"),
    "a list": (b"[]", 400, "4004701"),
    "no amount": (b'{"partnerReferenceNo":"P","merchantId":"m","terminalId":"t"}', 400, "4004702"),
    "amount as a number": (None, 400, "4004701"),
    "amount with a fraction": (None, 400, "4004701"),
    "another currency": (None, 400, "4004701"),
    "amount above the QRIS limit": (None, 404, "4044713"),
    "zero amount": (None, 404, "4044713"),
    "reference too long": (None, 400, "4004701"),
    "validity in the past": (None, 400, "4004701"),
}


def bad_body(case: str, terminal: dict[str, str]) -> dict[str, object]:
    return {
        "amount as a number": body(terminal, amount={"value": 10000, "currency": "IDR"}),
        "amount with a fraction": body(terminal, amount={"value": "10000.50", "currency": "IDR"}),
        "another currency": body(terminal, amount={"value": "10000.00", "currency": "USD"}),
        "amount above the QRIS limit": body(terminal, amount={"value": "10000001.00", "currency": "IDR"}),
        "zero amount": body(terminal, amount={"value": "0.00", "currency": "IDR"}),
        "reference too long": body(terminal, partnerReferenceNo="P" * 65),
        "validity in the past": body(terminal, validityPeriod="2020-01-01T00:00:00+07:00"),
    }[case]


@pytest.mark.parametrize("case", sorted(BODIES))
async def test_refused_bodies(running: RunningPlatform, setup, case: str) -> None:
    partner, mine, _, _ = setup
    raw, status, code = BODIES[case]
    answer = await partner.call(GENERATE, raw if raw is not None else bad_body(case, mine))
    assert (answer.status_code, answer.json()["responseCode"]) == (status, code), answer.text


async def test_another_partners_terminal_is_not_found(running: RunningPlatform, setup) -> None:
    partner, mine, _, theirs = setup
    for target in (theirs, {"merchant_id": mine["merchant_id"], "terminal_id": theirs["terminal_id"]}):
        answer = await partner.call(GENERATE, body(target, partnerReferenceNo="POS-X"))
        assert (answer.status_code, answer.json()["responseCode"]) == (404, "4044708"), answer.text


async def test_another_partners_qr_is_not_found(running: RunningPlatform, setup) -> None:
    partner, _, other, theirs = setup
    generated = await other.call(GENERATE, body(theirs, partnerReferenceNo="POS-THEIRS"))
    assert generated.status_code == 200, generated.text
    answer = await partner.call(QUERY, {"originalReferenceNo": generated.json()["referenceNo"]})
    assert (answer.status_code, answer.json()["responseCode"]) == (404, "4045101")


async def test_a_token_of_another_partner_is_refused(running: RunningPlatform, setup) -> None:
    partner, mine, other, _ = setup
    answer = await partner.call(GENERATE, body(mine), token=await other.token())
    assert (answer.status_code, answer.json()["responseCode"]) == (401, "4014701")


async def test_a_suspended_partner_is_refused(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running, qris_ready=True)
    partner = await register_partner(running, [ids["merchant_id"]])
    await partner.token()
    changed = await running.http.patch(
        f"/admin/partners/{partner.id}", json={"status": "suspended"}, headers=running.admin_headers
    )
    assert changed.status_code == 200, changed.text
    answer = await partner.generate(ids)
    assert (answer.status_code, answer.json()["responseCode"]) == (401, "4014700")


async def test_every_call_is_audited(running: RunningPlatform, setup) -> None:
    partner, mine, _, _ = setup
    await partner.call(GENERATE, body(mine), secret="wrong")
    await partner.call(QUERY, {"originalReferenceNo": "txn_unknown"})
    async with running.platform.db.transaction() as conn:
        rows = await conn.fetch(
            "SELECT action, payload->>'response_code' AS code FROM audit_logs"
            " WHERE action LIKE 'partner.snap.%' ORDER BY occurred_at DESC LIMIT 2"
        )
    assert [(row["action"], row["code"]) for row in rows] == [
        ("partner.snap.qr-mpm-query", "4045101"),
        ("partner.snap.qr-mpm-generate", "4014700"),
    ]


async def test_each_partner_has_its_own_rate_limit(platform_factory: PlatformFactory) -> None:
    limited = await platform_factory.start(rate_limit_partner_max=3)
    ids = await onboarded_terminal(limited, qris_ready=True)
    busy = await register_partner(limited, [ids["merchant_id"]])
    calm = await register_partner(limited, [ids["merchant_id"]])
    answers = [await busy.call(QUERY, {"originalReferenceNo": "txn_none"}) for _ in range(4)]
    assert [answer.json()["responseCode"] for answer in answers] == ["4045101"] * 3 + ["4295100"]
    assert (await calm.call(QUERY, {"originalReferenceNo": "txn_none"})).json()["responseCode"] == "4045101"
