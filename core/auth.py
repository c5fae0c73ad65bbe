"""Who is calling, and what each role may do.

``Principal`` is resolved from the bearer token by the control plane
(``control_plane/auth.py``); services receive it to scope and audit. The
permission table is the one place that says which role may do what; every
route declares the permission it needs.
"""

from __future__ import annotations

import msgspec

from qris_soundbox.core.errors import Forbidden

ADMIN_ROLES = ("admin", "finance", "ops", "support", "viewer")
MERCHANT_ROLES = ("owner", "finance", "ops", "viewer")

_READ = frozenset(
    {
        "session:logout",
        "merchant:read",
        "outlet:read",
        "terminal:read",
        "device:read",
        "transaction:read",
        "ledger:read",
        "settlement:read",
        "audit:read",
        "dashboard:read",
        "observability:read",
    }
)

# What finance staff do with money (and see of payout accounts), and what field staff do with merchants and devices.
_FINANCE_WRITES = frozenset(
    {
        "settlement:write",
        "settlement:pay",
        "settlement:adjust",
        "settlement:export",
        "export:write",
        "transaction:write",
        "transaction:expire",
        # Refund a paid payment; above REFUND_APPROVAL_ABOVE a second holder approves (docs/finance.md).
        "transaction:refund",
        # Where merchants' money goes: read unmasked, and change (docs/finance.md).
        "payout_account:read",
        "payout_account:write",
        # What a merchant pays: its fee_bps contract, its MDR category, the MDR schedules (docs/finance.md).
        "merchant:fees",
    }
)
_FIELD_WRITES = frozenset(
    {
        "merchant:write",
        "outlet:write",
        "terminal:write",
        "device:write",
        "device:credential",
        "device:bind",
        "device:config",
        "device:command",
        "transaction:expire",
    }
)

ADMIN_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": _READ
    | _FINANCE_WRITES
    | _FIELD_WRITES
    | {
        "merchant:approve",
        "device_model:write",
        # Both kinds of users: who they are (emails), invite, role, disable, reset password.
        "user:read",
        "user:write",
        "seed:write",
        "payout_bank:write",
        "acquirer:manage",
        "partner:manage",
    },
    "finance": _READ | _FINANCE_WRITES,
    "ops": _READ | _FIELD_WRITES,
    "support": _READ | {"device:command", "device:config"},
    "viewer": _READ,
}

# Merchant users only ever see their own merchant (enforced by scoping, not by this table).
_MERCHANT_READ = {"session:logout", "merchant:profile", "outlet:read", "terminal:read", "transaction:read"}
MERCHANT_PERMISSIONS: dict[str, frozenset[str]] = {
    "owner": frozenset(_MERCHANT_READ | {"settlement:read", "settlement:export"}),
    "finance": frozenset(_MERCHANT_READ | {"settlement:read", "settlement:export"}),
    "ops": frozenset(_MERCHANT_READ),
    "viewer": frozenset(_MERCHANT_READ | {"settlement:read"}),
}


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    kind: str  # "admin" | "merchant"
    id: str  # user id, or "static-admin-token" for ADMIN_TOKEN
    role: str
    merchant_id: str | None = None  # set for merchant users
    email: str | None = None

    def may(self, permission: str) -> bool:
        table = ADMIN_PERMISSIONS if self.kind == "admin" else MERCHANT_PERMISSIONS
        return permission in table.get(self.role, frozenset())


def require(principal: Principal, permission: str) -> None:
    """Refuse (403) a principal without ``permission``: the route guard, and routes whose body needs more."""
    if not principal.may(permission):
        raise Forbidden(f"role {principal.role!r} lacks permission {permission!r}", details={"permission": permission})


STATIC_ADMIN = Principal(kind="admin", id="static-admin-token", role="admin")


def merchant_scope(principal: Principal) -> str | None:
    """The merchant id every query of this caller must be limited to; None for admins.

    Services pass it down to the SQL as ``AND ($n::text IS NULL OR merchant_id = $n)``,
    so another merchant's object is simply not found (404), never forbidden (403):
    a merchant cannot even learn that the id exists.
    """
    if principal.kind == "admin":
        return None
    if principal.merchant_id is None:  # a merchant principal always has one; fail closed if not
        raise Forbidden("this principal belongs to no merchant")
    return principal.merchant_id
