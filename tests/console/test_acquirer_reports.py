"""The acquirer's settlement report in the console: uploaded through the page's file input
(multipart), its planted differences shown, an exception resolved with a note, the
exceptions exported as CSV."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.console.browser import console_page, open_page, user_logged_in
from tests.console.finance_data import FORGED, planted_report, rows_of
from tests.support import RunningPlatform


async def test_an_uploaded_report_shows_its_differences_and_an_exception_is_resolved(
    running: RunningPlatform, browser: Browser
) -> None:
    content, refs = await planted_report(running)
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "admin", "finance")
        await page.click("#nav a[href='/ui/admin-acquirer-reports']")
        await page.wait_for_selector("body[data-ready]", state="attached")
        await page.set_input_files(
            "#upload-report input[name=file]",
            files=[{"name": "settlement.csv", "mimeType": "text/csv", "buffer": content}],
        )
        await page.click("#upload-report button[type=submit]")
        await page.wait_for_url("**/ui/admin-acquirer-report-detail?id=*")
        await page.wait_for_selector("body[data-ready]", state="attached")
        report_id = page.url.rsplit("=", 1)[1]
        for kpi, count in (("matched", "1"), ("amount_mismatch", "1"), ("missing_in_ledger", "1"), ("unresolved", "2")):
            await expect(page.locator(f"[data-kpi={kpi}] .value")).to_have_text(count)
        await expect(page.locator("[data-kpi=missing_in_ledger]")).to_contain_text("Rp12.345")
        rows = page.locator("#content table tbody tr")
        await expect(rows).to_have_count(2)
        mismatch = rows.filter(has_text=refs[1])
        await expect(mismatch).to_contain_text("Rp30.500")
        await expect(mismatch).to_contain_text("Rp30.000")
        await expect(rows.filter(has_text=FORGED).locator("[data-status=missing_in_ledger]")).to_be_visible()

        # Filters live in the URL, next to the report's id.
        await page.select_option("select[name=kind]", "amount_mismatch")
        await page.click("form.filters button[type=submit]")
        await page.wait_for_url("**kind=amount_mismatch*")
        await page.wait_for_selector("body[data-ready]", state="attached")
        assert f"id={report_id}" in page.url
        await expect(rows).to_have_count(1)
        async with page.expect_download() as exported_info:
            await page.click("#export-exceptions")
        exported = await rows_of(await exported_info.value)

        await page.click("[data-resolve]")
        await page.fill("dialog [name=note]", "acquirer salah potong biaya")
        await page.click("dialog button[type=submit]")
        await page.wait_for_selector("body[data-ready]", state="attached")
        await expect(rows.first.locator("[data-status=resolved]")).to_be_visible()
        await expect(rows.first.locator("[data-note]")).to_have_text("acquirer salah potong biaya")
        await expect(page.locator("[data-kpi=unresolved] .value")).to_have_text("1")

        await open_page(page, running, "admin-acquirer-reports")
        await expect(page.locator(f"tr[data-id='{report_id}']")).to_contain_text("settlement.csv")
    header = exported[0]
    assert [dict(zip(header, row, strict=True))["provider_reference"] for row in exported[1:]] == [refs[1]]
    detail = await running.http.get(
        f"/admin/reconciliation/acquirer-reports/{report_id}", headers=running.admin_headers
    )
    assert detail.json()["unresolved_count"] == 1


async def test_the_same_file_again_says_nothing_changed_and_a_viewer_cannot_upload_or_resolve(
    running: RunningPlatform, browser: Browser
) -> None:
    content, _ = await planted_report(running)
    first = await running.http.post(
        "/admin/reconciliation/acquirer-reports",
        files={"file": ("day.csv", content, "text/csv")},
        headers=running.admin_headers,
    )
    assert first.status_code == 201, first.text
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "admin", "admin")
        await open_page(page, running, "admin-acquirer-reports")
        await page.set_input_files(
            "#upload-report input[name=file]", files=[{"name": "again.csv", "mimeType": "text/csv", "buffer": content}]
        )
        await page.click("#upload-report button[type=submit]")
        await page.wait_for_url(f"**/ui/admin-acquirer-report-detail?id={first.json()['id']}&imported=again")
        await page.wait_for_selector("body[data-ready]", state="attached")
        await expect(page.locator("#flash .notice")).to_be_visible()
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "admin", "viewer")
        assert await page.locator("#nav a[href='/ui/admin-acquirer-reports']").count() == 0
        # The exceptions page on the server: a page of one, then the next, the report's id kept.
        await open_page(page, running, f"admin-acquirer-report-detail?id={first.json()['id']}&limit=1")
        await expect(page.locator("#content table tbody tr")).to_have_count(1)
        await page.click("a[rel=next]")
        await page.wait_for_url("**cursor=*")
        await page.wait_for_selector("body[data-ready]", state="attached")
        assert f"id={first.json()['id']}" in page.url
        await expect(page.locator("#content table tbody tr")).to_have_count(1)
        await open_page(page, running, f"admin-acquirer-report-detail?id={first.json()['id']}")
        await expect(page.locator("#content table tbody tr")).to_have_count(2)
        await expect(page.locator("[data-status=open]")).to_have_count(2)
        assert await page.locator("#content button:not(.filters button)").count() == 0
        await open_page(page, running, "admin-acquirer-reports")
        assert await page.locator("#upload-report").count() == 0
