"""Users and login results as they leave the core (never with a password hash)."""

from __future__ import annotations

from datetime import datetime

import msgspec


class User(msgspec.Struct, kw_only=True):
    id: str
    kind: str  # admin | merchant
    email: str
    name: str
    role: str
    merchant_id: str | None = None  # merchant users only
    status: str
    last_login_at: datetime | None
    created_at: datetime


class LoginResult(msgspec.Struct, kw_only=True):
    token: str
    expires_at: datetime
    user: User
