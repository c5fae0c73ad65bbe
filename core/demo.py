"""Demo mode (``serve --demo``, used by ``make run``): well-known development
secrets when none are set, and idempotent demo data.

Each domain adds its demo objects to ``seed_demo_data`` and the lines a
newcomer needs (logins, ids, secrets) to ``seed_demo``'s banner. Seeding twice
changes nothing: every object is looked up by a fixed natural key first.

The demo passwords below are public development values (docs/merchants.md):
never seed a production database.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.context import PlatformContext
from qris_soundbox.core.db import QUERIES, Database
from qris_soundbox.core.devices.demo import seed_demo_device
from qris_soundbox.core.merchants import service as merchants
from qris_soundbox.core.merchants.schemas import Merchant, Outlet, Terminal
from qris_soundbox.core.schemas import Struct, from_row
from qris_soundbox.core.users import service as users

# The earlier implementation's development values, so its scripts keep working.
DEMO_SECRETS = {
    "admin_token": "admin-dev-token",
    "device_token": "device-dev-token",
    "integration_webhook_secret": "dev-callback-secret",
    # Fernet key of b"qris-soundbox-dev-secrets-key-32": public, so only for development data.
    "secrets_encryption_key": "cXJpcy1zb3VuZGJveC1kZXYtc2VjcmV0cy1rZXktMzI=",
}

DEMO_ACTOR = AuditActor(actor_type="system", actor_id="demo-seed")
DEMO_MERCHANT: dict[str, Any] = {
    "name": "Warung Demo",
    "city": "Jakarta",
    "mcc": "5499",
    "nmid": "ID1020000000001",
    "email": "owner@demo.qris.local",
    "postal_code": "10110",
}
DEMO_OUTLET = {"name": "Warung Demo Pusat", "address": "Jl. Contoh No. 1", "city": "Jakarta"}
DEMO_TERMINAL = {"name": "Kasir 1"}


class DemoLogin(Struct, kw_only=True):
    kind: str  # admin | merchant
    email: str
    role: str
    password: str
    login: str  # the route to post them to


# kind, email, name, role, password
DEMO_USERS = (
    ("admin", "admin@demo.qris.local", "Demo Admin", "admin", "demo-admin-password"),
    ("admin", "finance@demo.qris.local", "Demo Finance", "finance", "demo-finance-password"),
    ("merchant", "owner@demo.qris.local", "Demo Merchant Owner", "owner", "demo-owner-password"),
)


class DemoData(Struct, kw_only=True):
    created: list[str]  # "merchant", "outlet", ... — empty when everything existed already
    merchant: Merchant
    outlet: Outlet
    terminal: Terminal
    logins: list[DemoLogin]


def demo_overrides(current: dict[str, object], environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """Secrets for demo mode, leaving any the operator set alone; the shared device token
    is accepted too, unless ``DEVICE_AUTH_ALLOW_LEGACY_TOKEN`` says otherwise."""
    env = os.environ if environ is None else environ
    overrides: dict[str, object] = {name: value for name, value in DEMO_SECRETS.items() if not current.get(name)}
    if not env.get("DEVICE_AUTH_ALLOW_LEGACY_TOKEN", "").strip():
        overrides["device_auth_allow_legacy_token"] = True
    return overrides


async def seed_demo_data(db: Database, actor: AuditActor = DEMO_ACTOR) -> DemoData:
    """Create whatever demo object is missing, in one transaction, and describe them all."""
    created: list[str] = []
    async with db.transaction() as conn:
        await conn.execute(QUERIES["demo_seed_lock"])
        row = await conn.fetchrow(QUERIES["merchant_by_nmid"], DEMO_MERCHANT["nmid"])
        if row is None:
            merchant = await merchants.create_merchant(conn, actor, **DEMO_MERCHANT)
            created.append("merchant")
        else:
            merchant = from_row(Merchant, row)
        if merchant.status == "pending_review":
            merchant = await merchants.approve_merchant(conn, actor, merchant.id)
            created.append("merchant approval")

        row = await conn.fetchrow(QUERIES["outlet_by_merchant_and_name"], merchant.id, DEMO_OUTLET["name"])
        if row is None:
            outlet = await merchants.create_outlet(conn, actor, merchant.id, **DEMO_OUTLET)
            created.append("outlet")
        else:
            outlet = merchants.outlet_of(row)

        row = await conn.fetchrow(QUERIES["terminal_by_outlet_and_name"], outlet.id, DEMO_TERMINAL["name"])
        if row is None:
            terminal = await merchants.create_terminal(conn, actor, outlet.id, **DEMO_TERMINAL)
            created.append("terminal")
        else:
            terminal = merchants.terminal_of(row)

        logins = []
        for kind, email, name, role, password in DEMO_USERS:
            if await users.find_user(conn, kind, email) is None:
                await users.create_user(
                    conn,
                    actor,
                    kind,
                    email=email,
                    name=name,
                    role=role,
                    password=password,
                    merchant_id=merchant.id if kind == "merchant" else None,
                )
                created.append(f"{kind} user {email}")
            logins.append(DemoLogin(kind=kind, email=email, role=role, password=password, login=f"POST /{kind}/login"))
    return DemoData(created=created, merchant=merchant, outlet=outlet, terminal=terminal, logins=logins)


def banner_lines(data: DemoData) -> list[str]:
    lines = [
        f"{login.kind:<9} {login.role:<8} {login.email:<26} {login.password:<22} ({login.login})"
        for login in data.logins
    ]
    lines.append(f"merchant  {data.merchant.code}  {data.merchant.id}  {data.merchant.name} ({data.merchant.status})")
    lines.append(f"terminal  {data.terminal.terminal_code}  {data.terminal.id}  {data.terminal.name}")
    return lines


async def seed_demo(platform: PlatformContext) -> list[str]:
    settings = platform.settings
    data = await seed_demo_data(platform.db)
    legacy = (
        "ON for the demo; DEVICE_AUTH_ALLOW_LEGACY_TOKEN=false turns it off"
        if settings.device_auth_allow_legacy_token
        else "OFF, DEVICE_AUTH_ALLOW_LEGACY_TOKEN=false"
    )
    return [
        f"ADMIN_TOKEN                 {settings.admin_token}   (Authorization: Bearer ...)",
        f"DEVICE_TOKEN                {settings.device_token}   (legacy, shared by every device: {legacy})",
        f"INTEGRATION_WEBHOOK_SECRET  {settings.integration_webhook_secret}",
        *banner_lines(data),
        *await seed_demo_device(platform, data.terminal.id),
    ]
