"""Refunds in the console (real Chromium): the refund button with its confirmation on a payment's
page, and the approvals list where a second person, never the first, approves."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests.console.browser import click_and_reload, console_page, open_page, user_logged_in
from tests.finance.helpers import merchant_with_payments
from tests.support import PlatformFactory, RunningPlatform

APPROVAL_ABOVE = 50_000


@pytest.fixture(scope="module")
async def running(platform_factory: PlatformFactory) -> RunningPlatform:
    return await platform_factory.start(refund_approval_above=APPROVAL_ABOVE)


async def test_a_refund_asked_in_the_console_waits_for_a_second_person(
    running: RunningPlatform, browser: Browser
) -> None:
    ids = await merchant_with_payments(running, [80_000], fee_bps=70)
    txn_id = ids["transaction_ids"][0]
    async with console_page(browser, running) as (page, watched):
        await user_logged_in(page, running, "admin", "finance")
        await open_page(page, running, f"admin-transaction-detail?id={txn_id}")
        await page.click("#refund")
        dialog = page.locator("dialog")
        await expect(dialog.locator("[name=amount]")).to_have_value("80000")
        await dialog.locator("[name=amount]").fill("60000")
        await dialog.locator("[name=reason]").fill("barang rusak")
        # Without the confirmation box ticked, nothing is sent.
        await dialog.locator("button[type=submit]").click()
        await expect(dialog).to_be_visible()
        assert not [r for r in watched.api_failures if "/refunds" in r[1]]
        await dialog.locator("[name=confirm]").check()
        async with page.expect_navigation():
            await dialog.locator("button[type=submit]").click()
        await page.wait_for_selector("body[data-ready]", state="attached")
        await expect(page.locator(".notice")).to_contain_text("persetujuan")
        row = page.locator("table[data-list=refunds] tbody tr")
        await expect(row).to_have_count(1)
        await expect(row.locator("[data-status=pending_approval]")).to_be_visible()
        # The one who asked cannot approve it: the API's refusal is shown.
        await open_page(page, running, "admin-refunds")
        approvals = page.locator("table[data-list=refund-approvals] tbody tr")
        mine = approvals.filter(has_text="barang rusak")
        await expect(mine).to_have_count(1)
        watched.expect("POST", f"/admin/refunds/{await mine.get_attribute('data-id')}/approve", 403)
        await mine.locator("[data-decide=approve]").click()
        await expect(page.locator(".error[data-code=refund_self_approval]")).to_be_visible()

    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "admin", "finance")
        await open_page(page, running, "admin-refunds")
        mine = page.locator("table[data-list=refund-approvals] tbody tr").filter(has_text="barang rusak")
        await click_and_reload(
            page,
            f"table[data-list=refund-approvals] tr[data-id='{await mine.get_attribute('data-id')}'] [data-decide=approve]",
        )
        await expect(
            page.locator("table[data-list=refund-approvals] tbody tr").filter(has_text="barang rusak")
        ).to_have_count(0)
        await open_page(page, running, f"admin-transaction-detail?id={txn_id}")
        await expect(page.locator("table[data-list=refunds] tbody tr [data-status=succeeded]")).to_be_visible()
        await expect(page.locator(".kv [data-status=partially_refunded]")).to_be_visible()
        # 20,000 is left: the form offers it, and a small refund needs no approval.
        await page.click("#refund")
        await expect(page.locator("dialog [name=amount]")).to_have_value("20000")


async def test_a_viewer_sees_no_refund_button(running: RunningPlatform, browser: Browser) -> None:
    ids = await merchant_with_payments(running, [10_000], fee_bps=70)
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "admin", "viewer")
        await open_page(page, running, f"admin-transaction-detail?id={ids['transaction_ids'][0]}")
        await expect(page.locator(".kv").first.locator("[data-status=paid]")).to_be_visible()
        await expect(page.locator("#refund")).to_have_count(0)
