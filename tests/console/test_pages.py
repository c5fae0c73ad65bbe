"""Every console page, opened with real data behind it: none sends a request off the platform's
origin, logs a browser error or gets a 4xx/5xx from the API (``console_page`` checks all three).

``CONSOLE_SCREENSHOTS=docs/console`` also saves a screenshot of each page there: the pictures
the README links are taken by this test, not by hand.
"""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, Page, expect

from qris_soundbox.control_plane.console import PAGES
from qris_soundbox.core.qris import parse_qris
from tests.console.browser import SCREENSHOTS, click_and_reload, console_page, open_page, shown_qr, user_logged_in
from tests.console.finance_data import payout_account_set, planted_report
from tests.devices.helpers import provisioned_device
from tests.onboarding import new_terminal, onboarded_terminal
from tests.payments.helpers import callback_body, post_callback
from tests.qr_images import STATIC_QRIS
from tests.support import RunningPlatform


async def shot(page: Page, name: str) -> None:
    """The page at the desktop size and, as ``<name>-phone.png``, at a phone's (390 × 844)."""
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        desktop = page.viewport_size
        await page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)
        await page.set_viewport_size({"width": 390, "height": 844})
        await page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}-phone.png"), full_page=True)
        if desktop:
            await page.set_viewport_size(desktop)


async def demo_world(running: RunningPlatform) -> dict[str, str]:
    """One merchant with a printed QRIS, a bound soundbox, a payout account changed once, payments,
    a dynamic QR, a batch and an acquirer report with differences."""
    admin = running.admin_headers
    ids = await onboarded_terminal(running, qris_ready=True, merchant_name="Warung Bu Sri")
    for number in ("0987654321", "1234567890"):
        await payout_account_set(running, ids["merchant_id"], "014", number, "Warung Bu Sri")
    sticker = await new_terminal(running, ids["outlet_id"], name="Kasir Depan", static_qris=STATIC_QRIS)
    device_id, _ = await provisioned_device(running, "generic-screen")
    bound = await running.http.post(
        f"/admin/devices/{device_id}/bind", json={"terminal_id": ids["terminal_id"]}, headers=admin
    )
    assert bound.status_code == 200, bound.text
    paid = []
    for amount in (25_000, 15_500, 8_000):
        response = await post_callback(running, callback_body(amount=amount, terminal_id=ids["terminal_id"]))
        paid.append(response.json()["transaction_id"])
    batch = await running.http.post(
        "/admin/settlement-batches", json={"merchant_id": ids["merchant_id"]}, headers=admin
    )
    dynamic = await running.http.post(
        "/admin/transactions", json={"terminal_id": ids["terminal_id"], "amount": 42_000}, headers=admin
    )
    assert batch.status_code == 201 and dynamic.status_code == 201, dynamic.text
    # Paid after the batch: what the batch dialog's preview shows.
    await post_callback(running, callback_body(amount=12_500, terminal_id=ids["terminal_id"]))
    invited = await running.http.post(
        "/admin/admin-users", json={"email": "sari.ops@example.co.id", "name": "Sari", "role": "ops"}, headers=admin
    )
    assert invited.status_code in (201, 409), invited.text  # 409: a second test of the module made her
    await running.http.post("/admin/merchants", json={"name": "Toko Menunggu", "city": "Bogor"}, headers=admin)
    content, _ = await planted_report(running)
    report = await running.http.post(
        "/admin/reconciliation/acquirer-reports", files={"file": ("settlement.csv", content, "text/csv")}, headers=admin
    )
    assert report.status_code == 201, report.text
    return ids | {
        "report_id": report.json()["id"],
        "device_id": device_id,
        "sticker_terminal_id": sticker["id"],
        "paid_id": paid[0],
        "dynamic_id": dynamic.json()["id"],
        "batch_id": batch.json()["items"][0]["id"],
    }


def page_paths(world: dict[str, str]) -> dict[str, str]:
    """Each page slug with the query that fills it (detail pages need an id)."""
    ids = {
        "admin-merchant-detail": world["merchant_id"],
        "admin-device-detail": world["device_id"],
        "admin-transaction-detail": world["dynamic_id"],
        "admin-settlement-batch-detail": world["batch_id"],
        "merchant-settlement-batch-detail": world["batch_id"],
        "admin-acquirer-report-detail": world["report_id"],
        "admin-terminal-poster": world["sticker_terminal_id"],
        "merchant-terminal-poster": world["sticker_terminal_id"],
    }
    paths = {slug: f"{slug}?id={ids[slug]}" if slug in ids else slug for slug in PAGES}
    return paths | {"admin-search": "admin-search?q=warung"}


async def visit_all(page: Page, running: RunningPlatform, paths: dict[str, str], audience: str) -> None:
    """Every page of this audience but the login, each rendered without an error (and pictured)."""
    for slug, path in paths.items():
        if PAGES[slug][0] == audience and slug != f"{audience}-login":
            await open_page(page, running, path)
            await expect(page.locator("#content .error")).to_have_count(0)
            await shot(page, slug)


async def test_every_page_renders_clean_with_data(running: RunningPlatform, browser: Browser) -> None:
    world = await demo_world(running)
    paths = page_paths(world)
    async with console_page(browser, running) as (page, _):
        await page.goto(f"{running.http_url}/ui/pages")
        await shot(page, "catalogue")
        await open_page(page, running, "admin-login")
        await shot(page, "admin-login")
        await user_logged_in(page, running, "admin", "admin")
        await visit_all(page, running, paths, "admin")
        await open_page(page, running, f"admin-device-detail?id={world['device_id']}")
        await page.click("#rotate")
        await page.click("#confirm-yes")
        await expect(page.locator("#secret")).to_be_visible()
        await shot(page, "admin-device-detail-rotate-credential")
        await click_and_reload(page, "#close-secret")
        await open_page(page, running, "admin-settlement-batches")
        await page.click("#create-batches")
        await expect(page.locator("#batch-preview table[data-list=batch-preview]")).to_be_visible()
        await shot(page, "admin-settlement-batches-preview")
    async with console_page(browser, running) as (page, _):
        await open_page(page, running, "merchant-login")
        await shot(page, "merchant-login")
        await user_logged_in(page, running, "merchant", "owner", world["merchant_id"])
        await visit_all(page, running, paths, "merchant")


async def test_a_dynamic_qr_transaction_shows_its_payload_as_a_qr_and_a_paid_one_retries_its_announcement(
    running: RunningPlatform, browser: Browser
) -> None:
    world = await demo_world(running)
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "admin", "finance")
        await open_page(page, running, f"admin-transaction-detail?id={world['dynamic_id']}")
        parsed = parse_qris(await shown_qr(page.locator("img.qr")))
        assert parsed.point_of_initiation == "dynamic" and parsed.amount == 42_000
        assert await page.locator("#retry-notification").count() == 0  # pending: nothing to announce yet
        await open_page(page, running, f"admin-transaction-detail?id={world['paid_id']}")
        await click_and_reload(page, "#retry-notification")  # reloads once the API has taken the retry
        await expect(page.locator("#content")).to_contain_text("Rp25.000")
    logs = await running.http.get(
        "/admin/audit-logs", params={"action": "transaction.retry_notification"}, headers=running.admin_headers
    )
    assert [entry["entity_id"] for entry in logs.json()["items"]] == [world["paid_id"]]
