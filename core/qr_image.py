"""A QRIS payload as a QR image a phone banking app scans: SVG for a page, PNG for a printed sticker.

The payload is the EMVCo text the platform already builds and checks (``core/qris.py``);
this module only draws it (``segno``, pure Python). Error correction level M, as
printed QRIS stickers use, with the four-module quiet zone the standard asks for.
"""

from __future__ import annotations

import io
from typing import Literal

import segno

from qris_soundbox.core.errors import NotFound

QrFormat = Literal["svg", "png"]
MEDIA_TYPES: dict[str, str] = {"svg": "image/svg+xml", "png": "image/png"}
# Pixels per module: the SVG scales in the page; the PNG is large enough to print.
_SCALE = {"svg": 4, "png": 10}


class QrPayloadMissing(NotFound):
    """The terminal has no static QRIS, or the transaction is no dynamic QR."""

    code = "qr_payload_missing"


def qr_image(payload: str | None, fmt: QrFormat, what: str) -> bytes:
    """``payload`` drawn as a QR image in ``fmt``; ``what`` names the object for the error."""
    if not payload:
        raise QrPayloadMissing(f"{what} has no QRIS payload to draw")
    out = io.BytesIO()
    segno.make(payload, error="m", micro=False, boost_error=False).save(out, kind=fmt, scale=_SCALE[fmt], border=4)
    return out.getvalue()
