"""The admin side of the console, end to end in Chromium on a real ``serve`` with real MQTT:
logging in, the dashboard against the API, onboarding down to a scannable QR, a device's
credential rotation and its first payment, and what a viewer and an expired session see."""

from __future__ import annotations

import re

import msgspec
import pytest
from playwright.async_api import Browser, Page, expect

from qris_soundbox.core.qris import parse_qris
from tests.actors import bearer, create_user, logged_in
from tests.console.browser import (
    click_and_reload,
    console_page,
    log_in,
    open_page,
    shown_qr,
    submit_dialog,
    user_logged_in,
)
from tests.devices.helpers import eventually, first_message
from tests.onboarding import onboarded_terminal
from tests.payments.helpers import callback_body, post_callback
from tests.qr_images import STATIC_QRIS, qr_text
from tests.support import RunningPlatform


async def api_get(running: RunningPlatform, path: str, **params: object) -> dict:
    response = await running.http.get(path, params=params, headers=running.admin_headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_admin_logs_in_through_the_form_and_the_dashboard_matches_the_api(
    running: RunningPlatform, browser: Browser
) -> None:
    ids = await onboarded_terminal(running)
    for amount in (25_000, 7_500):
        paid = await post_callback(running, callback_body(amount=amount, terminal_id=ids["terminal_id"]))
        assert paid.status_code == 200, paid.text
    async with console_page(browser, running) as (page, watched):
        await user_logged_in(page, running, "admin", "admin")
        await page.wait_for_selector("body[data-ready]", state="attached")
        summary = await api_get(running, "/admin/dashboard/summary")
        assert summary["today"]["paid_count"] >= 2
        await expect(page.locator("[data-kpi=paid_count] .value")).to_have_text(str(summary["today"]["paid_count"]))
        await expect(page.locator("[data-kpi=transaction_count] .value")).to_have_text(
            str(summary["today"]["transaction_count"])
        )
        volume = "Rp" + f"{summary['today']['paid_volume']:,}".replace(",", ".")
        await expect(page.locator("[data-kpi=paid_volume] .value")).to_have_text(volume)
        online = (await api_get(running, "/admin/observability/summary"))["devices_online"]
        await expect(page.locator("[data-kpi=devices_online] .value")).to_have_text(str(online))
        # Times are shown in Jakarta, with UTC on hover.
        stamp = page.locator("table[data-list=transactions] time").first
        await expect(stamp).to_have_text(re.compile(r"WIB$"))
        assert (await stamp.get_attribute("title") or "").endswith("(UTC)")
        watched.assert_clean()


async def test_a_wrong_password_shows_the_error_envelope_and_the_login_preset_counts_it(
    running: RunningPlatform, browser: Browser
) -> None:
    email, _ = await create_user(running, "admin", "admin")
    async with console_page(browser, running) as (page, watched):
        watched.expect("POST", "/admin/login", 401)
        await page.goto(f"{running.http_url}/ui/admin-login")
        await page.fill("input[name=email]", email)
        await page.fill("input[name=password]", "not the password")
        await page.click("button[type=submit]")
        error = page.locator(".error[data-code=unauthorized]")
        await expect(error).to_contain_text("invalid email or password")
        await expect(error).to_contain_text(re.compile(r"id permintaan \S+"))
        await log_in(page, running, "admin", email)
        await open_page(page, running, "admin-system-audit-logs")
        await page.click("#login-preset")
        await page.wait_for_url("**preset=login")
        await page.wait_for_selector("body[data-ready]", state="attached")
        assert int(await page.locator("[data-kpi=login-failed]").inner_text()) >= 1
        assert int(await page.locator("[data-kpi=login-ok]").inner_text()) >= 1
        failed = page.locator("tr[data-action='admin.login.failed']").first
        await failed.click()
        payload = msgspec.json.decode(await page.locator("#payload-json").inner_text())
        assert payload == {"email": email.lower(), "reason": "wrong_password"}
        # The page's search narrows the rows to what matches.
        await page.fill("#search", "wrong_password")
        assert (
            await page.locator("tbody tr").count() == await page.locator("tr[data-action='admin.login.failed']").count()
        )


async def test_onboarding_a_merchant_down_to_a_terminal_shows_a_scannable_static_qris(
    running: RunningPlatform, browser: Browser
) -> None:
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "admin", "ops")
        await open_page(page, running, "admin-merchants")
        await submit_dialog(page, "#new-merchant", name="Toko Konsol", city="Bandung")
        await page.wait_for_url("**/ui/admin-merchant-detail?id=*")
        merchant_id = page.url.rsplit("=", 1)[1]
        # ops may onboard but not approve: no approve button for this role.
        await page.wait_for_selector("body[data-ready]", state="attached")
        assert await page.locator("#approve").count() == 0
        await submit_dialog(page, "#new-outlet", name="Toko Konsol Pusat")
        await page.wait_for_selector("[data-new-terminal]")
        await submit_dialog(page, "[data-new-terminal]", name="Kasir Depan", static_qris=STATIC_QRIS)
        shown = await shown_qr(page.locator("[data-terminal] img.qr"))
        assert shown == STATIC_QRIS
        parsed = parse_qris(shown)
        assert parsed.point_of_initiation == "static" and parsed.merchant_name == "TOKO KONSOL"
        async with page.expect_download() as download_info:
            await page.click("[data-terminal] [data-download=png]")
        download = await download_info.value
        assert download.suggested_filename.endswith(".png")
        assert qr_text(open(await download.path(), "rb").read()) == STATIC_QRIS
    terminals = await api_get(running, "/admin/terminals", merchant_id=merchant_id)
    assert [t["static_qris"] for t in terminals["items"]] == [STATIC_QRIS]


