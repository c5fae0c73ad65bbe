"""Users, logins and the merchant profile at the boundary (a user never with its password hash)."""

from __future__ import annotations

from datetime import datetime

from qris_soundbox.core.finance.schemas import PayoutAccount
from qris_soundbox.core.merchants.schemas import Merchant
from qris_soundbox.core.schemas import Body, Struct


class User(Struct, kw_only=True):
    id: str
    kind: str  # admin | merchant
    email: str
    name: str
    role: str
    merchant_id: str | None = None  # merchant users only
    status: str
    last_login_at: datetime | None
    created_at: datetime


class LoginResult(Struct, kw_only=True):
    token: str
    expires_at: datetime
    user: User


class LoginRequest(Body, kw_only=True):
    email: str
    password: str


class LogoutResult(Struct, kw_only=True):
    revoked: bool


class MerchantProfile(Struct, kw_only=True):
    user: User
    merchant: Merchant
    payout_account: PayoutAccount | None  # always masked for a merchant user
