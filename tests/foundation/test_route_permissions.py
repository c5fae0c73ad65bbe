"""Every route declares how it is reached: a permission, or public on purpose."""

from __future__ import annotations

from litestar.handlers import HTTPRouteHandler

from qris_soundbox.core.auth import ADMIN_PERMISSIONS, MERCHANT_PERMISSIONS
from tests.support import RunningPlatform

KNOWN_PERMISSIONS = set().union(*ADMIN_PERMISSIONS.values(), *MERCHANT_PERMISSIONS.values())


def all_handlers(app) -> list[tuple[str, HTTPRouteHandler]]:
    return [
        (route.path, handler)
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        if isinstance(handler, HTTPRouteHandler) and not route.path.startswith("/schema")
    ]


async def test_every_route_declares_a_known_permission_or_is_public(running: RunningPlatform) -> None:
    from qris_soundbox.control_plane.app import create_app

    app = create_app(running.platform)
    undeclared = []
    for path, handler in all_handlers(app):
        permission = handler.opt.get("permission")
        if handler.opt.get("public") or handler.opt.get("device") is True or handler.http_methods == {"OPTIONS"}:
            continue
        if permission not in KNOWN_PERMISSIONS:
            undeclared.append((path, sorted(handler.http_methods), permission))
    assert undeclared == []


async def test_route_without_declaration_is_refused(running: RunningPlatform) -> None:
    from litestar import get

    from qris_soundbox.control_plane.app import create_app
    from tests.support import serve_app

    @get("/_test/undeclared", sync_to_thread=False)
    def undeclared() -> dict:
        return {"leaked": True}

    app = create_app(running.platform)
    app.register(undeclared)
    async with serve_app(app) as client:
        response = await client.get("/_test/undeclared", headers=running.admin_headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
