"""Acquirer registry Structs (SPEC §13). Secrets go in, never come out: answers show them masked."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from msgspec import UNSET, UnsetType

from qris_soundbox.core.schemas import Body, Struct

Protocol = Literal["snap", "midtrans", "xendit", "doku", "platform"]


class Acquirer(Struct, kw_only=True):
    id: str
    code: str
    name: str
    protocol: str
    # The shown settings, with every secret that is set as ``"********"``.
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class AcquirerCreate(Body, kw_only=True):
    code: str
    name: str
    protocol: Protocol
    settings: dict[str, Any] = {}


class AcquirerUpdate(Body, kw_only=True):
    """Only what is present changes. ``settings`` merges key by key; a key set to ``null`` is removed."""

    name: str | UnsetType = UNSET
    settings: dict[str, Any] | UnsetType = UNSET


class MerchantAcquirer(Body, kw_only=True):
    acquirer_code: str | None
    acquirer_merchant_id: str | None = None


class MerchantAcquirerAnswer(Struct, kw_only=True):
    id: str
    acquirer_code: str | None
    acquirer_merchant_id: str | None


class TerminalAcquirerId(Body, kw_only=True):
    """``null`` goes back to the default: the terminal's ``terminal_code``."""

    acquirer_terminal_id: str | None


class TerminalAcquirerIdAnswer(Struct, kw_only=True):
    id: str
    acquirer_terminal_id: str
