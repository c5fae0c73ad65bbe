"""What SNAP signs, and signing and verifying it.

The body is verified *as sent*: the bytes minified by :func:`minify_as_sent`, never
the JSON re-serialised (a re-serialisation changes key order, escapes of
non-ASCII or ``/`` and number spellings, so a sender's signature would not
match). Every comparison of a signature is constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# A JSON string (with its escapes) or a run of JSON whitespace. Strings are
# matched first and kept whole, so whitespace inside them survives; a
# backslash always takes the next byte with it, so ``\"`` does not end one.
# Works on UTF-8 bytes: every byte of a multi-byte character is >= 0x80 and
# can be neither a quote nor a backslash nor whitespace.
_STRING_OR_SPACE = re.compile(rb'"(?:[^"\\]|\\.)*"|[ \t\r\n]+', re.DOTALL)


def minify_as_sent(body: bytes) -> bytes:
    """``body`` with JSON whitespace (space, tab, CR, LF) outside strings removed; nothing else changes."""
    return _STRING_OR_SPACE.sub(lambda m: m[0] if m[0][:1] == b'"' else b"", body)


def body_hash(body: bytes) -> str:
    """``lowerhex(SHA256(minified body))``, the body's part of every string to sign."""
    return hashlib.sha256(minify_as_sent(body)).hexdigest()


def symmetric_string_to_sign(method: str, path: str, access_token: str, body: bytes, timestamp: str) -> bytes:
    """``METHOD:path:accessToken:lowerhex(SHA256(minified body)):X-TIMESTAMP`` (token without ``Bearer``)."""
    return f"{method.upper()}:{path}:{access_token}:{body_hash(body)}:{timestamp}".encode()


def asymmetric_string_to_sign(method: str, path: str, body: bytes, timestamp: str) -> bytes:
    """``METHOD:path:lowerhex(SHA256(minified body)):X-TIMESTAMP``."""
    return f"{method.upper()}:{path}:{body_hash(body)}:{timestamp}".encode()


def token_string_to_sign(client_key: str, timestamp: str) -> bytes:
    """The B2B token request's ``client_key|X-TIMESTAMP``."""
    return f"{client_key}|{timestamp}".encode()


def hmac_sign(secret: str, message: bytes) -> str:
    """Base64(HMAC-SHA512(secret, message))."""
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha512).digest()).decode()


def hmac_verify(secret: str, message: bytes, signature: str) -> bool:
    """Whether ``signature`` is Base64(HMAC-SHA512(secret, message)); compared on the decoded bytes
    in constant time, so Base64 spelled with or without padding newlines compares the same."""
    given = _b64(signature)
    expected = hmac.new(secret.encode(), message, hashlib.sha512).digest()
    return hmac.compare_digest(expected, given if given is not None else b"")


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM (PKCS#1 or PKCS#8, unencrypted); ``ValueError`` otherwise."""
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("SNAP signs with RSA; this private key is not RSA")
    return key


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    """An RSA public key from PEM (SubjectPublicKeyInfo or PKCS#1); ``ValueError`` otherwise."""
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"not a PEM public key: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("SNAP verifies with RSA; this public key is not RSA")
    return key


def rsa_sign(private_key: rsa.RSAPrivateKey, message: bytes) -> str:
    """Base64(SHA256withRSA) — RSASSA-PKCS1-v1_5 over SHA-256, Java's ``SHA256withRSA``."""
    return base64.b64encode(private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verify(public_key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    """Whether ``signature`` is a valid Base64 SHA256withRSA signature of ``message``."""
    given = _b64(signature)
    if not given:
        return False
    try:
        public_key.verify(given, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def public_key_pem(private_key: rsa.RSAPrivateKey) -> str:
    """The SubjectPublicKeyInfo PEM of ``private_key``, what the other side is given."""
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def generate_private_key_pem() -> str:
    """A new 2048-bit RSA key as unencrypted PKCS#8 PEM (the simulator's and a dev platform's own key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
