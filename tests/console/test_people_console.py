"""The console for the people of SPEC §11 (issue 27): names instead of ids, one search box, a phone
layout without sideways scrolling, a technician's serial → bind → test sound, the merchant's live
"hari ini", and detail pages opened without an id."""

from __future__ import annotations

import time

from playwright.async_api import Browser, Page, expect

from qris_soundbox.control_plane.console import PAGES
from tests.console.browser import console_page, open_page, user_logged_in
from tests.console.test_pages import demo_world
from tests.devices.helpers import register_device
from tests.onboarding import new_terminal, onboarded_terminal
from tests.payments.helpers import callback_body, post_callback
from tests.qr_images import STATIC_QRIS, qr_text
from tests.support import RunningPlatform

PHONE = {"width": 390, "height": 844}


async def menu_pages(page: Page) -> list[str]:
    return await page.locator("#nav a").evaluate_all("links => links.map(a => a.getAttribute('href'))")


async def assert_no_sideways_scroll(page: Page, path: str) -> None:
    width = await page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
    wide = await page.evaluate(
        "() => [...document.querySelectorAll('main *')].filter(n => n.getBoundingClientRect().right > innerWidth)"
        ".slice(-3).map(n => n.tagName + '.' + n.className + ' ' + n.textContent.slice(0, 40))"
    )
    assert width[0] <= width[1], (path, width, wide)


async def test_every_menu_page_fits_a_phone_and_the_menu_folds(running: RunningPlatform, browser: Browser) -> None:
    world = await demo_world(running)
    async with console_page(browser, running) as (page, _):
        await page.set_viewport_size(PHONE)
        await user_logged_in(page, running, "admin", "admin")
        await expect(page.locator("#nav")).to_be_hidden()  # folded behind the menu button
        await page.click("#menu")
        await expect(page.locator("#nav")).to_be_visible()
        paths = await menu_pages(page)
        assert len(paths) >= 8
        details = [
            f"admin-merchant-detail?id={world['merchant_id']}",
            f"admin-device-detail?id={world['device_id']}",
            f"admin-transaction-detail?id={world['paid_id']}",
            f"admin-settlement-batch-detail?id={world['batch_id']}",
            "admin-search?q=Warung",
        ]
        for path in [p.removeprefix("/ui/") for p in paths] + details:
            await open_page(page, running, path)
            await assert_no_sideways_scroll(page, path)
    async with console_page(browser, running) as (page, _):
        await page.set_viewport_size(PHONE)
        await user_logged_in(page, running, "merchant", "owner", world["merchant_id"])
        await page.click("#menu")
        for path in [p.removeprefix("/ui/") for p in await menu_pages(page)]:
            await open_page(page, running, path)
            await assert_no_sideways_scroll(page, path)


async def test_lists_show_names_and_codes_not_ids(running: RunningPlatform, browser: Browser) -> None:
    world = await demo_world(running)
    terminal = (
        await running.http.get(f"/admin/terminals/{world['terminal_id']}", headers=running.admin_headers)
    ).json()
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "admin", "finance")
        await open_page(page, running, "admin-transactions")
        table = page.locator("table[data-list='/admin/transactions']")
        await expect(table).to_contain_text("Warung Bu Sri")
        await expect(table).to_contain_text(terminal["terminal_code"])
        assert world["merchant_id"] not in await table.inner_text()
        await open_page(page, running, "admin-device-registry")
        await expect(page.locator("table[data-list='/admin/devices']")).to_contain_text(terminal["terminal_code"])
        await open_page(page, running, "admin-settlement-batches")
        await expect(page.locator("table")).to_contain_text("Warung Bu Sri")
        # The id is still there to copy on a detail page.
        await open_page(page, running, f"admin-transaction-detail?id={world['paid_id']}")
        await expect(page.locator(f"[data-copy='{world['paid_id']}']")).to_be_visible()


async def test_one_search_box_finds_a_merchant_by_part_of_its_name(running: RunningPlatform, browser: Browser) -> None:
    world = await demo_world(running)
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "admin", "support")
        await page.fill("#topsearch input[name=q]", "bu sri")
        await page.press("#topsearch input[name=q]", "Enter")
        await page.wait_for_url("**/ui/admin-search?q=bu+sri")
        await page.wait_for_selector("body[data-ready]", state="attached")
        results = page.locator("[data-results=Merchant]")
        await expect(results).to_contain_text("Warung Bu Sri")
        await results.locator("a").first.click()
        await page.wait_for_url(f"**/ui/admin-merchant-detail?id={world['merchant_id']}")


