"""Payout accounts through the real HTTP API: validated and normalised, kept with
history and audit, masked for everyone without payout_account:read, frozen while
a batch is pending, and fixed on each batch when it is created."""

from __future__ import annotations

import asyncio

from tests.actors import logged_in
from tests.finance.helpers import (
    admin_logins,
    batch_for,
    merchant_with_payments,
    pay,
    payee_terminal,
    set_payout_account,
)
from tests.onboarding import onboarded_terminal
from tests.support import RunningPlatform


def account_path(merchant_id: str) -> str:
    return f"/admin/merchants/{merchant_id}/payout-account"


async def state(running: RunningPlatform, merchant_id: str, headers: dict | None = None) -> dict:
    response = await running.http.get(account_path(merchant_id), headers=headers or running.admin_headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_account_is_normalised_stored_with_history_and_audited_masked(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running)
    assert await state(running, ids["merchant_id"]) == {"current": None, "history": []}
    first = await set_payout_account(
        running, ids["merchant_id"], account_number="123-456 7890", account_name="  Warung Bu Siti's Kopi — Déjà  vu "
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["account_number"] == "1234567890" and body["masked"] is False
    assert body["account_name"] == "WARUNG BU SITIS KOPI DEJA VU"
    assert body["bank_code"] == "014" and body["bank_name"] == "Bank Central Asia (BCA)"

    second = await set_payout_account(
        running, ids["merchant_id"], bank_code="008", account_number="1370012345678", account_name="PT Maju & Jaya"
    )
    assert second.status_code == 200, second.text
    current = await state(running, ids["merchant_id"])
    assert current["current"]["id"] == second.json()["id"]
    assert [a["account_number"] for a in current["history"]] == ["1370012345678", "1234567890"]

    # Setting the account in force again is not a change: no new row, no audit row.
    again = await set_payout_account(
        running, ids["merchant_id"], bank_code="008", account_number="1370012345678", account_name="pt maju & jaya"
    )
    assert again.json()["id"] == second.json()["id"]
    rows = await running.platform.db.pool.fetch(
        "SELECT payload FROM audit_logs WHERE action = 'merchant.payout_account.set' AND entity_id = $1 ORDER BY id",
        ids["merchant_id"],
    )
    assert [r["payload"]["account_number"] for r in rows] == ["******7890", "*********5678"]
    assert rows[1]["payload"]["replaces"] == body["id"]


async def test_invalid_accounts_are_refused_with_the_field(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running)
    cases = [
        ({"bank_code": "999"}, "bank_code_unknown", "bank_code"),
        ({"bank_code": "14"}, "bank_code_unknown", "bank_code"),
        ({"account_number": "123456789"}, "validation_error", "account_number"),  # BCA numbers have 10 digits
        ({"account_number": "12345678901"}, "validation_error", "account_number"),
        ({"account_number": "12345abcde"}, "validation_error", "account_number"),
        ({"account_number": "١٢٣٤٥٦٧٨٩٠"}, "validation_error", "account_number"),  # digits, but not ASCII ones
        ({"account_name": "🙂🙂 ''"}, "validation_error", "account_name"),
        ({"account_name": "A" * 71}, "validation_error", "account_name"),
    ]
    base = {"bank_code": "014", "account_number": "1234567890", "account_name": "Warung"}
    for change, code, field in cases:
        response = await running.http.put(
            account_path(ids["merchant_id"]), json=base | change, headers=running.admin_headers
        )
        assert response.status_code == 400, (change, response.text)
        error = response.json()["error"]
        assert (error["code"], error["details"]["field"]) == (code, field), change
    unknown_field = await running.http.put(
        account_path(ids["merchant_id"]), json=base | {"iban": "x"}, headers=running.admin_headers
    )
    assert unknown_field.status_code == 400
    missing = await running.http.put(account_path("mer_missing"), json=base, headers=running.admin_headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "merchant_not_found"
    assert (await state(running, ids["merchant_id"]))["history"] == []


async def test_only_payout_account_roles_read_the_number_or_change_it(running: RunningPlatform) -> None:
    ids = await payee_terminal(running)
    number = ids["payout_account"]["account_number"]
    admins = await admin_logins(running, "admin", "finance", "ops", "support", "viewer")
    owner = await logged_in(running, "merchant", "owner", ids["merchant_id"])
    for role, client in admins.items():
        seen = (await state(running, ids["merchant_id"], client.headers))["current"]
        if role in ("admin", "finance"):
            assert (seen["account_number"], seen["masked"]) == (number, False), role
        else:
            assert (seen["account_number"], seen["masked"]) == ("******" + number[-4:], True), role
        batch_view = await running.http.get("/admin/settlement-batches", headers=client.headers)
        assert number not in batch_view.text
    for client in (admins["ops"], admins["support"], admins["viewer"], owner):
        changed = await set_payout_account(
            running, ids["merchant_id"], account_number="9999999999", headers=client.headers
        )
        assert changed.status_code == 403, (client.role, changed.text)
    # A merchant user reaches neither admin route, and sees its own account masked in its profile.
    assert (await running.http.get(account_path(ids["merchant_id"]), headers=owner.headers)).status_code == 403
    profile = (await running.http.get("/merchant/profile", headers=owner.headers)).json()
    assert profile["payout_account"]["account_number"] == "******" + number[-4:]
    assert profile["payout_account"]["masked"] is True and number not in str(profile)
    assert (await state(running, ids["merchant_id"]))["current"]["account_number"] == number


async def test_a_change_is_refused_while_a_batch_is_pending(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [40_000])
    batch = await batch_for(running, ids["merchant_id"])
    first = ids["payout_account"]
    redirect = await set_payout_account(
        running, ids["merchant_id"], account_number="5555555555", account_name="Mallory"
    )
    assert redirect.status_code == 409, redirect.text
    error = redirect.json()["error"]
    assert error["code"] == "payout_account_change_blocked"
    assert error["details"]["pending_batch_ids"] == [batch["id"]]
    assert (await state(running, ids["merchant_id"]))["current"]["id"] == first["id"]

    detail = (await running.http.get(f"/admin/settlement-batches/{batch['id']}", headers=running.admin_headers)).json()
    assert detail["payout_account_id"] == first["id"]
    assert detail["payout_account"]["account_number"] == first["account_number"]
    paid = await running.http.post(
        f"/admin/settlement-batches/{batch['id']}/mark-paid",
        json={"payout_reference": "BCA-1"},
        headers=running.admin_headers,
    )
    assert paid.status_code == 200, paid.text
    # Paid: the change goes through, and the paid batch still names the account it paid.
    changed = await set_payout_account(running, ids["merchant_id"], account_number="5555555555")
    assert changed.status_code == 200, changed.text
    detail = (await running.http.get(f"/admin/settlement-batches/{batch['id']}", headers=running.admin_headers)).json()
    assert detail["payout_account"]["id"] == first["id"]
    await pay(running, ids["terminal_id"], 10_000)
    assert (await batch_for(running, ids["merchant_id"]))["payout_account_id"] == changed.json()["id"]


async def test_a_failed_batch_reprocessed_after_a_change_pays_the_new_account(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [70_000])
    batch = await batch_for(running, ids["merchant_id"])
    failed = await running.http.post(
        f"/admin/settlement-batches/{batch['id']}/mark-failed",
        json={"reason": "account closed"},
        headers=running.admin_headers,
    )
    assert failed.status_code == 200, failed.text
    changed = await set_payout_account(running, ids["merchant_id"], account_number="7777777777")
    assert changed.status_code == 200, changed.text
    new_batch = await running.http.post(
        f"/admin/settlement-batches/{batch['id']}/reprocess", headers=running.admin_headers
    )
    assert new_batch.status_code == 201, new_batch.text
    assert new_batch.json()["payout_account_id"] == changed.json()["id"]


async def test_a_batch_without_an_account_cannot_be_paid(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running)
    await pay(running, ids["terminal_id"], 12_000)
    batch = await batch_for(running, ids["merchant_id"])
    assert batch["payout_account_id"] is None
    paid = await running.http.post(
        f"/admin/settlement-batches/{batch['id']}/mark-paid",
        json={"payout_reference": "X-1"},
        headers=running.admin_headers,
    )
    assert paid.status_code == 409, paid.text
    error = paid.json()["error"]
    assert error["code"] == "payout_account_missing" and error["details"]["merchant_id"] == ids["merchant_id"]
    assert ids["merchant_id"] in error["message"]
    # The first account cannot slip in under the pending batch either: cancel, set, rebuild.
    assert (await set_payout_account(running, ids["merchant_id"])).status_code == 409
    cancelled = await running.http.post(
        f"/admin/settlement-batches/{batch['id']}/cancel", json={"reason": "no account"}, headers=running.admin_headers
    )
    assert cancelled.status_code == 200
    account = await set_payout_account(running, ids["merchant_id"])
    assert account.status_code == 200
    rebuilt = await batch_for(running, ids["merchant_id"])
    assert rebuilt["payout_account_id"] == account.json()["id"] and rebuilt["entry_count"] == 1


async def test_concurrent_batch_run_and_account_change_never_redirect(running: RunningPlatform) -> None:
    """The account change and the batch run take the same merchant lock: either the change lands
    first and the batch pays the new account, or the batch lands first and the change is refused."""
    ids = await merchant_with_payments(running, [5_000, 6_000])
    create, change = await asyncio.gather(
        running.http.post(
            "/admin/settlement-batches", json={"merchant_id": ids["merchant_id"]}, headers=running.admin_headers
        ),
        set_payout_account(running, ids["merchant_id"], account_number="4444444444"),
    )
    (batch,) = create.json()["items"]
    if change.status_code == 200:
        assert batch["payout_account_id"] == change.json()["id"]
    else:
        assert change.status_code == 409 and batch["payout_account_id"] == ids["payout_account"]["id"]


async def test_operators_extend_the_bank_list(running: RunningPlatform) -> None:
    banks = (await running.http.get("/admin/payout-banks", headers=running.admin_headers)).json()["items"]
    assert {"002", "008", "009", "014"} <= {b["code"] for b in banks}
    finance = (await admin_logins(running, "finance"))["finance"]
    body = {"name": "Bank Contoh Daerah", "account_digits_min": 8, "account_digits_max": 12}
    assert (await running.http.put("/admin/payout-banks/777", json=body, headers=finance.headers)).status_code == 403
    added = await running.http.put("/admin/payout-banks/777", json=body, headers=running.admin_headers)
    assert added.status_code == 200, added.text
    bad = await running.http.put("/admin/payout-banks/77A", json=body, headers=running.admin_headers)
    assert bad.status_code == 400
    ids = await onboarded_terminal(running)
    assert (
        await set_payout_account(running, ids["merchant_id"], bank_code="777", account_number="1234567")
    ).status_code == 400
    assert (
        await set_payout_account(running, ids["merchant_id"], bank_code="777", account_number="12345678")
    ).status_code == 200
    retired = await running.http.put(
        "/admin/payout-banks/777", json=body | {"active": False}, headers=running.admin_headers
    )
    assert retired.status_code == 200 and retired.json()["active"] is False
    other = await onboarded_terminal(running)
    refused = await set_payout_account(running, other["merchant_id"], bank_code="777", account_number="12345678")
    assert refused.json()["error"]["code"] == "bank_code_unknown"


async def test_a_change_with_an_idempotency_key_happens_once_and_the_key_cannot_carry_another_account(
    running: RunningPlatform,
) -> None:
    ids = await onboarded_terminal(running)
    body = {"bank_code": "014", "account_number": "1234567890", "account_name": "Warung Sekali"}
    headers = running.admin_headers | {"Idempotency-Key": "payout-change-1"}
    first = await running.http.put(account_path(ids["merchant_id"]), json=body, headers=headers)
    replayed = await running.http.put(account_path(ids["merchant_id"]), json=body, headers=headers)
    assert first.status_code == replayed.status_code == 200
    assert replayed.headers.get("idempotent-replayed") == "true" and replayed.json() == first.json()
    other = await running.http.put(
        account_path(ids["merchant_id"]), json=body | {"account_number": "9999999999"}, headers=headers
    )
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert [a["account_number"] for a in (await state(running, ids["merchant_id"]))["history"]] == ["1234567890"]
