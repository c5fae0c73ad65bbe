"""What a bank upload format is given and what it is: one transfer per settlement batch,
and a layout that turns transfers into the bytes of a file."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from qris_soundbox.core.schemas import Value


class Transfer(Value, kw_only=True, frozen=True):
    """One payout: a batch's adjusted payable to the account the batch was created with."""

    batch_id: str
    merchant_id: str
    merchant_code: str
    merchant_email: str | None
    bank_code: str
    account_number: str  # full: bank files go only to holders of payout_account:read
    account_name: str  # normalised for bank files (upper case, no refused characters)
    amount: int  # whole rupiah
    currency: str
    value_date: date  # the day the bank is to credit the merchant (the batch's value date)
    reference: str  # the payout reference if set, else the batch id
    description: str


@dataclass(frozen=True)
class BankFormat:
    """A bank's upload layout, registered under ``name`` in ``bank_formats.FORMATS``."""

    name: str
    media_type: str
    extension: str
    render: Callable[[Sequence[Transfer]], bytes]