async def test_a_technician_finds_a_device_by_serial_binds_it_and_sends_a_test_sound(
    running: RunningPlatform, browser: Browser
) -> None:
    ids = await onboarded_terminal(running, merchant_name="Bakso Teknisi")
    device = await register_device(running)
    code = (await running.http.get(f"/admin/terminals/{ids['terminal_id']}", headers=running.admin_headers)).json()[
        "terminal_code"
    ]
    async with console_page(browser, running) as (page, _):
        await page.set_viewport_size(PHONE)
        await user_logged_in(page, running, "admin", "ops")
        await open_page(page, running, "admin-device-registry")
        await page.fill("#serial-search", device["serial_number"][3:])
        await page.press("#serial-search", "Enter")
        await page.wait_for_url("**q=*")
        await page.wait_for_selector("body[data-ready]", state="attached")
        await page.locator(f"tr[data-id='{device['id']}'] a").click()  # 1: the device
        await page.wait_for_url(f"**/ui/admin-device-detail?id={device['id']}")
        await page.click("#bind")  # 2: bind, by the code on the QRIS sticker
        await page.fill("dialog [name=terminal_code]", code.lower())
        await page.click("dialog button[type=submit]")
        await expect(page.locator("#flash .notice")).to_be_visible()
        await expect(page.locator("#content")).to_contain_text("Bakso Teknisi")
        await page.click("#test-sound")  # 3: a test announcement
        await expect(page.locator("#flash .notice")).to_contain_text("Tes suara")
        await assert_no_sideways_scroll(page, "admin-device-detail")
    commands = await running.http.get(f"/admin/devices/{device['id']}/commands", headers=running.admin_headers)
    assert [c["type"] for c in commands.json()["items"]] == ["play_test_sound"]


async def test_a_refused_bind_says_why_in_the_users_language(running: RunningPlatform, browser: Browser) -> None:
    device = await register_device(running)
    async with console_page(browser, running) as (page, watched):
        watched.expect("POST", f"/admin/devices/{device['id']}/bind", 404)
        await user_logged_in(page, running, "admin", "ops")
        await open_page(page, running, f"admin-device-detail?id={device['id']}")
        await page.click("#bind")
        await page.fill("dialog [name=terminal_code]", "T999999999")
        await page.click("dialog button[type=submit]")
        error = page.locator("dialog .error[data-code=terminal_not_found]")
        await expect(error).to_contain_text("Terminal tidak ditemukan")
        assert "{" not in await error.inner_text()  # no raw JSON


async def test_a_detail_page_without_its_id_says_so_and_calls_nothing(
    running: RunningPlatform, browser: Browser
) -> None:
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "admin", "admin")
        asked: list[str] = []
        page.on("request", lambda request: asked.append(request.url))
        for slug in [slug for slug in PAGES if slug.startswith("admin-") and slug.endswith("-detail")]:
            await open_page(page, running, slug)
            await expect(page.locator("#content .empty")).to_be_visible()
        assert not [url for url in asked if "/admin/" in url and "/ui/" not in url]


async def test_a_terminals_qris_poster_shows_the_qr_merchant_nmid_and_terminal_code(
    running: RunningPlatform, browser: Browser
) -> None:
    ids = await onboarded_terminal(running, qris_ready=True, merchant_name="Mie Poster")
    terminal = await new_terminal(running, ids["outlet_id"], name="Kasir Poster", static_qris=STATIC_QRIS)
    merchant = (await running.http.get(f"/admin/merchants/{ids['merchant_id']}", headers=running.admin_headers)).json()
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "merchant", "ops", ids["merchant_id"])
        await open_page(page, running, "merchant-profile")
        await page.click(f"[data-terminal='{terminal['id']}'] a")  # from the terminal's card
        await page.wait_for_url(f"**/ui/merchant-terminal-poster?id={terminal['id']}")
        await page.wait_for_selector("body[data-ready]", state="attached")
        poster = page.locator("#poster")
        await expect(poster).to_contain_text("MIE POSTER", ignore_case=True)
        await expect(poster).to_contain_text(merchant["nmid"])
        await expect(poster).to_contain_text(terminal["terminal_code"])
        await page.wait_for_function("() => document.querySelector('#poster img.qr').complete")
        assert qr_text(await poster.locator("img.qr").screenshot()) == STATIC_QRIS
        await page.emulate_media(media="print")
        await expect(page.locator(".topbar")).to_be_hidden()  # the printed page is the poster alone


async def test_the_merchants_today_page_shows_a_payment_within_3_seconds(
    running: RunningPlatform, browser: Browser
) -> None:
    ids = await onboarded_terminal(running, merchant_name="Sate Hari Ini")
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "merchant", "ops", ids["merchant_id"])  # lands on "hari ini"
        await expect(page.locator("[data-kpi=paid_count] .value")).to_have_text("0")
        paid = await post_callback(running, callback_body(amount=17_500, terminal_id=ids["terminal_id"]))
        assert paid.status_code == 200, paid.text
        started = time.monotonic()
        await expect(page.locator("table[data-list=today-payments]")).to_contain_text("Rp17.500", timeout=3_000)
        assert time.monotonic() - started <= 3.0
        await expect(page.locator("[data-kpi=paid_count] .value")).to_have_text("1")
