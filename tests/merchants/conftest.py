"""Helpers for the merchants tests: users with a given role, logins, merchants in a given state."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.users import service as users
from tests.support import RunningPlatform

PASSWORD = "correct horse battery staple"
TEST_ACTOR = AuditActor(actor_type="system", actor_id="tests")
_serial = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_serial)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Client:
    """A logged-in user as the tests drive them."""

    kind: str
    role: str
    email: str
    user_id: str
    token: str
    merchant_id: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


async def create_user(running: RunningPlatform, kind: str, role: str, merchant_id: str | None = None,
                      password: str = PASSWORD) -> tuple[str, str]:
    email = f"{unique(role)}@{kind}.test"
    async with running.platform.db.transaction() as conn:
        user = await users.create_user(running.platform.db, conn, TEST_ACTOR, kind, email=email, name=f"{role} user",
                                       role=role, password=password, merchant_id=merchant_id)
    return email, user.id


async def login(running: RunningPlatform, kind: str, email: str, password: str = PASSWORD):
    return await running.http.post(f"/{kind}/login", json={"email": email, "password": password})


async def logged_in(running: RunningPlatform, kind: str, role: str, merchant_id: str | None = None) -> Client:
    email, user_id = await create_user(running, kind, role, merchant_id)
    response = await login(running, kind, email)
    assert response.status_code == 200, response.text
    return Client(kind=kind, role=role, email=email, user_id=user_id, token=response.json()["token"],
                  merchant_id=merchant_id)


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
