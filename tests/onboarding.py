"""Merchants, outlets and terminals for the tests, made as an operator makes them: over the
admin API (``POST /admin/merchants``, approve, outlets, terminals), with the tools' own client
(``tools/api.py``) on the test's HTTP connection. SQL never makes them."""

from __future__ import annotations

from typing import Any

from qris_soundbox.tools.api import AdminApi
from tests.actors import unique
from tests.support import ADMIN_TOKEN, RunningPlatform


def admin_api(running: RunningPlatform) -> AdminApi:
    """The admin API of ``running`` on its test client (nothing to close)."""
    return AdminApi(running.http_url, ADMIN_TOKEN, http=running.http)


async def onboarded_terminal(
    running: RunningPlatform,
    *,
    approve: bool = True,
    qris_ready: bool = False,
    fee_bps: int | None = None,
    mdr_category: str | None = None,
    merchant_name: str = "Warung Test",
) -> dict[str, str]:
    """A fresh merchant (approved unless ``approve`` is false, with an NMID and a postal code only if
    ``qris_ready``), its outlet and its terminal: their ``merchant_id``, ``outlet_id``, ``terminal_id``."""
    made = await admin_api(running).onboard_terminal(
        merchant_name, approve=approve, qris_ready=qris_ready, fee_bps=fee_bps, mdr_category=mdr_category
    )
    return {
        "merchant_id": made["merchant"]["id"],
        "outlet_id": made["outlet"]["id"],
        "terminal_id": made["terminal"]["id"],
    }


async def new_merchant(running: RunningPlatform, *, approve: bool = False, **fields: Any) -> dict[str, Any]:
    """One merchant with these fields (a unique name in Bandung unless given), approved if asked."""
    api = admin_api(running)
    merchant = await api.create_merchant({"name": unique("Toko "), "city": "Bandung"} | fields)
    return await api.approve_merchant(merchant["id"]) if approve else merchant


async def new_outlet(running: RunningPlatform, merchant_id: str, **fields: Any) -> dict[str, Any]:
    return await admin_api(running).create_outlet(merchant_id, {"name": unique("Outlet ")} | fields)


async def new_terminal(running: RunningPlatform, outlet_id: str, **fields: Any) -> dict[str, Any]:
    return await admin_api(running).create_terminal(outlet_id, {"name": unique("Kasir ")} | fields)
