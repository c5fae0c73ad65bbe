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
    merchant_name: str | None = None  # merchant users, in lists: who they work for


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


class UserInvite(Body, kw_only=True):
    """A new user; the answer carries a temporary password, shown once, to hand over."""

    email: str
    name: str
    role: str
    merchant_id: str | None = None  # merchant users: required


class UserUpdate(Body, kw_only=True):
    role: str | None = None
    status: str | None = None  # active | disabled: disabling ends every session of the user


class IssuedPassword(Struct, kw_only=True):
    """An invited user or a reset password: ``temporary_password`` exists only in this answer."""

    user: User
    temporary_password: str
