"""Finance in the console: settlement batches from payments to a paid payout with both CSVs,
the batch actions (adjust, fail, reprocess, cancel), and reconciliation's async export."""

from __future__ import annotations

from playwright.async_api import Browser, Page, expect

from tests.console.browser import console_page, open_page, submit_dialog, user_logged_in
from tests.console.finance_data import payout_account_set, rows_of
from tests.onboarding import onboarded_terminal
from tests.payments.helpers import callback_body, post_callback
from tests.support import RunningPlatform


async def merchant_with_payments(running: RunningPlatform, *amounts: int) -> dict[str, str]:
    ids = await onboarded_terminal(running, merchant_name="Toko Keuangan")
    for amount in amounts:
        paid = await post_callback(running, callback_body(amount=amount, terminal_id=ids["terminal_id"]))
        assert paid.status_code == 200, paid.text
    return ids


async def batch_from_console(page: Page, running: RunningPlatform, merchant_id: str) -> str:
    """Create the merchant's batch through the list page's dialog; lands on its detail."""
    await open_page(page, running, "admin-settlement-batches")
    await submit_dialog(page, "#create-batches", merchant_id=merchant_id)
    await page.wait_for_url("**/ui/admin-settlement-batch-detail?id=*")
    await page.wait_for_selector("body[data-ready]", state="attached")
    return page.url.rsplit("=", 1)[1]


async def payout_account_from_console(page: Page, running: RunningPlatform, merchant_id: str, **account: str) -> None:
    """Set the merchant's payout account through its detail page's dialog."""
    await open_page(page, running, f"admin-merchant-detail?id={merchant_id}")
    await submit_dialog(page, "#set-payout-account", **account)
    await page.wait_for_selector("body[data-ready]", state="attached")


async def test_finance_batches_adjusts_pays_and_downloads_both_csv_formats(
    running: RunningPlatform, browser: Browser
) -> None:
    ids = await merchant_with_payments(running, 25_000, 10_000)
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "admin", "finance")
        await payout_account_from_console(
            page,
            running,
            ids["merchant_id"],
            bank_code="014",
            account_number="123-456-7890",
            account_name="Warung Bu Siti",
        )
        # Finance holds payout_account:read: the full number, normalised.
        await expect(page.locator("#payout-account dl")).to_contain_text("1234567890")
        await expect(page.locator("#payout-account dl")).to_contain_text("WARUNG BU SITI")
        await expect(page.locator("table[data-list=payout-account-history] tbody tr")).to_have_count(1)
        batch_id = await batch_from_console(page, running, ids["merchant_id"])
        await expect(page.locator("#batch-payout-account")).to_contain_text("1234567890")
        await expect(page.locator("table[data-list=entries] tbody tr")).to_have_count(2)
        value_date = (
            await running.http.get(f"/admin/settlement-batches/{batch_id}", headers=running.admin_headers)
        ).json()["value_date"]
        await expect(page.locator("dl").first).to_contain_text(value_date)
        await submit_dialog(page, "#adjust", adjustment_type="bank_fee", amount="-2500", reason="biaya transfer")
        await expect(page.locator("table[data-list=adjustments]")).to_contain_text("-Rp2.500")
        await submit_dialog(page, "#mark-paid", payout_reference="TRF-2026-0001")
        await expect(page.locator("dl [data-status=paid]")).to_be_visible()
        async with page.expect_download() as standard_info:
            await page.click("#csv-standard")
        async with page.expect_download() as bank_info:
            await page.click("#csv-bank")
        standard = await rows_of(await standard_info.value)
        bank = await rows_of(await bank_info.value)
    assert standard[0][:2] == ["row_type", "batch_id"]
    assert {row[0] for row in standard[1:]} >= {"entry", "adjustment"}
    assert all(row[1] == batch_id for row in standard[1:])
    detail = await running.http.get(f"/admin/settlement-batches/{batch_id}", headers=running.admin_headers)
    assert detail.json()["status"] == "paid" and detail.json()["payout_reference"] == "TRF-2026-0001"
    # The bank file: one D row paying the account set in the console, a T trailer with the control totals.
    header, *records = bank
    assert header[0] == "record_type" and [row[0] for row in records] == ["D", "T"]
    transfer, trailer = (dict(zip(header, row, strict=True)) for row in records)
    assert transfer["batch_id"] == batch_id and transfer["reference"] == "TRF-2026-0001"
    assert (transfer["beneficiary_bank_code"], transfer["beneficiary_account_number"]) == ("014", "1234567890")
    assert transfer["beneficiary_name"] == "WARUNG BU SITI"
    assert transfer["value_date"] == value_date == detail.json()["value_date"]
    paid = detail.json()["adjusted_payable_amount"]
    assert int(transfer["amount"]) == paid == detail.json()["payable_amount"] - 2_500
    assert (trailer["record_count"], int(trailer["amount"])) == ("1", paid)


