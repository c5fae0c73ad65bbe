"""CSV reports through the real HTTP server: they parse back with the csv module,
match the API's totals and never hand a spreadsheet a formula."""

from __future__ import annotations

from qris_soundbox.core.finance.bank_formats.bank_generic import COLUMNS as BANK_GENERIC_COLUMNS
from qris_soundbox.core.finance.csv_reports import safe_cell
from tests.finance.helpers import (
    admin_logins,
    batch_for,
    merchant_with_payments,
    parse_csv,
    pay,
    set_payout_account,
)
from tests.onboarding import onboarded_terminal
from tests.support import RunningPlatform

# Reasons are trimmed on the way in, so leading tab/CR can only come from stored data (see test_safe_cell).
HOSTILE = ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)", "=1+2\tcmd"]


async def adjust(running: RunningPlatform, batch_id: str, adjustment_type: str, amount: int, reason: str) -> dict:
    response = await running.http.post(
        f"/admin/settlement-batches/{batch_id}/adjustments",
        json={"adjustment_type": adjustment_type, "amount": amount, "reason": reason},
        headers=running.admin_headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def get_csv(running: RunningPlatform, path: str, **params: str) -> str:
    response = await running.http.get(path, params=params, headers=running.admin_headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    return response.content.decode("utf-8")


async def test_standard_report_parses_back_and_matches_the_batch(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [125_000, 7_777, 42_000, 1], fee_bps=70)
    batch = await batch_for(running, ids["merchant_id"])
    await adjust(running, batch["id"], "bank_fee", -6_500, "transfer fee")
    await adjust(running, batch["id"], "bonus", 1_000, "promo")
    current = (await running.http.get(f"/admin/settlement-batches/{batch['id']}", headers=running.admin_headers)).json()

    rows = parse_csv(await get_csv(running, f"/admin/settlement-batches/{batch['id']}/export.csv"))
    entries = [r for r in rows if r["row_type"] == "entry"]
    adjustments = [r for r in rows if r["row_type"] == "adjustment"]
    (summary,) = [r for r in rows if r["row_type"] == "summary"]
    assert sorted(r["transaction_id"] for r in entries) == sorted(ids["transaction_ids"])
    for field in ("gross_amount", "fee_amount", "payable_amount"):
        assert sum(int(r[field]) for r in entries) == current[field] == int(summary[field])
    assert sum(int(r["adjustment_amount"]) for r in adjustments) == current["adjustment_amount"] == -5_500
    assert int(summary["adjusted_payable_amount"]) == current["adjusted_payable_amount"]
    assert int(summary["entry_count"]) == 4 and summary["status"] == "pending"
    assert summary["value_date"] == current["value_date"] == batch["value_date"]
    assert all(r["paid_at"].endswith("Z") for r in entries)


async def test_bank_generic_file_pays_the_adjusted_payable_to_the_batch_account(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [300_000, 150_000])
    account = ids["payout_account"]
    batch = await batch_for(running, ids["merchant_id"])
    await adjust(running, batch["id"], "chargeback", -50_000, "disputed sale")
    text = await get_csv(running, f"/admin/settlement-batches/{batch['id']}/export.csv", format="bank_generic")
    assert text.endswith("\r\n") and text.count("\r\n") == 3
    detail, trailer = parse_csv(text)
    current = (await running.http.get(f"/admin/settlement-batches/{batch['id']}", headers=running.admin_headers)).json()
    assert int(detail["amount"]) == current["adjusted_payable_amount"] == batch["payable_amount"] - 50_000
    assert (detail["beneficiary_account_number"], detail["beneficiary_bank_code"]) == (account["account_number"], "014")
    assert detail["beneficiary_name"] == "WARUNG TEST" and detail["currency"] == "IDR"
    assert detail["reference"] == batch["id"] and detail["merchant_id"] == ids["merchant_id"]
    assert detail["value_date"] == current["value_date"] == batch["value_date"]
    assert list(detail) == list(BANK_GENERIC_COLUMNS)
    # The trailer's control totals equal the detail rows and the batch.
    assert trailer["record_type"] == "T" and detail["record_type"] == "D"
    assert (int(trailer["record_count"]), int(trailer["amount"])) == (1, current["adjusted_payable_amount"])
    await running.http.post(
        f"/admin/settlement-batches/{batch['id']}/mark-paid",
        json={"payout_reference": "MANDIRI-42"},
        headers=running.admin_headers,
    )
    paid_row, _ = parse_csv(
        await get_csv(running, f"/admin/settlement-batches/{batch['id']}/export.csv", format="bank_generic")
    )
    assert paid_row["reference"] == "MANDIRI-42"
    # Paid, the account may change; the batch's file still names the account it paid.
    changed = await set_payout_account(running, ids["merchant_id"], account_number="8888888888")
    assert changed.status_code == 200, changed.text
    again, _ = parse_csv(
        await get_csv(running, f"/admin/settlement-batches/{batch['id']}/export.csv", format="bank_generic")
    )
    assert again["beneficiary_account_number"] == account["account_number"]


async def test_bank_files_need_the_full_account_permission_and_an_account(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [20_000])
    batch = await batch_for(running, ids["merchant_id"])
    path = f"/admin/settlement-batches/{batch['id']}/export.csv"
    finance = (await admin_logins(running, "finance"))["finance"]
    allowed = await running.http.get(path, params={"format": "bank_generic"}, headers=finance.headers)
    assert allowed.status_code == 200 and ids["payout_account"]["account_number"] in allowed.text
    unknown = await running.http.get(path, params={"format": "swift_mt103"}, headers=running.admin_headers)
    assert unknown.status_code == 400 and unknown.json()["error"]["details"]["field"] == "format"

    bare = await onboarded_terminal(running)
    await pay(running, bare["terminal_id"], 9_000)
    no_account = await batch_for(running, bare["merchant_id"])
    refused = await running.http.get(
        f"/admin/settlement-batches/{no_account['id']}/export.csv",
        params={"format": "bank_generic"},
        headers=running.admin_headers,
    )
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "payout_account_missing"
    assert bare["merchant_id"] in refused.json()["error"]["message"]


async def test_formula_injection_is_neutralised(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running)
    # Names are normalised for bank files on the way in: what is left of a formula is plain text,
    # and a leading "-" that survives is still defused in the file.
    account = await set_payout_account(running, ids["merchant_id"], account_name=HOSTILE[2] + " toko")
    assert account.json()["account_name"] == "-23 TOKO"
    await pay(running, ids["terminal_id"], 900_000)
    batch = await batch_for(running, ids["merchant_id"])
    for reason in HOSTILE:
        await adjust(running, batch["id"], "correction", -1, reason)

    standard = parse_csv(await get_csv(running, f"/admin/settlement-batches/{batch['id']}/export.csv"))
    reasons = [r["reason"] for r in standard if r["row_type"] == "adjustment"]
    assert reasons == ["'" + text for text in HOSTILE]
    # Numbers stay numbers: a negative amount is not text to defuse.
    assert {r["adjustment_amount"] for r in standard if r["row_type"] == "adjustment"} == {"-1"}

    bank, trailer = parse_csv(
        await get_csv(running, f"/admin/settlement-batches/{batch['id']}/export.csv", format="bank_generic")
    )
    assert bank["beneficiary_name"] == "'-23 TOKO"
    # The API refuses control characters in an e-mail; an older row may still hold one.
    await running.platform.db.pool.execute(
        "UPDATE merchants SET email = $2 WHERE id = $1", ids["merchant_id"], "\t=cmd"
    )
    bank_tab, _ = parse_csv(
        await get_csv(running, f"/admin/settlement-batches/{batch['id']}/export.csv", format="bank_generic")
    )
    assert bank_tab["beneficiary_email"] == "'\t=cmd"

    report = parse_csv(
        await get_csv(running, "/admin/settlement-adjustments/export.csv", merchant_id=ids["merchant_id"])
    )
    assert sorted(r["reason"] for r in report) == sorted("'" + text for text in HOSTILE)
    for row in standard + report + [bank, trailer]:
        for value in row.values():
            assert not value.startswith(("=", "+", "@", "\t", "\r")), row
            assert not value.startswith("-") or value.lstrip("-").isdigit(), row


async def test_adjustment_report_filters_and_matches_the_list(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [80_000])
    batch = await batch_for(running, ids["merchant_id"])
    await adjust(running, batch["id"], "bank_fee", -2_000, "fee")
    await adjust(running, batch["id"], "bonus", 3_000, "promo ünïcode ✓")
    rows = parse_csv(await get_csv(running, "/admin/settlement-adjustments/export.csv", merchant_id=ids["merchant_id"]))
    listed = (
        await running.http.get(
            "/admin/settlement-adjustments", params={"merchant_id": ids["merchant_id"]}, headers=running.admin_headers
        )
    ).json()["items"]
    assert sorted(r["adjustment_id"] for r in rows) == sorted(a["id"] for a in listed)
    assert sum(int(r["amount"]) for r in rows) == 1_000
    assert "promo ünïcode ✓" in {r["reason"] for r in rows}
    assert {r["batch_value_date"] for r in rows} == {batch["value_date"]}
    only_fees = parse_csv(
        await get_csv(
            running,
            "/admin/settlement-adjustments/export.csv",
            merchant_id=ids["merchant_id"],
            adjustment_type="bank_fee",
        )
    )
    assert [r["amount"] for r in only_fees] == ["-2000"]


async def test_csv_errors_are_envelopes(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [1_000])
    batch = await batch_for(running, ids["merchant_id"])
    bad_format = await running.http.get(
        f"/admin/settlement-batches/{batch['id']}/export.csv", params={"format": "xlsx"}, headers=running.admin_headers
    )
    assert bad_format.status_code == 400 and bad_format.json()["error"]["code"] == "validation_error"
    missing = await running.http.get("/admin/settlement-batches/stb_nope/export.csv", headers=running.admin_headers)
    assert missing.status_code == 404
    bad_type = await running.http.get(
        "/admin/settlement-adjustments/export.csv", params={"adjustment_type": "gift"}, headers=running.admin_headers
    )
    assert bad_type.status_code == 400
    bad_date = await running.http.get(
        "/admin/settlement-adjustments/export.csv", params={"from": "yesterday"}, headers=running.admin_headers
    )
    assert bad_date.status_code == 400


def test_safe_cell() -> None:
    for text in ("=1", "+1", "-1", "@x", "\tx", "\rx"):
        assert safe_cell(text) == "'" + text
    assert safe_cell(-5_000) == -5_000 and safe_cell("Warung -1") == "Warung -1"
    assert safe_cell(None) == "" and safe_cell(True) == "true"
