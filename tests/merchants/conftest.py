"""Helpers for the merchants tests: users with a given role, logins, merchants in a given state."""

from __future__ import annotations

import pytest

from tests.actors import PASSWORD, Client, bearer, create_user, logged_in, login, unique
from tests.support import RunningPlatform

__all__ = ["PASSWORD", "Client", "bearer", "create_user", "logged_in", "login", "unique"]


async def new_merchant(running: RunningPlatform, *, approve: bool = False, **fields) -> dict:
    body = {"name": unique("Toko "), "city": "Bandung"} | fields
    response = await running.http.post("/admin/merchants", json=body, headers=running.admin_headers)
    assert response.status_code == 201, response.text
    merchant = response.json()
    if approve:
        response = await running.http.post(f"/admin/merchants/{merchant['id']}/approve", headers=running.admin_headers)
        assert response.status_code == 200, response.text
        merchant = response.json()
    return merchant


async def new_outlet(running: RunningPlatform, merchant_id: str, **fields) -> dict:
    response = await running.http.post(f"/admin/merchants/{merchant_id}/outlets", json={"name": unique("Outlet ")} | fields,
                                       headers=running.admin_headers)
    assert response.status_code == 201, response.text
    return response.json()


async def new_terminal(running: RunningPlatform, outlet_id: str, **fields) -> dict:
    response = await running.http.post(f"/admin/outlets/{outlet_id}/terminals", json={"name": unique("Kasir ")} | fields,
                                       headers=running.admin_headers)
    assert response.status_code == 201, response.text
    return response.json()


async def audit_rows(running: RunningPlatform, **filters) -> list[dict]:
    response = await running.http.get("/admin/audit-logs", params=filters | {"limit": 200}, headers=running.admin_headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


@pytest.fixture(scope="module")
async def active_merchant(running: RunningPlatform) -> dict:
    return await new_merchant(running, approve=True)
