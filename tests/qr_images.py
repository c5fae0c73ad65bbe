"""A printed static QRIS for test terminals, and reading a QR image back into its text (zxing-cpp)."""

from __future__ import annotations

import io

import zxingcpp
from PIL import Image

from qris_soundbox.core.qris import QrisInput, build_static_qris

STATIC_QRIS = build_static_qris(
    QrisInput(
        merchant_name="TOKO KONSOL",
        merchant_city="BANDUNG",
        postal_code="40111",
        mcc="5411",
        nmid="ID1020099887766",
        acquirer_guid="ID.CO.BANKX.WWW",
        merchant_pan="936000081234500001",
        merchant_id="BX0900",
    )
)


def qr_text(png: bytes) -> str:
    """The text of the one QR code in a PNG image (a download, or a screenshot of the page)."""
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"))
    assert len(found) == 1
    return found[0].text
