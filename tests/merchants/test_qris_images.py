"""``GET /admin/terminals/{id}/qris.svg|.png`` and the merchant's own: the terminal's static QRIS
as a QR image that decodes back to the exact payload, with the same permission model as the
terminal itself (a merchant's other terminals are 404)."""

from __future__ import annotations

from tests.actors import logged_in
from tests.onboarding import new_terminal, onboarded_terminal
from tests.qr_images import STATIC_QRIS, qr_text
from tests.support import RunningPlatform


async def terminal_with_qris(running: RunningPlatform) -> dict[str, str]:
    ids = await onboarded_terminal(running, merchant_name="Toko Gambar")
    terminal = await new_terminal(running, ids["outlet_id"], static_qris=STATIC_QRIS)
    return ids | {"qris_terminal_id": terminal["id"]}


async def test_the_png_decodes_to_the_terminals_static_qris_and_downloads_as_a_file(running: RunningPlatform) -> None:
    ids = await terminal_with_qris(running)
    response = await running.http.get(
        f"/admin/terminals/{ids['qris_terminal_id']}/qris.png", headers=running.admin_headers
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert qr_text(response.content) == STATIC_QRIS


async def test_the_svg_is_an_inline_svg_document(running: RunningPlatform) -> None:
    ids = await terminal_with_qris(running)
    response = await running.http.get(
        f"/admin/terminals/{ids['qris_terminal_id']}/qris.svg", headers=running.admin_headers
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.headers["content-disposition"].startswith("inline;")
    assert b"<svg" in response.content[:200] and response.content.rstrip().endswith(b"</svg>")


async def test_a_terminal_without_static_qris_is_a_clear_404(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running)
    response = await running.http.get(f"/admin/terminals/{ids['terminal_id']}/qris.svg", headers=running.admin_headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "qr_payload_missing"
    unknown = await running.http.get(
        "/admin/terminals/ter_01ARZ3NDEKTSV4RRFFQ69G5FAV/qris.png", headers=running.admin_headers
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"


async def test_a_merchant_gets_its_own_terminals_image_and_not_another_merchants(running: RunningPlatform) -> None:
    mine = await terminal_with_qris(running)
    theirs = await terminal_with_qris(running)
    owner = await logged_in(running, "merchant", "viewer", mine["merchant_id"])
    own = await running.http.get(f"/merchant/terminals/{mine['qris_terminal_id']}/qris.png", headers=owner.headers)
    assert own.status_code == 200 and qr_text(own.content) == STATIC_QRIS
    other = await running.http.get(f"/merchant/terminals/{theirs['qris_terminal_id']}/qris.png", headers=owner.headers)
    assert other.status_code == 404
    as_admin = await running.http.get(
        f"/merchant/terminals/{mine['qris_terminal_id']}/qris.svg", headers=running.admin_headers
    )
    assert as_admin.status_code == 403
    anonymous = await running.http.get(f"/admin/terminals/{mine['qris_terminal_id']}/qris.svg")
    assert anonymous.status_code == 401
