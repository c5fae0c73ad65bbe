"""docs/partners.md's worked example: openssl gives the documented signature, and the platform accepts it."""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path

from qris_soundbox.core.snap import wire

DOC = (Path(__file__).parents[2] / "docs" / "partners.md").read_text()


def test_the_documented_signature_is_what_openssl_computes_and_what_the_platform_verifies() -> None:
    body = re.search(r"^BODY='(.*)'$", DOC, re.M)[1].encode()  # type: ignore[index]
    secret, token, timestamp = (
        "Zq9o8rW2v1xExampleSecret_4kT7uN0pL3mA",
        "gDxq3Yk8Jb2xExampleToken_9sLq0wP4m",
        "2026-12-07T10:55:00+07:00",
    )
    for value in (secret, token, timestamp):
        assert value in DOC
    digest = (
        subprocess.run(["openssl", "dgst", "-sha256", "-r"], input=body, capture_output=True, check=True)
        .stdout.split()[0]
        .decode()
    )
    assert f"# {digest}" in DOC
    message = f"POST:/v1.0/qr/qr-mpm-generate:{token}:{digest}:{timestamp}".encode()
    raw = subprocess.run(
        ["openssl", "dgst", "-sha512", "-hmac", secret, "-binary"], input=message, capture_output=True, check=True
    ).stdout
    signature = base64.b64encode(raw).decode()
    assert f"# {signature}" in DOC
    assert wire.hmac_verify(
        secret, wire.symmetric_string_to_sign("POST", "/v1.0/qr/qr-mpm-generate", token, body, timestamp), signature
    )
