"""Payout accounts: the bank account a merchant is paid into, and the banks the platform knows.

A merchant's account history is append-only (``merchant_payout_accounts``); the
newest row is the account in force. A settlement batch points at the row in
force when it was created, so a later change never redirects it — and a change
is refused outright while the merchant has a pending batch (redirecting a
payout is the classic insider fraud: docs/finance.md "Payout accounts").

The full account number is shown only to readers holding ``payout_account:read``;
everyone else, audit rows and batch events included, sees it masked.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import asyncpg

from qris_soundbox.core import audit
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.db import QUERIES, Connection, fetch_one
from qris_soundbox.core.finance.errors import (
    BankCodeUnknown,
    FinanceInputInvalid,
    MerchantNotFound,
    PayoutAccountChangeBlocked,
)
from qris_soundbox.core.finance.schemas import PayoutAccount, PayoutAccountState, PayoutBank, PayoutBankPut
from qris_soundbox.core.ids import new_id
from qris_soundbox.core.schemas import from_row

READ_PERMISSION = "payout_account:read"
NAME_MAX = 70
VISIBLE_DIGITS = 4
# What SKN/RTGS/BI-FAST beneficiary names carry: upper-case Latin letters, digits, space and a few marks.
_REFUSED_BY_BANKS = re.compile(r"[^A-Z0-9 .,/()&-]")
_SEPARATORS = re.compile(r"[ \-.]")
_BANK_CODE = re.compile(r"^[0-9]{3}$")


def normalise_name(name: str) -> str:
    """A beneficiary name a bank file takes: accents dropped, upper case, refused characters removed,
    runs of spaces made one. ``Warung Bu Siti's Kopi — Déjà`` → ``WARUNG BU SITIS KOPI DEJA``."""
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).upper()
    spaced = "".join(" " if c.isspace() else c for c in plain)
    cleaned = " ".join(_REFUSED_BY_BANKS.sub("", spaced).split())
    if not cleaned or len(cleaned) > NAME_MAX:
        raise FinanceInputInvalid(
            f"account_name must keep 1 to {NAME_MAX} characters once normalised for bank files "
            "(upper-case A-Z, 0-9, space and . , / ( ) & -)",
            details={"field": "account_name", "normalised": cleaned[:NAME_MAX]},
        )
    return cleaned


def mask(account_number: str) -> str:
    """All but the last 4 digits as ``*``."""
    hidden = max(len(account_number) - VISIBLE_DIGITS, 0)
    return "*" * hidden + account_number[hidden:]


def account_from_row(row: Any, *, full: bool) -> PayoutAccount:
    number = row["account_number"]
    return from_row(PayoutAccount, row, account_number=number if full else mask(number), masked=not full)


async def bank(conn: Connection, code: str) -> asyncpg.Record:
    """An active bank by its code, or ``400 bank_code_unknown``."""
    row = await conn.fetchrow(QUERIES["payout_bank_by_code"], code) if _BANK_CODE.match(code) else None
    if row is None or not row["active"]:
        raise BankCodeUnknown(
            f"bank_code {code!r} is not a bank the platform pays into (GET /admin/payout-banks lists them)",
            details={"field": "bank_code"},
        )
    return row


def account_number_for(bank_row: Any, account_number: str) -> str:
    """The account number as digits only (spaces, dashes and dots people type are dropped),
    of the length the bank uses."""
    digits = _SEPARATORS.sub("", account_number)
    low, high = bank_row["account_digits_min"], bank_row["account_digits_max"]
    if not (digits.isascii() and digits.isdigit()) or not low <= len(digits) <= high:
        length = f"{low}" if low == high else f"{low} to {high}"
        raise FinanceInputInvalid(
            f"account_number must be {length} digits for {bank_row['name']} ({bank_row['code']})",
            details={"field": "account_number", "bank_code": bank_row["code"]},
        )
    return digits


