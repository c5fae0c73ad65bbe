"""A merchant's MDR category and fee contract in the console: finance changes them, a contract above
the schedule shows the API's refusal, and field staff do not get the button."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.console.browser import console_page, open_page, submit_dialog, user_logged_in
from tests.onboarding import onboarded_terminal
from tests.support import RunningPlatform


async def test_finance_sets_the_mdr_category_and_a_contract(running: RunningPlatform, browser: Browser) -> None:
    ids = await onboarded_terminal(running, merchant_name="Toko Biaya")
    detail = f"admin-merchant-detail?id={ids['merchant_id']}"
    async with console_page(browser, running) as (page, watcher):
        watcher.expect("PATCH", f"/admin/merchants/{ids['merchant_id']}/fees", 400)
        await user_logged_in(page, running, "admin", "finance")
        await open_page(page, running, detail)
        await submit_dialog(page, "#edit-fees", mdr_category="spbu", fee_bps="45")
        await expect(page.locator("dialog")).to_contain_text("fee_above_schedule")
        await page.fill("dialog [name=fee_bps]", "30")
        await page.click("dialog button[type=submit]")
        await page.wait_for_selector("body[data-ready]", state="attached")
        await expect(page.locator("main")).to_contain_text("spbu")
    merchant = await running.http.get(f"/admin/merchants/{ids['merchant_id']}", headers=running.admin_headers)
    assert merchant.json()["mdr_category"] == "spbu" and merchant.json()["fee_bps"] == 30

    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "admin", "ops")
        await open_page(page, running, detail)
        await expect(page.locator("main")).to_contain_text("spbu")
        assert await page.locator("#edit-fees").count() == 0
