"""The partners page: an admin registers a partner (its secret shown once) and resends a notification."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.console.browser import console_page, user_logged_in
from tests.onboarding import onboarded_terminal
from tests.partners.helpers import new_rsa_key
from tests.support import RunningPlatform


async def test_an_admin_registers_a_partner_and_sees_its_secret_once(
    running: RunningPlatform, browser: Browser
) -> None:
    ids = await onboarded_terminal(running, qris_ready=True)
    _, pem = new_rsa_key()
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "admin", "admin")
        await page.click("#nav a[href='/ui/admin-partners']")
        await page.wait_for_selector("body[data-ready]", state="attached")
        await page.click("#new-partner")
        await page.fill("dialog input[name=name]", "Kasir Pintar")
        await page.fill("dialog input[name=client_key]", "kasir-console")
        await page.fill("dialog textarea[name=public_key_pem]", pem)
        await page.fill("dialog input[name=notify_url]", "https://pos.example/notify")
        await page.fill("dialog input[name=merchant_ids]", ids["merchant_id"])
        await page.click("dialog button[type=submit]")
        secret = page.locator("#partner-secret code")
        await expect(secret).to_have_count(1)
        shown = await secret.get_attribute("data-secret")
        assert shown and len(shown) >= 32
    listed = (await running.http.get("/admin/partners", headers=running.admin_headers)).json()["items"]
    partner = next(item for item in listed if item["client_key"] == "kasir-console")
    assert partner["public_key_pem"].strip() == pem.strip() and partner["merchant_ids"] == [ids["merchant_id"]]
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "admin", "admin")
        await page.goto(f"{running.http_url}/ui/admin-partners?id={partner['id']}")
        await page.wait_for_selector("body[data-ready]", state="attached")
        await expect(page.locator("#content")).to_contain_text("kasir-console")
        await expect(page.locator("#partner-secret code")).to_have_count(0)  # never shown again
