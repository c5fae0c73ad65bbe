"""Acquirer settlement reports through the real HTTP API: a generated report with
planted differences yields exactly those differences; the same file twice changes
nothing; a malformed or oversized upload is refused with a stable code and leaves
nothing behind."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta, timezone

import pytest

from tests.actors import logged_in
from tests.finance.helpers import admin_logins, parse_csv
from tests.onboarding import onboarded_terminal
from tests.payments.helpers import callback_body, post_callback
from tests.support import PlatformFactory, RunningPlatform

WIB = timezone(timedelta(hours=7))
REPORTS = "/admin/reconciliation/acquirer-reports"
_days = iter(range(1, 3650))


def fresh_day() -> date:
    """A settlement date no other test of this module pays on."""
    return date(2024, 1, 1) + timedelta(days=next(_days))


async def paid(running: RunningPlatform, terminal_id: str, amount: int, at: datetime) -> str:
    """A paid static-QR transaction at ``at``; its provider reference."""
    reference = f"RRN{uuid.uuid4().hex[:16].upper()}"
    body = callback_body(amount=amount, terminal_id=terminal_id, provider_reference=reference)
    body["paid_at"] = at.isoformat()
    response = await post_callback(running, body)
    assert response.status_code == 200, response.text
    return reference


async def upload(
    running: RunningPlatform, content: bytes, *, name: str = "settlement.csv", headers: dict | None = None
):
    return await running.http.post(
        REPORTS, files={"file": (name, content, "text/csv")}, headers=headers or running.admin_headers
    )


def report_csv(header: list[str], rows: list[dict], *, line_end: str = "\r\n", bom: bool = False) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=line_end)
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(column, "") for column in header])
    return (("\ufeff" if bom else "") + buffer.getvalue()).encode()


async def counts(running: RunningPlatform) -> tuple[int, int, int]:
    pool = running.platform.db.pool
    return (
        await pool.fetchval("SELECT count(*) FROM acquirer_reports"),
        await pool.fetchval("SELECT count(*) FROM acquirer_report_exceptions"),
        await pool.fetchval("SELECT count(*) FROM audit_logs WHERE action LIKE 'acquirer_report.%'"),
    )


async def exceptions(running: RunningPlatform, report_id: str, **params: str) -> list[dict]:
    items, cursor = [], None
    while True:
        query = params | {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = await running.http.get(f"{REPORTS}/{report_id}/exceptions", params=query, headers=running.admin_headers)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


async def test_a_report_with_planted_differences_yields_exactly_those(running: RunningPlatform) -> None:
    day = fresh_day()
    ids = await onboarded_terminal(running)
    at = datetime(day.year, day.month, day.day, 10, 0, tzinfo=WIB)
    amounts = [10_000, 25_000, 40_000, 55_000, 70_000, 85_000]
    refs = [
        await paid(running, ids["terminal_id"], amount, at + timedelta(minutes=i)) for i, amount in enumerate(amounts)
    ]
    # Paid on the neighbouring business days (in WIB, not UTC): not this report's business.
    await paid(
        running,
        ids["terminal_id"],
        1_000,
        datetime(day.year, day.month, day.day, 0, 5, tzinfo=WIB) - timedelta(minutes=10),
    )
    await paid(
        running, ids["terminal_id"], 1_000, datetime(day.year, day.month, day.day, 0, 0, tzinfo=WIB) + timedelta(days=1)
    )

    lines = [
        {"provider_reference": refs[0], "amount": amounts[0]},
        {"provider_reference": refs[1], "amount": amounts[1]},
        {"provider_reference": refs[2], "amount": amounts[2] + 1},  # amount differs
        # refs[3] left out: paid in the ledger, missing from the report
        {"provider_reference": refs[4], "amount": amounts[4]},
        {"provider_reference": f'"{refs[5]}"', "amount": amounts[5]},  # a quoted field
        {"provider_reference": "FORGED000000001", "amount": 99_000},  # not in the ledger
    ]
    for line in lines:
        line |= {"settlement_date": day.isoformat(), "fee": 50, "terminal_id": "TID-1", "ignored_column": "x"}
    header = ["fee", "settlement_date", "ignored_column", "amount", "terminal_id", "provider_reference"]
    content = report_csv(header, lines, bom=True).replace(f'""{refs[5]}""'.encode(), refs[5].encode())
    content = content.replace(f"{refs[5]},".encode(), f'"{refs[5]}",'.encode())
    response = await upload(running, content)
    assert response.status_code == 201, response.text
    report = response.json()
    assert (report["line_count"], report["matched_count"]) == (6, 4)
    assert report["matched_amount"] == amounts[0] + amounts[1] + amounts[4] + amounts[5]
    assert (report["amount_mismatch_count"], report["amount_mismatch_report_amount"]) == (1, amounts[2] + 1)
    assert report["amount_mismatch_ledger_amount"] == amounts[2]
    assert (report["missing_in_ledger_count"], report["missing_in_ledger_amount"]) == (1, 99_000)
    assert (report["missing_in_report_count"], report["missing_in_report_amount"]) == (1, amounts[3])
    assert report["report_fee"] == 300 and report["settlement_dates"] == [day.isoformat()]
    assert report["unresolved_count"] == 3 and report["file_name"] == "settlement.csv"

    found = {(x["kind"], x["provider_reference"]) for x in await exceptions(running, report["id"])}
    assert found == {
        ("amount_mismatch", refs[2]),
        ("missing_in_report", refs[3]),
        ("missing_in_ledger", "FORGED000000001"),
    }
    (mismatch,) = await exceptions(running, report["id"], kind="amount_mismatch")
    assert (mismatch["line_number"], mismatch["report_amount"], mismatch["ledger_amount"]) == (4, 40_001, 40_000)
    assert mismatch["merchant_id"] == ids["merchant_id"] and mismatch["terminal_id"] == "TID-1"

    exported = await running.http.get(f"{REPORTS}/{report['id']}/exceptions/export.csv", headers=running.admin_headers)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert sorted(r["kind"] for r in parse_csv(exported.text)) == sorted(k for k, _ in found)

    path = f"{REPORTS}/{report['id']}/exceptions/{mismatch['id']}/resolve"
    resolved = await running.http.post(
        path, json={"note": "acquirer double-charged the fee"}, headers=running.admin_headers
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["resolution_note"] == "acquirer double-charged the fee"
    again = await running.http.post(path, json={"note": "twice"}, headers=running.admin_headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state"
    assert [x["id"] for x in await exceptions(running, report["id"], resolved="true")] == [mismatch["id"]]
    assert len(await exceptions(running, report["id"], resolved="false")) == 2
    detail = await running.http.get(f"{REPORTS}/{report['id']}", headers=running.admin_headers)
    assert detail.json()["unresolved_count"] == 2
    audit = await running.platform.db.pool.fetchval(
        "SELECT count(*) FROM audit_logs WHERE action = 'acquirer_report.exception.resolve' AND entity_id = $1",
        mismatch["id"],
    )
    assert audit == 1
    other = await running.http.post(
        f"{REPORTS}/{report['id']}/exceptions/arx_{'0' * 26}/resolve", json={"note": "x"}, headers=running.admin_headers
    )
    assert other.status_code == 404
    bad_kind = await running.http.get(
        f"{REPORTS}/{report['id']}/exceptions?kind=matched", headers=running.admin_headers
    )
    assert bad_kind.status_code == 400


async def test_the_same_file_twice_changes_nothing(running: RunningPlatform) -> None:
    day = fresh_day()
    ids = await onboarded_terminal(running)
    ref = await paid(running, ids["terminal_id"], 15_000, datetime(day.year, day.month, day.day, 12, tzinfo=WIB))
    content = report_csv(
        ["provider_reference", "amount", "settlement_date"],
        [{"provider_reference": ref, "amount": 15_000, "settlement_date": day.isoformat()}],
        line_end="\n",
    )
    first = await upload(running, content)
    assert first.status_code == 201 and first.json()["matched_count"] == 1
    before = await counts(running)
    second = await upload(running, content, name="renamed.csv")
    assert second.status_code == 200, second.text
    assert second.json()["id"] == first.json()["id"] and second.json()["already_imported"] is True
    assert await counts(running) == before

    # Two uploads of one new file at once: one import, the other answers it.
    other = content.replace(b"\n", b"\r\n")
    racing = await asyncio.gather(upload(running, other), upload(running, other))
    assert sorted(r.status_code for r in racing) == [200, 201]
    assert racing[0].json()["id"] == racing[1].json()["id"]
    assert (await counts(running))[0] == before[0] + 1


@pytest.mark.parametrize(
    ("content", "code", "line"),
    [
        (b"provider_reference,settlement_date\r\nR1,2025-01-01\r\n", "report_bad_header", 1),
        (b"provider_reference,amount,amount,settlement_date\r\nR1,1,1,2025-01-01\r\n", "report_bad_header", 1),
        (
            b"provider_reference,amount,settlement_date\nR1,100,2025-01-01\nR2,12.50,2025-01-01\n",
            "report_bad_amount",
            3,
        ),
        (b"provider_reference,amount,settlement_date\nR1,-5,2025-01-01\n", "report_bad_amount", 2),
        (b"provider_reference,amount,settlement_date,fee\nR1,5,2025-01-01,abc\n", "report_bad_amount", 2),
        (b"provider_reference,amount,settlement_date\nR1,5,2025-13-01\n", "report_bad_date", 2),
        (b"provider_reference,amount,settlement_date\nR1,5,01/03/2025\n", "report_bad_date", 2),
        (b"provider_reference,amount,settlement_date\nR1,5\n", "report_bad_line", 2),
        (b"provider_reference,amount,settlement_date\n,5,2025-01-01\n", "report_bad_line", 2),
        (b'provider_reference,amount,settlement_date\n"R1,5,2025-01-01\n', "report_bad_line", 2),
        (
            b"provider_reference,amount,settlement_date\nR1,5,2025-01-01\nR2,6,2025-01-01\nR1,5,2025-01-01\n",
            "report_duplicate_reference",
            4,
        ),
        (b"provider_reference,amount,settlement_date\nR1,5,2025-01-01\n\xff\xfe\n", "report_not_csv", 3),
        (b"provider_reference,amount,settlement_date\nR1\x00,5,2025-01-01\n", "report_not_csv", 2),
        (b"provider_reference,amount,settlement_date\n" + b"R" * 5000 + b",5,2025-01-01\n", "report_bad_line", 2),
        (b"", "report_empty", None),
        (b"provider_reference,amount,settlement_date\r\n\r\n", "report_empty", 2),
    ],
)
async def test_a_malformed_report_is_refused_and_leaves_nothing(
    running: RunningPlatform, content: bytes, code: str, line: int | None
) -> None:
    before = await counts(running)
    response = await upload(running, content)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["details"]["line"]) == (code, line), error
    assert await counts(running) == before
    # The staging table went with the transaction: the next import on any connection works.
    day = fresh_day()
    good = report_csv(
        ["provider_reference", "amount", "settlement_date"],
        [{"provider_reference": f"X{uuid.uuid4().hex}", "amount": 1, "settlement_date": day.isoformat()}],
    )
    assert (await upload(running, good)).status_code == 201


async def test_what_is_not_a_csv_upload_is_refused(running: RunningPlatform) -> None:
    before = await counts(running)
    as_json = await running.http.post(REPORTS, json={"file": "x"}, headers=running.admin_headers)
    assert as_json.status_code == 400 and as_json.json()["error"]["code"] == "report_not_csv"
    wrong_part = await running.http.post(
        REPORTS, files={"report": ("r.csv", b"a,b\n", "text/csv")}, headers=running.admin_headers
    )
    assert wrong_part.status_code == 400 and wrong_part.json()["error"]["code"] == "report_not_csv"
    broken = await running.http.post(
        REPORTS,
        content=b'--xyz\r\nContent-Disposition: form-data; name="file"\r\n\r\nprovider_reference',
        headers=running.admin_headers | {"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "report_not_csv"
    assert await counts(running) == before


async def test_an_oversized_upload_is_refused_whether_or_not_it_says_its_size(
    platform_factory: PlatformFactory,
) -> None:
    small = await platform_factory.start(acquirer_report_max_bytes=100_000)
    before = await counts(small)
    line = b"RRN0000000000000000,10000,2025-01-01\n"
    big = b"provider_reference,amount,settlement_date\n" + line * 10_000
    declared = await small.http.post(REPORTS, files={"file": ("big.csv", big, "text/csv")}, headers=small.admin_headers)
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "report_too_large"

    async def chunked() -> AsyncIterator[bytes]:
        yield b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\n'
        for start in range(0, len(big), 32_768):
            yield big[start : start + 32_768]
        yield b"\r\n--b0undary--\r\n"

    streamed = await small.http.post(
        REPORTS,
        content=chunked(),
        headers=small.admin_headers | {"Content-Type": "multipart/form-data; boundary=b0undary"},
    )
    assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "report_too_large"
    assert await counts(small) == before


async def test_only_finance_roles_import_and_no_merchant_reads(running: RunningPlatform) -> None:
    day = fresh_day()
    content = report_csv(
        ["provider_reference", "amount", "settlement_date"],
        [{"provider_reference": f"V{uuid.uuid4().hex}", "amount": 5, "settlement_date": day.isoformat()}],
    )
    users = await admin_logins(running, "viewer", "ops", "finance")
    ids = await onboarded_terminal(running)
    owner = await logged_in(running, "merchant", "owner", ids["merchant_id"])
    for client in (users["viewer"], users["ops"], owner):
        assert (await upload(running, content, headers=client.headers)).status_code == 403
    assert (await running.http.post(REPORTS, files={"file": ("r.csv", content, "text/csv")})).status_code == 401
    imported = await upload(running, content, headers=users["finance"].headers)
    assert imported.status_code == 201, imported.text
    report_path = f"{REPORTS}/{imported.json()['id']}"
    assert (await running.http.get(report_path, headers=users["viewer"].headers)).status_code == 200
    assert (await running.http.get(report_path, headers=owner.headers)).status_code == 403
    listed = await running.http.get(REPORTS, headers=users["viewer"].headers)
    assert imported.json()["id"] in {r["id"] for r in listed.json()["items"]}
    assert (await running.http.get(f"{REPORTS}/acr_{'0' * 26}", headers=running.admin_headers)).status_code == 404
