"""The users page (issue 27, user management): an admin invites, changes a role, disables and resets the
password of admin users and merchant users from the console, without typing an id, at 1366 × 900 and on a
phone (390 × 844) without sideways scrolling; the temporary password shown once logs the person in."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.actors import login, unique
from tests.console.browser import console_page, log_in, open_page, user_logged_in
from tests.console.test_people_console import PHONE, assert_no_sideways_scroll
from tests.onboarding import onboarded_terminal
from tests.support import RunningPlatform


async def handed_over_password(page: Page) -> str:
    """The temporary password of the one-time dialog, which is then closed (the page reloads)."""
    secret = page.locator("#secret")
    await expect(secret).to_be_visible()
    password = (await secret.inner_text()).strip()
    await page.click("#close-secret")
    await expect(page.locator("#flash .notice")).to_be_visible()
    return password


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 900}, PHONE], ids=["desktop", "phone"])
async def test_an_admin_manages_admin_users_from_the_menu(
    running: RunningPlatform, browser: Browser, viewport: dict[str, int]
) -> None:
    email = f"{unique('staf')}@admin.test"
    async with console_page(browser, running) as (page, _):
        await page.set_viewport_size(viewport)
        await user_logged_in(page, running, "admin", "admin")
        if viewport == PHONE:
            await page.click("#menu")
        await page.click("#nav a[href='/ui/admin-users']")
        await page.wait_for_selector("body[data-ready]", state="attached")
        await assert_no_sideways_scroll(page, "admin-users")

        await page.click("#invite-user")
        await page.fill("dialog [name=email]", email)
        await page.fill("dialog [name=name]", "Staf Operasional")
        await page.select_option("dialog [name=role]", "ops")
        await page.click("dialog button[type=submit]")
        first = await handed_over_password(page)
        assert (await login(running, "admin", email, first)).status_code == 200

        row = page.locator("tr", has_text=email)
        await expect(row).to_contain_text("operasional")
        await assert_no_sideways_scroll(page, "admin-users with a user")
        await row.locator("[data-role-user]").click()
        await page.select_option("dialog [name=role]", "support")
        await page.click("dialog button[type=submit]")
        await expect(page.locator("tr", has_text=email)).to_contain_text("dukungan")

        await page.locator("tr", has_text=email).locator("[data-disable-user]").click()
        await page.click("#confirm-yes")
        await expect(page.locator("tr", has_text=email).locator("[data-status=disabled]")).to_be_visible()
        assert (await login(running, "admin", email, first)).status_code == 401

        await page.locator("tr", has_text=email).locator("[data-enable-user]").click()
        await expect(page.locator("tr", has_text=email).locator("[data-status=active]")).to_be_visible()
        await page.locator("tr", has_text=email).locator("[data-reset-user]").click()
        await page.click("#confirm-yes")
        second = await handed_over_password(page)
        assert second != first
        assert (await login(running, "admin", email, first)).status_code == 401
    async with console_page(browser, running) as (page, _):
        await page.set_viewport_size(viewport)
        await log_in(page, running, "admin", email, second)  # the person the password was handed to


async def test_an_admin_invites_a_merchant_user_picked_by_merchant_name(
    running: RunningPlatform, browser: Browser
) -> None:
    ids = await onboarded_terminal(running, merchant_name="Warung Undangan")
    email = f"{unique('kasir')}@merchant.test"
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "admin", "admin")
        await open_page(page, running, f"admin-merchant-detail?id={ids['merchant_id']}")
        await page.click("text=Pengguna merchant ini")
        await page.wait_for_selector("body[data-ready]", state="attached")
        await page.click("#invite-user")
        await page.fill("dialog [data-picker-search=merchant_id]", "Warung Undangan")
        picker = page.locator("dialog select[data-picker=merchant_id]")
        await expect(picker.locator("option", has_text="Warung Undangan")).to_have_count(1)
        await picker.select_option(label=await picker.locator("option", has_text="Warung Undangan").inner_text())
        await page.fill("dialog [name=email]", email)
        await page.fill("dialog [name=name]", "Kasir Satu")
        await page.select_option("dialog [name=role]", "ops")
        await page.click("dialog button[type=submit]")
        password = await handed_over_password(page)
        await expect(page.locator("tr", has_text=email)).to_contain_text("Warung Undangan")
    async with console_page(browser, running) as (page, _):
        await log_in(page, running, "merchant", email, password)
