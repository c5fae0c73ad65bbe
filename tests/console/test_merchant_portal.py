"""The merchant side of the console: a merchant user sees its own merchant, payments and
batches, and nothing of another merchant's, through the same API any client uses."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.console.browser import console_page, open_page, shown_qr, user_logged_in
from tests.console.finance_data import payout_account_set
from tests.onboarding import new_terminal, onboarded_terminal
from tests.payments.helpers import callback_body, post_callback
from tests.qr_images import STATIC_QRIS
from tests.support import RunningPlatform


async def merchant_with_a_batch(running: RunningPlatform, name: str, *amounts: int) -> tuple[dict[str, str], str]:
    """A merchant with paid payments and one settlement batch of them: its ids and the batch id."""
    ids = await onboarded_terminal(running, merchant_name=name)
    for amount in amounts:
        paid = await post_callback(running, callback_body(amount=amount, terminal_id=ids["terminal_id"]))
        assert paid.status_code == 200, paid.text
    made = await running.http.post(
        "/admin/settlement-batches", json={"merchant_id": ids["merchant_id"]}, headers=running.admin_headers
    )
    assert made.status_code == 201, made.text
    return ids, made.json()["items"][0]["id"]


async def transaction_ids(running: RunningPlatform, merchant_id: str) -> set[str]:
    listed = await running.http.get(
        "/admin/transactions", params={"merchant_id": merchant_id}, headers=running.admin_headers
    )
    return {item["id"] for item in listed.json()["items"]}


async def test_a_merchant_sees_only_its_own_batches_and_transactions(
    running: RunningPlatform, browser: Browser
) -> None:
    mine, my_batch = await merchant_with_a_batch(running, "Toko Saya", 25_000, 3_000)
    theirs, their_batch = await merchant_with_a_batch(running, "Toko Lain", 40_000)
    await post_callback(running, callback_body(amount=1_000, terminal_id=theirs["terminal_id"]))
    async with console_page(browser, running) as (page, watched):
        await user_logged_in(page, running, "merchant", "owner", mine["merchant_id"])
        await open_page(page, running, "merchant-profile")
        await expect(page.locator("#content")).to_contain_text("Toko Saya")
        await expect(page.locator("#nav a")).to_have_count(5)

        await open_page(page, running, "merchant-transactions")
        shown = set(await page.locator("table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.id)"))
        assert shown == await transaction_ids(running, mine["merchant_id"])
        await expect(page.locator("table")).to_contain_text("Rp25.000")

        await open_page(page, running, "merchant-settlement-batches")
        shown = set(await page.locator("table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.id)"))
        assert shown == {my_batch}

        await open_page(page, running, "merchant-settlement-summary")
        await expect(page.locator("table[data-list=batches]")).to_contain_text(my_batch)

        await open_page(page, running, f"merchant-settlement-batch-detail?id={my_batch}")
        await expect(page.locator("table[data-list=entries] tbody tr")).to_have_count(2)
        async with page.expect_download() as csv_info:
            await page.click("#csv-standard")
        assert my_batch in open(await (await csv_info.value).path(), encoding="utf-8").read()

        # Another merchant's batch is simply not found: the page says so with the API's envelope.
        watched.expect("GET", f"/merchant/settlement-batches/{their_batch}", 404)
        await open_page(page, running, f"merchant-settlement-batch-detail?id={their_batch}")
        await expect(page.locator(".error")).to_contain_text("not_found")


async def test_a_merchant_filters_its_transactions_in_the_url_and_pages_through_them(
    running: RunningPlatform, browser: Browser
) -> None:
    ids = await onboarded_terminal(running, merchant_name="Toko Banyak")
    for amount in (1_000, 2_000, 3_000):
        await post_callback(running, callback_body(amount=amount, terminal_id=ids["terminal_id"]))
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "merchant", "viewer", ids["merchant_id"])
        await open_page(page, running, "merchant-transactions?status=paid&limit=2")
        await expect(page.locator("table tbody tr")).to_have_count(2)
        await page.click("a[rel=next]")
        await page.wait_for_url("**cursor=*")
        await page.wait_for_selector("body[data-ready]", state="attached")
        await expect(page.locator("table tbody tr")).to_have_count(1)
        await expect(page.locator("select[name=status]")).to_have_value("paid")
        await open_page(page, running, "merchant-transactions?status=expired")
        await expect(page.locator(".empty")).to_be_visible()


async def test_a_merchant_prints_its_terminals_static_qris(running: RunningPlatform, browser: Browser) -> None:
    ids = await onboarded_terminal(running, merchant_name="Toko Stiker")
    await new_terminal(running, ids["outlet_id"], static_qris=STATIC_QRIS)
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "merchant", "ops", ids["merchant_id"])
        await open_page(page, running, "merchant-profile")
        image = page.locator("[data-terminal] img.qr")
        await expect(image).to_have_count(1)
        assert await shown_qr(image) == STATIC_QRIS


async def test_a_merchant_sees_its_payout_account_masked(running: RunningPlatform, browser: Browser) -> None:
    ids = await onboarded_terminal(running, merchant_name="Toko Rekening")
    await payout_account_set(running, ids["merchant_id"], "014", "9876543210", "Toko Rekening")
    await post_callback(running, callback_body(amount=4_000, terminal_id=ids["terminal_id"]))
    made = await running.http.post(
        "/admin/settlement-batches", json={"merchant_id": ids["merchant_id"]}, headers=running.admin_headers
    )
    batch_id = made.json()["items"][0]["id"]
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "merchant", "owner", ids["merchant_id"])
        await open_page(page, running, "merchant-profile")
        await expect(page.locator("#payout-account [data-account-number=masked]")).to_have_text("******3210")
        await expect(page.locator("#payout-account")).to_contain_text("TOKO REKENING")
        await open_page(page, running, f"merchant-settlement-batch-detail?id={batch_id}")
        await expect(page.locator("#batch-payout-account [data-account-number=masked]")).to_have_text("******3210")
        assert "9876543210" not in await page.content()
        # A bank file carries the full number: a merchant gets the standard CSV only.
        await expect(page.locator("#csv-standard")).to_be_visible()
        assert await page.locator("#csv-bank").count() == 0