async def approve_in_console(page: Page, running: RunningPlatform, merchant_id: str) -> None:
    await open_page(page, running, f"admin-merchant-detail?id={merchant_id}")
    await page.click("#approve")
    await page.click("#confirm-yes")
    await expect(page.locator("[data-status=active]").first).to_be_visible()


async def test_an_admin_approves_a_merchant_pending_review(running: RunningPlatform, browser: Browser) -> None:
    created = await running.http.post(
        "/admin/merchants", json={"name": "Toko Tunggu", "city": "Depok"}, headers=running.admin_headers
    )
    merchant_id = created.json()["id"]
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "admin", "admin")
        await approve_in_console(page, running, merchant_id)
    assert (await api_get(running, f"/admin/merchants/{merchant_id}"))["status"] == "active"


async def test_rotating_a_credential_shows_the_secret_once_and_a_real_mqtt_client_connects_with_it(
    running: RunningPlatform, browser: Browser
) -> None:
    ids = await onboarded_terminal(running, merchant_name="Warung Konsol")
    async with console_page(browser, running) as (page, watched):
        await user_logged_in(page, running, "admin", "ops")
        await open_page(page, running, "admin-device-registry")
        await submit_dialog(page, "#register-device", serial_number="SB-CONSOLE-0001", model="generic-audio")
        await page.wait_for_url("**/ui/admin-device-detail?id=*")
        device_id = page.url.rsplit("=", 1)[1]
        # Picked, not pasted: the merchant, then its terminal, from the API's lists.
        await submit_dialog(page, "#bind", merchant_id=ids["merchant_id"], terminal_id=ids["terminal_id"])
        await page.wait_for_selector("#rotate")
        await page.click("#rotate")
        await page.click("#confirm-yes")
        secret = await page.locator("#secret").inner_text()
        username = await page.locator("#mqtt-username").inner_text()
        host, port = (await page.locator("#broker").inner_text()).rsplit(":", 1)
        assert username == device_id and len(secret) >= 32
        assert int(port) == running.mqtt_port
        await page.click("#copy-secret")
        await click_and_reload(page, "#close-secret")  # closing the dialog reloads the page
        # Closed: the secret is nowhere in the page or its storage.
        assert secret not in await page.content()
        storage = await page.evaluate("() => JSON.stringify([sessionStorage, localStorage])")
        assert secret not in storage

        async with running.mqtt(username, secret) as device:
            await device.subscribe(f"devices/{device_id}/downlink/#", qos=1)
            paid = await post_callback(running, callback_body(amount=25_000, terminal_id=ids["terminal_id"]))
            transaction_id = paid.json()["transaction_id"]
            message = await first_message(device, timeout=10)
            assert message is not None and str(message.topic).endswith("/downlink/payment")
            ack = {"message_id": msgspec.json.decode(message.payload)["message_id"]}
            await device.publish(f"devices/{device_id}/uplink/payment/ack", msgspec.json.encode(ack), qos=1)

            async def acked() -> bool:
                detail = await api_get(running, f"/admin/transactions/{transaction_id}")
                return (detail.get("notification") or {}).get("status") == "acked"

            assert await eventually(acked, timeout=10)
            # The device page refreshes on its own: the notification turns acked, online without a reload.
            notification = page.locator(f"table[data-list=notifications] tr:has(a:text('{transaction_id}'))")
            await expect(notification.locator("[data-status=acked]")).to_be_visible(timeout=15_000)
            await expect(page.locator("dl [data-status=online]").first).to_be_visible(timeout=15_000)
            # The dashboard shows the payment that just arrived, in rupiah.
            await open_page(page, running, "admin-dashboard-overview")
            row = page.locator(f"table[data-list=transactions] tr[data-id='{transaction_id}']")
            await expect(row).to_contain_text("Rp25.000")
            await expect(row.locator("[data-status=paid]")).to_be_visible()
        watched.assert_clean()


