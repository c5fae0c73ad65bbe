"""Bank upload layouts rendered from known transfers (one test per layout in bank_formats)."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from qris_soundbox.core.finance import bank_formats
from qris_soundbox.core.finance.bank_formats import bank_generic
from qris_soundbox.core.finance.bank_formats.base import Transfer
from qris_soundbox.core.finance.errors import FinanceInputInvalid


def transfer(batch_id: str, amount: int, account_number: str) -> Transfer:
    return Transfer(
        batch_id=batch_id,
        merchant_id="mer_1",
        merchant_code="M-1",
        merchant_email="kasir@warung.test",
        bank_code="014",
        account_number=account_number,
        account_name="WARUNG BU SITI",
        amount=amount,
        currency="IDR",
        value_date=date(2026, 12, 28),
        reference=batch_id,
        description=f"QRIS settlement {batch_id}",
    )


def test_bank_generic_has_a_detail_row_per_transfer_and_a_control_total_trailer() -> None:
    text = bank_generic.render([transfer("stb_A", 125_000, "0012345678"), transfer("stb_B", 7, "0098765432")]).decode()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == list(bank_generic.COLUMNS)
    assert rows[1] == [
        "D",
        "stb_A",
        "WARUNG BU SITI",
        "0012345678",
        "014",
        "125000",
        "IDR",
        "2026-12-28",
        "stb_A",
        "QRIS settlement stb_A",
        "mer_1",
        "M-1",
        "kasir@warung.test",
        "",
    ]
    assert rows[2][0] == "D" and rows[2][3] == "0098765432"  # leading zeros kept: account numbers are text
    assert rows[3] == ["T", "", "", "", "", "125007", "IDR", "", "", "", "", "", "", "2"]
    assert text.count("\r\n") == 4


def test_the_registry_names_every_layout_and_refuses_others() -> None:
    assert bank_formats.FORMATS["bank_generic"] is bank_generic.FORMAT
    assert bank_formats.report_format(None) == "standard"
    assert bank_formats.report_format("bank_generic") == "bank_generic"
    with pytest.raises(FinanceInputInvalid):
        bank_formats.report_format("BANK_GENERIC")
