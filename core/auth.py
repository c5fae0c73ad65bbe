"""Who is calling, and what each role may do.

``Principal`` is resolved from the bearer token by the control plane
(``control_plane/auth.py``); services receive it to scope and audit. The
permission table is the one place that says which role may do what; every
route declares the permission it needs.
"""

from __future__ import annotations

import msgspec

ADMIN_ROLES = ("admin", "finance", "ops", "support", "viewer")
MERCHANT_ROLES = ("owner", "finance", "ops", "viewer")

_READ = {
    "merchant:read", "outlet:read", "terminal:read", "device:read", "transaction:read",
    "ledger:read", "settlement:read", "audit:read", "dashboard:read", "observability:read",
}

ADMIN_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset(_READ | {
        "merchant:write", "merchant:approve", "outlet:write", "terminal:write",
        "device:write", "device:credential", "device:bind", "device:config", "device:command",
        "device_model:write", "transaction:write", "transaction:expire",
        "settlement:write", "settlement:pay", "settlement:adjust", "settlement:export",
        "export:write", "user:write", "seed:write",
    }),
    "finance": frozenset(_READ | {
        "settlement:write", "settlement:pay", "settlement:adjust", "settlement:export", "export:write",
        "transaction:write", "transaction:expire",
    }),
    "ops": frozenset(_READ | {
        "merchant:write", "outlet:write", "terminal:write",
        "device:write", "device:credential", "device:bind", "device:config", "device:command",
        "transaction:expire",
    }),
    "support": frozenset(_READ | {"device:command", "device:config"}),
    "viewer": frozenset(_READ),
}

# Merchant users only ever see their own merchant (enforced by scoping, not by this table).
MERCHANT_PERMISSIONS: dict[str, frozenset[str]] = {
    "owner": frozenset({"merchant:profile", "settlement:read", "settlement:export", "transaction:read"}),
    "finance": frozenset({"merchant:profile", "settlement:read", "settlement:export", "transaction:read"}),
    "ops": frozenset({"merchant:profile", "transaction:read"}),
    "viewer": frozenset({"merchant:profile", "settlement:read", "transaction:read"}),
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


STATIC_ADMIN = Principal(kind="admin", id="static-admin-token", role="admin")
