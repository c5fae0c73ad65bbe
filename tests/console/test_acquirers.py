"""The acquirers page in real Chromium, at a desktop's and a phone's size: an admin registers a SNAP
acquirer, edits it, gives a merchant its id there; secrets go in and are never shown again."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from qris_soundbox.core.secrets import SecretBox
from tests.console.browser import click_and_reload, console_page, open_page, user_logged_in
from tests.console.test_people_console import PHONE, assert_no_sideways_scroll
from tests.onboarding import onboarded_terminal
from tests.partners.helpers import new_rsa_key
from tests.support import RunningPlatform

FIRST_SECRET = "console-hmac-secret-first"
SECOND_SECRET = "console-hmac-secret-second"


async def secrets_of(running: RunningPlatform, code: str) -> dict[str, str]:
    async with running.platform.db.pool.acquire() as conn:
        sealed = await conn.fetchval("SELECT secrets FROM acquirers WHERE code = $1", code)
    return SecretBox.of(running.platform.settings).open(sealed)


async def test_an_admin_registers_and_edits_an_acquirer_secrets_write_only(
    running: RunningPlatform, browser: Browser
) -> None:
    ids = await onboarded_terminal(running, qris_ready=True, merchant_name="Toko Acquirer")
    _, pem = new_rsa_key()
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "admin", "admin")
        await page.click("#nav a[href='/ui/admin-acquirers']")
        await page.wait_for_selector("body[data-ready]", state="attached")
        await page.click("#new-acquirer")
        await page.fill("dialog input[name=code]", "bank-console")
        await page.fill("dialog input[name=name]", "Bank Konsol")
        await page.fill("dialog input[name=client_key]", "bank-console-key")
        await page.fill("dialog textarea[name=public_key_pem]", pem)
        await page.select_option("dialog select[name=notify_signature]", "symmetric")
        await page.fill("dialog input[name=client_secret]", FIRST_SECRET)
        await click_and_reload(page, "dialog button[type=submit]")
        row = page.locator("table[data-list=acquirers] tr", has_text="bank-console")
        await expect(row).to_contain_text("client_secret")  # named as set, its value never
        assert FIRST_SECRET not in await page.content()

        await row.locator("[data-edit=bank-console]").click()
        secret_input = page.locator("dialog input[name=client_secret]")
        await expect(secret_input).to_have_value("")  # never filled back in
        assert await secret_input.get_attribute("type") == "password"
        await page.fill("dialog input[name=base_url]", "https://snap.bank.example")
        await click_and_reload(page, "dialog button[type=submit]")
        await expect(page.locator("table[data-list=acquirers]")).to_contain_text("https://snap.bank.example")
    assert (await secrets_of(running, "bank-console"))["client_secret"] == FIRST_SECRET  # an empty field kept it

    async with console_page(browser, running) as (page, _):
        await page.set_viewport_size(PHONE)
        await user_logged_in(page, running, "admin", "admin")
        await open_page(page, running, "admin-acquirers")
        await assert_no_sideways_scroll(page, "admin-acquirers")
        await page.locator("[data-edit=bank-console]").click()
        await page.fill("dialog input[name=client_secret]", SECOND_SECRET)
        await click_and_reload(page, "dialog button[type=submit]")  # the page reloads once the API took it
        await expect(page.locator("table[data-list=acquirers]")).to_contain_text("bank-console")
        # The ids the acquirer knows the merchant by.
        await page.fill("#merchant-acquirer [data-picker-search=merchant_id]", "Toko Acquirer")
        await expect(page.locator(f"#merchant-acquirer option[value='{ids['merchant_id']}']")).to_have_count(1)
        await page.select_option("#merchant-acquirer select[name=merchant_id]", ids["merchant_id"])
        await page.select_option("#merchant-acquirer select[name=acquirer_code]", "bank-console")
        await page.fill("#merchant-acquirer input[name=acquirer_merchant_id]", "BANK-M-77")
        await page.click("#merchant-acquirer button[type=submit]")
        await expect(page.locator("#ids-saved")).not_to_be_empty()
        await assert_no_sideways_scroll(page, "admin-acquirers")

    assert (await secrets_of(running, "bank-console"))["client_secret"] == SECOND_SECRET
    listed = (await running.http.get("/admin/acquirers", headers=running.admin_headers)).json()["items"]
    acquirer = next(a for a in listed if a["code"] == "bank-console")
    assert acquirer["settings"]["client_secret"] == "********"
    assert acquirer["settings"]["base_url"] == "https://snap.bank.example"
    async with running.platform.db.pool.acquire() as conn:
        merchant = await conn.fetchrow(
            "SELECT acquirer_code, acquirer_merchant_id FROM merchants WHERE id = $1", ids["merchant_id"]
        )
    assert dict(merchant) == {"acquirer_code": "bank-console", "acquirer_merchant_id": "BANK-M-77"}
