"""The operator console (SPEC §11): ``GET /ui`` (to the login page), ``GET /ui/pages`` (the catalogue),
``GET /ui/<page>`` and its assets.

The console is a client of the public HTTP API: these routes only serve one
HTML shell per page, the stylesheet and the script (``control_plane/console_assets/``,
package data). The script logs in through ``POST /admin/login`` or
``POST /merchant/login`` and calls the same routes as any other client, so no
business rule lives here. Every asset is served by the platform (no CDN, no
web font), and the Content-Security-Policy keeps every request on this origin.
"""

from __future__ import annotations

from functools import cache
from html import escape
from importlib.resources import files

import msgspec
from litestar import Response, get
from litestar.params import FromPath
from litestar.response import Redirect

from qris_soundbox.core.auth import ADMIN_PERMISSIONS, MERCHANT_PERMISSIONS

# slug -> (audience, Indonesian title, English title); the order is the catalogue's.
PAGES: dict[str, tuple[str, str, str]] = {
    "admin-login": ("admin", "Masuk admin", "Admin login"),
    "admin-dashboard-overview": ("admin", "Ringkasan dasbor", "Dashboard overview"),
    "admin-search": ("admin", "Cari", "Search"),
    "admin-merchants": ("admin", "Merchant", "Merchants"),
    "admin-merchant-detail": ("admin", "Detail merchant", "Merchant detail"),
    "admin-device-registry": ("admin", "Registri perangkat", "Device registry"),
    "admin-device-detail": ("admin", "Detail teknis perangkat", "Device technical detail"),
    "admin-transactions": ("admin", "Transaksi", "Transactions"),
    "admin-transaction-detail": ("admin", "Detail transaksi", "Transaction detail"),
    "admin-settlement-batches": ("admin", "Batch settlement", "Settlement batches"),
    "admin-refunds": ("admin", "Pengembalian dana", "Refunds"),
    "admin-settlement-batch-detail": ("admin", "Detail batch settlement", "Settlement batch detail"),
    "admin-reconciliation-management": ("admin", "Rekonsiliasi", "Reconciliation"),
    "admin-acquirer-reports": ("admin", "Laporan settlement acquirer", "Acquirer settlement reports"),
    "admin-acquirer-report-detail": ("admin", "Detail laporan acquirer", "Acquirer report detail"),
    "admin-terminal-poster": ("admin", "Poster QRIS", "QRIS poster"),
    "admin-system-audit-logs": ("admin", "Log audit sistem", "System audit logs"),
    "admin-observability": ("admin", "Observabilitas", "Observability"),
    "admin-partners": ("admin", "Partner", "Partners"),
    "admin-acquirers": ("admin", "Acquirer", "Acquirers"),
    "admin-users": ("admin", "Pengguna", "Users"),
    "merchant-login": ("merchant", "Masuk merchant", "Merchant login"),
    "merchant-today": ("merchant", "Hari ini", "Today"),
    "merchant-profile": ("merchant", "Profil merchant", "Merchant profile"),
    "merchant-settlement-summary": ("merchant", "Ringkasan settlement", "Settlement summary"),
    "merchant-settlement-batches": ("merchant", "Batch settlement saya", "My settlement batches"),
    "merchant-settlement-batch-detail": ("merchant", "Detail batch saya", "My batch detail"),
    "merchant-transactions": ("merchant", "Transaksi saya", "My transactions"),
    "merchant-terminal-poster": ("merchant", "Poster QRIS", "QRIS poster"),
}
AUDIENCES = {
    "admin": ("Admin, keuangan, operasional, teknisi", "Admin, finance, ops, technicians"),
    "merchant": ("Merchant", "Merchant"),
}

ASSETS = {"console.js": "text/javascript", "console.css": "text/css"}
# Same origin only: the console runs offline (a shop back office, a technician's laptop).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_OPT = {"public": True}


@cache
def _asset(name: str) -> str:
    return files("qris_soundbox.control_plane.console_assets").joinpath(name).read_text(encoding="utf-8")


def _html(body: str, status: int = 200) -> Response[str]:
    return Response(body, status_code=status, media_type="text/html", headers=SECURITY_HEADERS)


def _shell(page: str, title: str, title_en: str, content: str = "") -> str:
    return (
        _asset("shell.html")
        .replace("{{page}}", escape(page, quote=True))
        .replace("{{title}}", escape(title))
        .replace("{{title_en}}", escape(title_en, quote=True))
        .replace("{{version}}", _version())
        .replace("{{permissions}}", escape(_permissions(), quote=True))
        .replace("<!--content-->", content)
    )


@cache
def _permissions() -> str:
    # The role -> permission table of core/auth.py, so the pages hide what a role cannot do
    # from the one table the API enforces (the API refuses it anyway).
    table = {
        "admin": {role: sorted(permissions) for role, permissions in ADMIN_PERMISSIONS.items()},
        "merchant": {role: sorted(permissions) for role, permissions in MERCHANT_PERMISSIONS.items()},
    }
    return msgspec.json.encode(table).decode()


@cache
def _version() -> str:
    # Cache-busting for the assets: a new release serves a new URL.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qris-soundbox")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "dev"


def _catalogue() -> str:
    sections = []
    for audience, (label_id, label_en) in AUDIENCES.items():
        items = "".join(
            f'<li><a href="/ui/{slug}" data-en="{escape(title_en)}">{escape(title_id)}</a> '
            f'<span class="muted">/ui/{slug}</span></li>'
            for slug, (who, title_id, title_en) in PAGES.items()
            if who == audience
        )
        sections.append(
            f'<section class="card"><h2 data-en="{escape(label_en)}">{escape(label_id)}</h2><ul>{items}</ul></section>'
        )
    return _shell("catalogue", "Katalog halaman", "Page catalogue", "".join(sections))


def _not_found() -> str:
    return _shell(
        "not-found",
        "Halaman tidak ditemukan",
        "Page not found",
        '<div class="empty"><p data-en="This console page does not exist.">Halaman konsol ini tidak ada.</p>'
        '<p><a href="/ui/pages" data-en="See the page catalogue">Lihat katalog halaman</a></p></div>',
    )


@get("/ui", include_in_schema=False, opt=_OPT)
async def console_home() -> Redirect:
    # Someone typing the console's address wants to log in, not a list of routes.
    return Redirect("/ui/admin-login", status_code=302, headers=SECURITY_HEADERS)


@get("/ui/pages", include_in_schema=False, opt=_OPT)
async def catalogue() -> Response[str]:
    return _html(_catalogue())


# The path parameter is not called `page`: that name is the list routes' paging dependency.
@get("/ui/{slug:str}", include_in_schema=False, opt=_OPT)
async def console_page(slug: FromPath[str]) -> Response[str]:
    known = PAGES.get(slug)
    if known is None:
        return _html(_not_found(), status=404)
    return _html(_shell(slug, known[1], known[2]))


@get("/ui/assets/{name:str}", include_in_schema=False, opt=_OPT)
async def asset(name: FromPath[str]) -> Response[str]:
    media_type = ASSETS.get(name)
    if media_type is None:
        return _html(_not_found(), status=404)
    headers = SECURITY_HEADERS | {"Cache-Control": "public, max-age=3600"}
    return Response(_asset(name), media_type=media_type, headers=headers)


routes = [console_home, catalogue, console_page, asset]