async def test_a_batch_without_a_payout_account_cannot_be_marked_paid_and_the_account_is_then_locked(
    running: RunningPlatform, browser: Browser
) -> None:
    ids = await merchant_with_payments(running, 7_000)
    async with console_page(browser, running) as (page, watched):
        await user_logged_in(page, running, "admin", "finance")
        batch_id = await batch_from_console(page, running, ids["merchant_id"])
        await expect(page.locator("#batch-payout-account .empty")).to_be_visible()
        await expect(page.locator("#mark-paid")).to_be_disabled()
        await expect(page.locator("#mark-paid-blocked")).to_contain_text("rekening")
        assert await page.locator("#csv-bank").count() == 0  # no account, no bank file
        # Setting the first account while that batch is pending is refused, naming the batch.
        watched.expect("PUT", f"/admin/merchants/{ids['merchant_id']}/payout-account", 409)
        await open_page(page, running, f"admin-merchant-detail?id={ids['merchant_id']}")
        await submit_dialog(
            page, "#set-payout-account", bank_code="009", account_number="0123456789", account_name="Toko Keuangan"
        )
        refusal = page.locator("dialog .error[data-code=payout_account_change_blocked]")
        await expect(refusal).to_be_visible()
        await expect(refusal.locator("[data-pending-batches] a")).to_have_text(batch_id)
        await expect(refusal.locator("code").nth(1)).not_to_be_empty()  # the request id


async def test_a_viewer_sees_the_payout_account_masked_and_no_form(running: RunningPlatform, browser: Browser) -> None:
    ids = await merchant_with_payments(running, 9_000)
    await payout_account_set(running, ids["merchant_id"], "008", "1234567890123", "Toko Keuangan")
    batch = await running.http.post(
        "/admin/settlement-batches", json={"merchant_id": ids["merchant_id"]}, headers=running.admin_headers
    )
    batch_id = batch.json()["items"][0]["id"]
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "admin", "viewer")
        await open_page(page, running, f"admin-merchant-detail?id={ids['merchant_id']}")
        await expect(page.locator("#payout-account [data-account-number]").first).to_have_text("*********0123")
        await expect(page.locator("#payout-account")).to_contain_text("payout_account:read")
        assert await page.locator("#set-payout-account").count() == 0
        await open_page(page, running, f"admin-settlement-batch-detail?id={batch_id}")
        await expect(page.locator("#batch-payout-account [data-account-number]")).to_have_text("*********0123")
        assert "1234567890123" not in await page.content()
        assert await page.locator("#mark-paid, #csv-bank").count() == 0


async def test_a_failed_batch_is_reprocessed_and_the_new_one_cancelled(
    running: RunningPlatform, browser: Browser
) -> None:
    ids = await merchant_with_payments(running, 5_000)
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "admin", "finance")
        first = await batch_from_console(page, running, ids["merchant_id"])
        await submit_dialog(page, "[data-action=mark-failed]", reason="rekening ditolak bank")
        await expect(page.locator("dl [data-status=failed]")).to_be_visible()
        await page.click("#reprocess")
        await page.wait_for_url(lambda url: "admin-settlement-batch-detail" in url and first not in url)
        await expect(page.locator("dl [data-status=pending]")).to_be_visible()
        await submit_dialog(page, "[data-action=cancel]", reason="dibatalkan untuk uji")
        await expect(page.locator("dl [data-status=cancelled]")).to_be_visible()
        # The list filters by status in the URL.
        await open_page(page, running, f"admin-settlement-batches?status=failed&merchant_id={ids['merchant_id']}")
        await expect(page.locator("table tbody tr")).to_have_count(1)
        await expect(page.locator(f"tr[data-id='{first}']")).to_be_visible()


async def test_reconciliation_runs_the_adjustment_export_to_a_download(
    running: RunningPlatform, browser: Browser
) -> None:
    ids = await merchant_with_payments(running, 12_000)
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "admin", "finance")
        batch_id = await batch_from_console(page, running, ids["merchant_id"])
        await submit_dialog(page, "#adjust", adjustment_type="bonus", amount="1000", reason="bonus promo konsol")
        await expect(page.locator("table[data-list=adjustments]")).to_contain_text("Rp1.000")
        await open_page(page, running, "admin-reconciliation-management")
        await expect(
            page.locator(f"table[data-list=reconciliation] tr[data-id='{batch_id}'] [data-status=matched]")
        ).to_be_visible()
        await page.click("#start-export")
        await expect(page.locator("#download-export")).to_be_visible(timeout=30_000)
        async with page.expect_download() as export_info:
            await page.click("#download-export")
        rows = await rows_of(await export_info.value)
    assert rows[0][0] == "adjustment_id"
    assert any("bonus promo konsol" in row for row in rows[1:])
