"""Helpers for the merchants tests: users with a given role, logins, merchants in a given state."""

from __future__ import annotations

import pytest

from tests.actors import PASSWORD, Client, bearer, create_user, logged_in, login, unique
from tests.onboarding import new_merchant, new_outlet, new_terminal
from tests.support import RunningPlatform

__all__ = [
    "PASSWORD",
    "Client",
    "bearer",
    "create_user",
    "logged_in",
    "login",
    "new_merchant",
    "new_outlet",
    "new_terminal",
    "unique",
]


async def audit_rows(running: RunningPlatform, **filters) -> list[dict]:
    response = await running.http.get(
        "/admin/audit-logs", params=filters | {"limit": 200}, headers=running.admin_headers
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


@pytest.fixture(scope="module")
async def active_merchant(running: RunningPlatform) -> dict:
    return await new_merchant(running, approve=True)
