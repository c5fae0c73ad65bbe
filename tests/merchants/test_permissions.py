"""Every role against every route of the app: allowed exactly when the permission table says so.

Table-driven over ``create_app``'s routes, so a route added later (any domain)
is checked too; a route without a known permission fails here.
"""

from __future__ import annotations

import re
import secrets

import httpx
import pytest
from litestar.handlers import HTTPRouteHandler

from qris_soundbox.control_plane.app import create_app
from qris_soundbox.control_plane.auth import route_audience
from qris_soundbox.core.auth import ADMIN_PERMISSIONS, ADMIN_ROLES, MERCHANT_PERMISSIONS, MERCHANT_ROLES, Principal
from qris_soundbox.core.ids import new_id
from qris_soundbox.core.users.service import token_digest
from tests.merchants.conftest import bearer, create_user, new_merchant
from tests.support import RunningPlatform

KNOWN_PERMISSIONS = set().union(*ADMIN_PERMISSIONS.values(), *MERCHANT_PERMISSIONS.values())
_PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")
_PARAM_VALUE = {"int": "1", "uuid": "00000000-0000-0000-0000-000000000000"}


def protected_routes(app) -> list[tuple[str, str, HTTPRouteHandler]]:
    routes = []
    for route in app.routes:
        if route.path.startswith("/schema"):
            continue
        for handler in getattr(route, "route_handlers", []):
            if not isinstance(handler, HTTPRouteHandler) or handler.http_methods == {"OPTIONS"}:
                continue
            if handler.opt.get("public") or handler.opt.get("device"):
                continue  # no bearer token: public, or the device's own credentials (devices domain)
            path = _PARAM.sub(lambda m: _PARAM_VALUE.get(m.group(2) or "str", "zz_missing"), route.path)
            for method in sorted(handler.http_methods):
                routes.append((method, path, handler))
    return routes


async def mint_token(running: RunningPlatform, kind: str, user_id: str) -> str:
    """A login token without the argon2 work of a login (this test makes hundreds)."""
    token = ("qsa_" if kind == "admin" else "qsm_") + secrets.token_urlsafe(32)
    await running.platform.db.execute("insert_auth_token", new_id("tok"), token_digest(token), kind, user_id, 600, None)
    return token


@pytest.fixture(scope="module")
async def principals(running: RunningPlatform) -> list[tuple[Principal, str]]:
    """(principal, user id) for every role of both kinds."""
    merchant = await new_merchant(running, approve=True)
    result = []
    for role in ADMIN_ROLES:
        _, user_id = await create_user(running, "admin", role)
        result.append((Principal(kind="admin", id=user_id, role=role), user_id))
    for role in MERCHANT_ROLES:
        _, user_id = await create_user(running, "merchant", role, merchant["id"])
        result.append((Principal(kind="merchant", id=user_id, role=role, merchant_id=merchant["id"]), user_id))
    return result


def expected_allowed(principal: Principal, handler: HTTPRouteHandler) -> bool:
    audience = route_audience(handler)
    return (audience is None or audience == principal.kind) and principal.may(handler.opt["permission"])


async def test_every_protected_route_names_a_known_permission(running: RunningPlatform) -> None:
    routes = protected_routes(create_app(running.platform))
    assert len(routes) >= 20
    assert [(m, p) for m, p, h in routes if h.opt.get("permission") not in KNOWN_PERMISSIONS] == []


async def test_each_role_is_allowed_or_refused_per_the_permission_table(
    running: RunningPlatform, principals: list[tuple[Principal, str]]
) -> None:
    mismatches = []
    for method, path, handler in protected_routes(create_app(running.platform)):
        anonymous = await running.http.request(method, path, json={} if method in ("POST", "PATCH", "PUT") else None)
        if anonymous.status_code != 401:
            mismatches.append(("anonymous", method, path, anonymous.status_code))
        for principal, user_id in principals:
            # A fresh token per call: logout routes revoke the one they are called with.
            headers = bearer(await mint_token(running, principal.kind, user_id))
            try:
                response = await running.http.request(
                    method, path, headers=headers, json={} if method in ("POST", "PATCH", "PUT") else None
                )
            except httpx.HTTPError as exc:  # reported with the route, not as a bare traceback
                mismatches.append((f"{principal.kind}/{principal.role}", method, path, repr(exc)))
                continue
            allowed = expected_allowed(principal, handler)
            refused = response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
            if allowed == refused or response.status_code in (401, 500):
                mismatches.append(
                    (f"{principal.kind}/{principal.role}", method, path, response.status_code, response.text[:200])
                )
    assert mismatches == []


# The table itself, for this domain's routes: who may onboard, approve, read.
@pytest.mark.parametrize(
    ("role", "permission", "allowed"),
    [
        ("admin", "merchant:approve", True),
        ("ops", "merchant:approve", False),
        ("finance", "merchant:approve", False),
        ("ops", "merchant:write", True),
        ("support", "merchant:write", False),
        ("viewer", "merchant:write", False),
        ("finance", "merchant:write", False),
        ("ops", "terminal:write", True),
        ("viewer", "audit:read", True),
        ("ops", "seed:write", False),
        ("admin", "seed:write", True),
        ("admin", "user:write", True),
        ("finance", "user:write", False),
    ],
)
def test_admin_permission_table(role: str, permission: str, allowed: bool) -> None:
    assert Principal(kind="admin", id="u", role=role).may(permission) is allowed


def test_merchant_roles_only_read_their_own_things() -> None:
    writes = {p for perms in MERCHANT_PERMISSIONS.values() for p in perms if not p.endswith((":read", ":profile"))}
    assert writes <= {"settlement:export", "session:logout"}
