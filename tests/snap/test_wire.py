"""core/snap/wire.py against vectors computed here with hashlib/hmac, ``cryptography`` and ``openssl``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from qris_soundbox.core.snap import wire

TS = "2026-12-07T10:55:00+07:00"
PATH = "/v1.0/qr/qr-mpm-notify"
TOKEN = "tok_abc"
SECRET = "client-secret-ü"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# Bodies as senders put them on the wire: JSON.stringify-like (raw non-ASCII), json.dumps
# (\u escapes, escaped slashes), pretty-printed, keys in an unusual order, strings with spaces.
BODIES = [
    '{"originalReferenceNo":"R1","amount":{"value":"25000.00","currency":"IDR"},"additionalInfo":{"merchantName":"Warung Bu Ñoño"}}',
    '{"additionalInfo": {"merchantName": "Warung Bu \\u00d1o\\u00f1o", "url": "https:\\/\\/x.id\\/a"}, "originalReferenceNo": "R1"}',
    '{\n  "z": "a  b\\t c",\n\t"a": [1, 2,\r\n 3],  "q": "say \\"hi\\" ",\n  "e": ""\n}\n',
    '{"latestTransactionStatus":"00","amount":{"currency":"IDR","value":"25000.00"}}',
]


def _independent_minify(body: str) -> bytes:
    """A character walk written separately from the regex under test: drop whitespace outside strings."""
    out: list[str] = []
    in_string = escaped = False
    for char in body:
        if in_string:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
            out.append(char)
        elif char not in " \t\r\n":
            out.append(char)
    return "".join(out).encode()


@pytest.mark.parametrize("body", BODIES)
def test_minify_keeps_strings_order_and_escapes(body: str) -> None:
    minified = wire.minify_as_sent(body.encode())
    assert minified == _independent_minify(body)
    # The same JSON value, and nothing re-serialised: the key order of the original survives.
    assert json.loads(minified) == json.loads(body)
    assert list(json.loads(minified)) == list(json.loads(body))


def test_minify_keeps_non_ascii_and_escaped_slash_bytes() -> None:
    raw = '{"n": "Ñoño", "u": "a\\/b"}'.encode()
    assert wire.minify_as_sent(raw) == '{"n":"Ñoño","u":"a\\/b"}'.encode()


def test_minify_js_stringify_is_identity() -> None:
    body = {"b": "Kopi  Ñ / é", "a": {"value": "1.00"}}
    sent = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    assert wire.minify_as_sent(sent) == sent


@pytest.mark.parametrize("body", BODIES)
def test_symmetric_signature_matches_hmac_sha512(body: str) -> None:
    digest = hashlib.sha256(_independent_minify(body)).hexdigest()
    expected_message = f"POST:{PATH}:{TOKEN}:{digest}:{TS}".encode()
    expected = base64.b64encode(hmac.new(SECRET.encode(), expected_message, hashlib.sha512).digest()).decode()
    message = wire.symmetric_string_to_sign("post", PATH, TOKEN, body.encode(), TS)
    assert message == expected_message
    assert wire.hmac_sign(SECRET, message) == expected
    assert wire.hmac_verify(SECRET, message, expected)


def test_symmetric_refuses_changes() -> None:
    body = BODIES[0].encode()
    signature = base64.b64encode(
        hmac.new(
            SECRET.encode(),
            f"POST:{PATH}:{TOKEN}:{hashlib.sha256(body).hexdigest()}:{TS}".encode(),
            hashlib.sha512,
        ).digest()
    ).decode()
    assert wire.hmac_verify(SECRET, wire.symmetric_string_to_sign("POST", PATH, TOKEN, body, TS), signature)
    changed = body.replace(b"25000.00", b"25001.00")
    for message in (
        wire.symmetric_string_to_sign("POST", PATH, TOKEN, changed, TS),
        wire.symmetric_string_to_sign("POST", "/v1.0/qr/qr-mpm-query", TOKEN, body, TS),
        wire.symmetric_string_to_sign("POST", PATH, "other", body, TS),
        wire.symmetric_string_to_sign("POST", PATH, TOKEN, body, "2026-12-07T10:55:01+07:00"),
    ):
        assert not wire.hmac_verify(SECRET, message, signature)
    assert not wire.hmac_verify("other-secret", wire.symmetric_string_to_sign("POST", PATH, TOKEN, body, TS), signature)
    assert not wire.hmac_verify(SECRET, b"x", "not base64 !!")
    assert not wire.hmac_verify(SECRET, b"x", "")


@pytest.mark.parametrize("body", BODIES)
def test_asymmetric_signature_is_sha256withrsa(key: rsa.RSAPrivateKey, body: str) -> None:
    digest = hashlib.sha256(_independent_minify(body)).hexdigest()
    message = f"POST:{PATH}:{digest}:{TS}".encode()
    assert wire.asymmetric_string_to_sign("POST", PATH, body.encode(), TS) == message
    independent = base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()
    public = wire.load_public_key(wire.public_key_pem(key))
    assert wire.rsa_verify(public, message, independent)
    # PKCS#1 v1.5 is deterministic: the code under test signs the same bytes.
    assert wire.rsa_sign(key, message) == independent
    assert not wire.rsa_verify(public, message + b"x", independent)


def test_token_signature_verified_with_openssl(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    """The token request's ``client_key|timestamp`` signed by ``openssl dgst -sha256 -sign`` verifies."""
    pem = tmp_path / "key.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    message = wire.token_string_to_sign("ACQ-KEY", TS)
    assert message == b"ACQ-KEY|" + TS.encode()
    signed = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", str(pem)], input=message, capture_output=True, check=True
    ).stdout
    public = wire.load_public_key(wire.public_key_pem(key))
    assert wire.rsa_verify(public, message, base64.b64encode(signed).decode())
    assert not wire.rsa_verify(public, wire.token_string_to_sign("OTHER", TS), base64.b64encode(signed).decode())
    # And the platform's signature verifies in openssl.
    (tmp_path / "pub.pem").write_text(wire.public_key_pem(key))
    (tmp_path / "sig").write_bytes(base64.b64decode(wire.rsa_sign(key, message)))
    (tmp_path / "msg").write_bytes(message)
    checked = subprocess.run(
        [
            "openssl",
            "dgst",
            "-sha256",
            "-verify",
            str(tmp_path / "pub.pem"),
            "-signature",
            str(tmp_path / "sig"),
            str(tmp_path / "msg"),
        ],
        capture_output=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_keys_refuse_garbage_and_non_rsa() -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    with pytest.raises(ValueError):
        wire.load_public_key("not a pem")
    with pytest.raises(ValueError):
        wire.load_private_key("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    ed = ed25519.Ed25519PrivateKey.generate()
    ed_pub = ed.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ValueError, match="not RSA"):
        wire.load_public_key(ed_pub.decode())