async def set_account(
    conn: Connection,
    merchant_id: str,
    actor: AuditActor,
    *,
    bank_code: str,
    account_number: str,
    account_name: str,
) -> PayoutAccount:
    """Record ``merchant_id``'s new payout account (answered unmasked: the caller may write it).

    Setting the account in force again changes nothing. Any other change is refused
    while the merchant has a pending batch. Takes the merchant's settlement lock, so a
    batch being built at the same time either sees the new account or blocks the change.
    """
    bank_row = await bank(conn, bank_code.strip())
    digits = account_number_for(bank_row, account_number)
    name = normalise_name(account_name)
    if await conn.fetchrow(QUERIES["finance_merchant"], merchant_id) is None:
        raise MerchantNotFound(f"merchant {merchant_id} does not exist", details={"merchant_id": merchant_id})
    await conn.execute(QUERIES["lock_merchant_settlement"], merchant_id)
    current = await conn.fetchrow(QUERIES["current_payout_account"], merchant_id)
    if current is not None and (current["bank_code"], current["account_number"], current["account_name"]) == (
        bank_row["code"],
        digits,
        name,
    ):
        return account_from_row(current, full=True)
    pending = [r["id"] for r in await conn.fetch(QUERIES["pending_settlement_batch_ids"], merchant_id)]
    if pending:
        raise PayoutAccountChangeBlocked(
            f"merchant {merchant_id} has {len(pending)} pending settlement batch(es); pay or cancel them "
            "before changing where the merchant is paid",
            details={"merchant_id": merchant_id, "pending_batch_ids": pending},
        )
    row = await fetch_one(
        conn,
        "insert_payout_account",
        new_id("pac"),
        merchant_id,
        bank_row["code"],
        digits,
        name,
        actor.actor_type,
        actor.actor_id,
    )
    await audit.record(
        conn,
        actor,
        "merchant.payout_account.set",
        entity_type="merchant",
        entity_id=merchant_id,
        merchant_id=merchant_id,
        payload={
            "payout_account_id": row["id"],
            "bank_code": row["bank_code"],
            "account_number": mask(digits),
            "account_name": name,
            "replaces": current["id"] if current is not None else None,
        },
    )
    return account_from_row(row, full=True)


async def account_state(conn: Connection, merchant_id: str, *, full: bool) -> PayoutAccountState:
    """The account in force and the history, newest first (masked unless ``full``)."""
    if await conn.fetchrow(QUERIES["finance_merchant"], merchant_id) is None:
        raise MerchantNotFound(f"merchant {merchant_id} does not exist", details={"merchant_id": merchant_id})
    history = [account_from_row(r, full=full) for r in await conn.fetch(QUERIES["payout_account_history"], merchant_id)]
    return PayoutAccountState(current=history[0] if history else None, history=history)


async def current_account(conn: Connection, merchant_id: str, *, full: bool) -> PayoutAccount | None:
    row = await conn.fetchrow(QUERIES["current_payout_account"], merchant_id)
    return account_from_row(row, full=full) if row is not None else None


async def batch_account(conn: Connection, payout_account_id: str | None, *, full: bool) -> PayoutAccount | None:
    """The account a batch pays (the one in force when it was created)."""
    if payout_account_id is None:
        return None
    return account_from_row(await conn.fetchrow(QUERIES["payout_account_by_id"], payout_account_id), full=full)


async def list_banks(conn: Connection) -> list[PayoutBank]:
    return [from_row(PayoutBank, r) for r in await conn.fetch(QUERIES["payout_banks"])]


async def put_bank(conn: Connection, code: str, actor: AuditActor, data: PayoutBankPut) -> PayoutBank:
    """Add a bank or change one (an operator's extension of the shipped list); audited."""
    if not _BANK_CODE.match(code):
        raise FinanceInputInvalid("a bank code is 3 digits (kode bank)", details={"field": "code"})
    name = data.name.strip()
    if not name:
        raise FinanceInputInvalid("name must not be blank", details={"field": "name"})
    if data.account_digits_min > data.account_digits_max:
        raise FinanceInputInvalid(
            "account_digits_min may not exceed account_digits_max", details={"field": "account_digits_min"}
        )
    row = await fetch_one(
        conn,
        "upsert_payout_bank",
        code,
        name,
        data.account_digits_min,
        data.account_digits_max,
        data.active,
    )
    await audit.record(
        conn,
        actor,
        "payout_bank.put",
        entity_type="payout_bank",
        entity_id=code,
        payload={
            "name": row["name"],
            "account_digits_min": row["account_digits_min"],
            "account_digits_max": row["account_digits_max"],
            "active": row["active"],
        },
    )
    return from_row(PayoutBank, row)
