"""``GET /metrics``: Prometheus text exposition of this process (``core/metrics.py``).

Open by default, as exporters usually are (keep the port off the public
internet, or scrape through the reverse proxy's allow list); with
``METRICS_TOKEN`` set, a scrape must send ``Authorization: Bearer <token>``
(Prometheus: ``authorization: {credentials: ...}`` in the scrape config).
"""

from __future__ import annotations

import asyncio
import hmac

from litestar import Request, Response, get
from litestar.types import HTTPScope
from prometheus_client import CONTENT_TYPE_LATEST

from qris_soundbox.control_plane.auth import bearer_token
from qris_soundbox.control_plane.deps import Platform
from qris_soundbox.core.errors import Unauthorized

# Litestar appends "; charset=utf-8" to every text/* type itself: named once, not twice.
PROMETHEUS_TEXT = "; ".join(p.strip() for p in CONTENT_TYPE_LATEST.split(";") if not p.strip().startswith("charset="))

# Label values for requests no route matched, and methods outside HTTP's own: bounded label sets.
UNMATCHED_ROUTE = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_request(scope: HTTPScope, status: int, duration_s: float) -> None:
    """Count one answered request by its route template (never the raw path: ids would explode the series)."""
    method = scope["method"] if scope["method"] in _METHODS else "OTHER"
    route = scope.get("path_template") or UNMATCHED_ROUTE
    scope["app"].state["platform"].metrics.observe_http(route, method, status, duration_s)


@get(
    "/metrics",
    summary="Prometheus metrics of this process",
    description="Prometheus text format. Open unless METRICS_TOKEN is set; then a bearer token equal to it.",
    tags=["health"],
    opt={"public": True},
    media_type=PROMETHEUS_TEXT,
)
async def metrics(request: Request, platform: Platform) -> Response[bytes]:
    required = platform.settings.metrics_token
    if required:
        token = bearer_token(request)
        if token is None or not hmac.compare_digest(token.encode(), required.encode()):
            raise Unauthorized("GET /metrics needs Authorization: Bearer <METRICS_TOKEN>")
    metrics = platform.metrics
    await metrics.refresh_database(platform)
    metrics.snapshot_state()
    return Response(await asyncio.to_thread(metrics.render), media_type=PROMETHEUS_TEXT)


routes = [metrics]
