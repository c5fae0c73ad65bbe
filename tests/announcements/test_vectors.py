"""docs/announcement-signing.md's test vectors: what Ed25519 gives for them (``cryptography`` directly),
that the platform signs them byte for byte, and that the C reference verifier (libsodium) agrees with
Python on every one of them."""

from __future__ import annotations

import base64
import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from qris_soundbox.core.announcement_signing import load_announcement_signer
from qris_soundbox.core.config import load_settings
from tests.announcements.signing_helpers import kid, raw

DOCS = Path(__file__).resolve().parents[2] / "docs"
VECTORS = json.loads((DOCS / "announcement-signing" / "vectors.json").read_text())
VERIFIER = DOCS / "announcement-signing" / "verify.c"
ORDER = ("device_id", "message_id", "kind", "amount", "currency", "transaction_id", "time", "counter")


def key_of(kid_: str) -> Ed25519PrivateKey:
    seed = next(k["seed_hex"] for k in VECTORS["keys"] if k["kid"] == kid_)
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed))


def message(fields: dict[str, Any]) -> bytes:
    return b"\n".join([VECTORS["domain"].encode(), *(str(fields[name]).encode() for name in ORDER)])


def python_verdict(public_key_b64: str, sig_b64: str, fields: dict[str, Any]) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64, validate=True))
        public.verify(base64.b64decode(sig_b64, validate=True), message(fields))
    except (InvalidSignature, ValueError):
        return False
    return True


def test_the_documented_keys_and_signatures_are_what_ed25519_gives() -> None:
    for key in VECTORS["keys"]:
        public = key_of(key["kid"]).public_key()
        assert key["public_key"] == base64.b64encode(raw(public)).decode() and key["kid"] == kid(public)
    for vector in VECTORS["vectors"]:
        key = key_of(vector["kid"])
        if vector["valid"]:
            assert bytes.fromhex(vector["bytes_hex"]) == message(vector["fields"]), vector["name"]
            assert base64.b64encode(key.sign(message(vector["fields"]))).decode() == vector["sig"], vector["name"]
        public_b64 = base64.b64encode(raw(key.public_key())).decode()
        assert python_verdict(public_b64, vector["sig"], vector["fields"]) is vector["valid"], vector["name"]


def test_the_platform_signs_the_vectors_byte_for_byte() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for vector in (v for v in VECTORS["vectors"] if v["valid"]):
            path = Path(tmp) / f"{vector['kid']}.pem"
            path.write_bytes(
                key_of(vector["kid"]).private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
            signer = load_announcement_signer(load_settings({}, announcement_signing_key_file=str(path)), Path(tmp))
            fields = vector["fields"]
            payload = {
                "message_id": fields["message_id"],
                "type": "payment",
                "transaction_id": fields["transaction_id"],
                "amount": fields["amount"],
                "currency": fields["currency"],
                "paid_at": fields["time"],
            }
            signed = signer.sign_downlink(fields["kind"], fields["device_id"], payload, fields["counter"])
            assert (signed["sig"], signed["kid"]) == (vector["sig"], vector["kid"]), vector["name"]
            assert (signed["device_id"], signed["counter"]) == (fields["device_id"], fields["counter"])


@pytest.fixture(scope="module")
def c_verifier() -> Iterator[Path]:
    """docs/announcement-signing/verify.c compiled against libsodium, warnings as errors."""
    with tempfile.TemporaryDirectory() as tmp:
        binary = Path(tmp) / "verify"
        subprocess.run(
            ["cc", "-Wall", "-Wextra", "-Werror", "-o", str(binary), str(VERIFIER), "-lsodium"],
            check=True,
            capture_output=True,
        )
        yield binary


def c_verdict(binary: Path, public_key_b64: str, sig_b64: str, fields: dict[str, Any]) -> bool:
    done = subprocess.run(
        [str(binary), public_key_b64, sig_b64, *(str(fields[name]) for name in ORDER)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode in (0, 1), done.stderr
    assert done.stdout.strip() == ("valid" if done.returncode == 0 else "invalid")
    return done.returncode == 0


def _cases() -> Iterator[tuple[str, str, str, dict[str, Any], bool]]:
    """Every vector against every published key (valid only under its own), and broken encodings."""
    for vector in VECTORS["vectors"]:
        for key in VECTORS["keys"]:
            expected = vector["valid"] and key["kid"] == vector["kid"]
            yield f"{vector['name']} / key {key['kid']}", key["public_key"], vector["sig"], vector["fields"], expected
    first, key = VECTORS["vectors"][0], VECTORS["keys"][0]["public_key"]
    yield "a signature cut short", key, first["sig"][:40], first["fields"], False
    yield "a signature that is not Base64", key, "!" * 88, first["fields"], False
    yield "a public key cut short", key[:20], first["sig"], first["fields"], False
    yield "a field with a line feed", key, first["sig"], first["fields"] | {"currency": "IDR\n"}, False


def test_the_c_reference_verifier_agrees_with_python_on_every_vector(c_verifier: Path) -> None:
    for name, public_key, sig, fields, expected in _cases():
        python, c = python_verdict(public_key, sig, fields), c_verdict(c_verifier, public_key, sig, fields)
        assert c is python is expected, f"{name}: C says {c}, Python {python}, the vectors {expected}"
