"""Status values read in the console's language: one table (``STATUS_LABEL`` in console.js) names every
status the database can hold in Indonesian and English; badges and status filters read it, and the API's
value stays on the badge as ``data-status``."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.async_api import Browser, expect

from tests.console.browser import click_and_reload, console_page, open_page, user_logged_in
from tests.onboarding import onboarded_terminal
from tests.payments.helpers import callback_body, post_callback
from tests.support import RunningPlatform

ROOT = Path(__file__).resolve().parents[2]


def database_statuses() -> set[str]:
    """Every value a ``status IN (...)`` check of a migration allows."""
    sql = "\n".join(path.read_text() for path in sorted((ROOT / "sql" / "migrations").glob("*.sql")))
    return {value for group in re.findall(r"status IN \(([^)]*)\)", sql) for value in re.findall(r"'(\w+)'", group)}


def test_every_status_the_database_holds_has_both_labels() -> None:
    script = (ROOT / "control_plane" / "console_assets" / "console.js").read_text()
    table = script[script.index("const STATUS_LABEL = {") : script.index("};", script.index("const STATUS_LABEL = {"))]
    labelled = dict(re.findall(r'(\w+): \["([^"]+)", "[^"]+"\]', table))
    statuses = database_statuses()
    assert {"paid", "skipped_late", "pending_review"} <= statuses  # the parse found the checks
    assert sorted(statuses - labelled.keys()) == []


async def test_a_paid_badge_reads_dibayar_then_paid(running: RunningPlatform, browser: Browser) -> None:
    ids = await onboarded_terminal(running, merchant_name="Warung Status")
    assert (
        await post_callback(running, callback_body(amount=12_000, terminal_id=ids["terminal_id"]))
    ).status_code == 200
    async with console_page(browser, running) as (page, _):
        await user_logged_in(page, running, "admin", "admin")
        await open_page(page, running, f"admin-transactions?merchant_id={ids['merchant_id']}")
        paid = page.locator("[data-status=paid]").first
        await expect(paid).to_have_text("dibayar")
        await expect(page.locator("select[name=status] option[value=expired]")).to_have_text("kedaluwarsa")
        await click_and_reload(page, "#lang")
        await expect(page.locator("[data-status=paid]").first).to_have_text("paid")
        await expect(page.locator("select[name=status] option[value=expired]")).to_have_text("expired")
