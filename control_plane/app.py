"""The Litestar app factory: middleware, error envelope, OpenAPI and routes.

Each domain module exports ``routes``; adding a domain is one line in
``ROUTE_MODULES``.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin

from qris_soundbox.control_plane import (
    acquirers,
    audit,
    console,
    demo,
    device_config,
    devices,
    finance,
    health,
    merchant_portal,
    merchants,
    metrics,
    openapi,
    partners,
    payments,
    refunds,
    users,
)
from qris_soundbox.control_plane.auth import permission_guard
from qris_soundbox.control_plane.deps import LIST_DEPENDENCIES
from qris_soundbox.control_plane.errors import EXCEPTION_HANDLERS
from qris_soundbox.control_plane.middleware import request_body_rules, request_context_middleware, strict_body
from qris_soundbox.control_plane.policies import route_policies
from qris_soundbox.core.context import PlatformContext

ROUTE_MODULES = [
    health,
    metrics,
    users,
    merchants,
    audit,
    demo,
    devices,
    device_config,
    payments,
    refunds,
    acquirers,
    finance,
    merchant_portal,
    partners,
    console,
]
# What a process without the api role serves on METRICS_PORT: its figures for Prometheus, and its health.
METRICS_ONLY_MODULES = [health, metrics]


def create_app(platform: PlatformContext, modules: Sequence[ModuleType] = tuple(ROUTE_MODULES)) -> Litestar:
    def provide_platform() -> PlatformContext:
        return platform

    handlers = [handler for module in modules for handler in module.routes]
    openapi.document(handlers)  # security schemes and error answers, from each route's opt
    app = Litestar(
        route_handlers=handlers,
        guards=[permission_guard],
        # After the guard: every JSON body is decoded strictly into the route's type first.
        before_request=strict_body,
        # JSON bodies only, not nested too deep; then rate limits and Idempotency-Key,
        # for the routes that declare them in `opt`.
        middleware=[request_body_rules, route_policies],
        state=State({"platform": platform}),
        dependencies={"platform": Provide(provide_platform, sync_to_thread=False), **LIST_DEPENDENCIES},
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=platform.settings.json_body_limit,
        openapi_config=OpenAPIConfig(
            title="QRIS Soundbox Platform",
            version="0.1.0",
            # The documentation is public on purpose (see control_plane/auth.py).
            # Beside openapi.json: the devices' MQTT contract, asyncapi.json.
            openapi_router=Router(
                "/schema", route_handlers=[openapi.asyncapi], include_in_schema=False, opt={"public": True}
            ),
            render_plugins=[SwaggerRenderPlugin()],
            components=openapi.COMPONENTS,
        ),
        logging_config=None,
        debug=False,
    )
    # Wrapped around Litestar's whole handler, not registered as route middleware,
    # so that unknown routes and wrong methods (answered by the router) also get
    # the request id in their envelope and header.
    app.asgi_handler = request_context_middleware(app.asgi_handler)
    return app
