"""Settlement batch creation in the console (issue 27, pick don't paste): the merchant is picked by name,
and the dialog shows what the run would make (payable, missing payout account, value date) before it
commits; at 1366 × 900 and on a phone (390 × 844) without sideways scrolling."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests.console.browser import console_page, open_page, user_logged_in
from tests.console.test_people_console import PHONE, assert_no_sideways_scroll
from tests.finance.helpers import pay
from tests.onboarding import onboarded_terminal
from tests.support import RunningPlatform


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 900}, PHONE], ids=["desktop", "phone"])
async def test_finance_previews_a_batch_picked_by_merchant_name_then_commits_it(
    running: RunningPlatform, browser: Browser, viewport: dict[str, int]
) -> None:
    name = f"Warung Pratinjau {viewport['width']}"
    ids = await onboarded_terminal(running, merchant_name=name)
    await pay(running, ids["terminal_id"], 20_000)
    async with console_page(browser, running) as (page, _):
        await page.set_viewport_size(viewport)
        await user_logged_in(page, running, "admin", "finance")
        await open_page(page, running, "admin-settlement-batches")
        await page.click("#create-batches")
        await page.fill("dialog [data-picker-search=merchant_id]", name)
        picker = page.locator("dialog select[data-picker=merchant_id]")
        await expect(picker.locator("option", has_text=name)).to_have_count(1)
        await picker.select_option(label=await picker.locator("option", has_text=name).inner_text())
        rows = page.locator("#batch-preview table[data-list=batch-preview] tbody tr")
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_contain_text(name)
        await expect(page.locator("#batch-preview [data-missing-payout='1']")).to_contain_text(name)
        await expect(page.locator("#batch-preview [data-value-date]")).to_have_text(
            (
                await running.http.post(
                    "/admin/settlement-batches/preview",
                    json={"merchant_id": ids["merchant_id"]},
                    headers=running.admin_headers,
                )
            ).json()["value_date"]
        )
        await assert_no_sideways_scroll(page, "batch preview dialog")
        # Nothing is made until the dialog is submitted.
        listed = await running.http.get(
            "/admin/settlement-batches", params={"merchant_id": ids["merchant_id"]}, headers=running.admin_headers
        )
        assert listed.json()["items"] == []
        await page.click("dialog button[type=submit]")
        await page.wait_for_url("**/ui/admin-settlement-batch-detail?id=*")
        await page.wait_for_selector("body[data-ready]", state="attached")
        await expect(page.locator("#content")).to_contain_text(name)
