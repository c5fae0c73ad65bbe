"""Finance data the console tests share: a downloaded CSV's rows, an acquirer report with planted differences."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

from playwright.async_api import Download

from tests.finance.test_acquirer_reports import WIB, fresh_day, paid, report_csv
from tests.onboarding import onboarded_terminal
from tests.support import RunningPlatform


async def rows_of(download: Download) -> list[list[str]]:
    with open(await download.path(), newline="", encoding="utf-8") as handle:
        return list(csv.reader(io.StringIO(handle.read())))


async def payout_account_set(
    running: RunningPlatform, merchant_id: str, bank_code: str, number: str, name: str
) -> None:
    """Set a merchant's payout account through the API (the console's own form is tested apart)."""
    account = {"bank_code": bank_code, "account_number": number, "account_name": name}
    put = await running.http.put(
        f"/admin/merchants/{merchant_id}/payout-account", json=account, headers=running.admin_headers
    )
    assert put.status_code == 200, put.text


FORGED = "FORGED000000777"


async def planted_report(running: RunningPlatform) -> tuple[bytes, list[str]]:
    """A day's report of three paid payments: one matches, one with the amount off by 500,
    one the ledger does not know. Its content and the two real references."""
    day = fresh_day()
    ids = await onboarded_terminal(running, merchant_name="Toko Acquirer")
    at = datetime(day.year, day.month, day.day, 11, tzinfo=WIB)
    refs = [
        await paid(running, ids["terminal_id"], amount, at + timedelta(minutes=i))
        for i, amount in ((0, 20_000), (1, 30_000))
    ]
    lines = [
        {"provider_reference": refs[0], "amount": 20_000},
        {"provider_reference": refs[1], "amount": 30_500},
        {"provider_reference": FORGED, "amount": 12_345},
    ]
    for line in lines:
        line["settlement_date"] = day.isoformat()
    return report_csv(["provider_reference", "amount", "settlement_date"], lines), refs
