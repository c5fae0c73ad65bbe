"""Users as the tests drive them: created with a role, logged in through the real API."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

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


async def create_user(
    running: RunningPlatform, kind: str, role: str, merchant_id: str | None = None, password: str = PASSWORD
) -> tuple[str, str]:
    email = f"{unique(role)}@{kind}.test"
    async with running.platform.db.transaction() as conn:
        user = await users.create_user(
            conn,
            TEST_ACTOR,
            kind,
            email=email,
            name=f"{role} user",
            role=role,
            password=password,
            merchant_id=merchant_id,
        )
    return email, user.id


async def login(running: RunningPlatform, kind: str, email: str, password: str = PASSWORD):
    return await running.http.post(f"/{kind}/login", json={"email": email, "password": password})


async def logged_in(running: RunningPlatform, kind: str, role: str, merchant_id: str | None = None) -> Client:
    email, user_id = await create_user(running, kind, role, merchant_id)
    response = await login(running, kind, email)
    assert response.status_code == 200, response.text
    return Client(
        kind=kind, role=role, email=email, user_id=user_id, token=response.json()["token"], merchant_id=merchant_id
    )