async def test_the_device_registry_shows_which_models_can_be_tricked_by_a_forged_announcement(
    running: RunningPlatform, browser: Browser
) -> None:
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "admin", "viewer")
        await open_page(page, running, "admin-device-registry")
        models = page.locator("table[data-list=device-models]")
        await expect(models.locator("tr[data-id=q161-pro] [data-signed=false]")).to_have_text(
            "Tidak: bisa ditipu pengumuman palsu"
        )
        await expect(models.locator("tr[data-id=generic-audio] [data-signed=true]")).to_be_visible()


async def test_a_viewer_sees_no_write_controls(running: RunningPlatform, browser: Browser) -> None:
    ids = await onboarded_terminal(running)
    device = await running.http.post(
        "/admin/devices", json={"serial_number": "SB-VIEW-1", "model": "generic-audio"}, headers=running.admin_headers
    )
    device_id = device.json()["id"]
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "admin", "viewer")
        await open_page(page, running, f"admin-device-detail?id={device_id}")
        await expect(page.locator("dl [data-status=registered]")).to_be_visible()
        assert await page.locator("#content button:not(.copy)").count() == 0
        for path in (
            f"admin-merchant-detail?id={ids['merchant_id']}",
            "admin-merchants",
            "admin-device-registry",
            "admin-settlement-batches",
            "admin-reconciliation-management",
        ):
            await open_page(page, running, path)
            assert await page.locator("#content button:not(.filters button, .copy)").count() == 0, path


async def test_an_expired_session_returns_to_the_login_page(running: RunningPlatform, browser: Browser) -> None:
    async with console_page(browser, running) as (page, watched):
        await user_logged_in(page, running, "admin", "admin")
        token = await page.evaluate("() => JSON.parse(sessionStorage.getItem('qris.console.session')).token")
        # Off the dashboard first: its 5-second poll would otherwise meet the 401 and open the login page
        # for itself, racing the page asked for below (the session stays in this tab's sessionStorage).
        await page.goto("about:blank")
        revoked = await running.http.post("/admin/logout", headers=bearer(token))
        assert revoked.json() == {"revoked": True}
        watched.expect("GET", "/admin/merchants", 401)
        await page.goto(f"{running.http_url}/ui/admin-merchants?status=active")
        await page.wait_for_url("**/ui/admin-login?next=*")
        await expect(page.locator(".error")).to_contain_text("Sesi berakhir")
        # Logging in again returns to the page that was asked for, filters and all.
        email = (await logged_in(running, "admin", "admin")).email
        await page.fill("input[name=email]", email)
        await page.fill("input[name=password]", "correct horse battery staple")
        await page.click("button[type=submit]")
        await page.wait_for_url("**/ui/admin-merchants?status=active")


async def test_the_language_switch_turns_the_console_english(running: RunningPlatform, browser: Browser) -> None:
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "admin", "admin")
        await expect(page.locator("#title")).to_have_text("Ringkasan dasbor")
        await click_and_reload(page, "#lang")
        await expect(page.locator("#title")).to_have_text("Dashboard overview")
        await expect(page.locator("[data-kpi=paid_count] .label")).to_have_text("Paid today")
        await page.click("#lang")
        await expect(page.locator("#title")).to_have_text("Ringkasan dasbor")


@pytest.mark.parametrize("slug", ["no-such-page", "admin-login.php"])
async def test_an_unknown_page_is_an_html_404(running: RunningPlatform, browser: Browser, slug: str) -> None:
    async with console_page(browser, running) as (page, watched):
        watched.expect("GET", f"/ui/{slug}", 404)
        response = await page.goto(f"{running.http_url}/ui/{slug}")
        assert response is not None and response.status == 404
        await expect(page.locator("a[href='/ui']").last).to_be_visible()


async def test_support_sends_a_command_but_cannot_rotate_or_bind(running: RunningPlatform, browser: Browser) -> None:
    device = await running.http.post(
        "/admin/devices",
        json={"serial_number": "SB-SUPPORT-1", "model": "generic-audio"},
        headers=running.admin_headers,
    )
    device_id = device.json()["id"]
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "admin", "support")
        await open_page(page, running, f"admin-device-detail?id={device_id}")
        assert await page.locator("#rotate, #bind").count() == 0
        await submit_dialog(page, "#send-command", type="play_test_sound")
        await page.wait_for_selector("body[data-ready]", state="attached")
        command = page.locator("table[data-list=commands] tbody tr")
        await expect(command).to_contain_text("play_test_sound")
    commands = await api_get(running, f"/admin/devices/{device_id}/commands")
    assert [c["type"] for c in commands["items"]] == ["play_test_sound"]
