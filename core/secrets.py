"""Secrets the platform must read back (acquirers' and partners' keys), encrypted at rest with
``SECRETS_ENCRYPTION_KEY`` (Fernet: AES-128-CBC + HMAC-SHA256).

The setting holds one or more keys, newest first: the first encrypts, every one
decrypts (``MultiFernet``), so a key is rotated by putting the new one in front,
restarting, running ``qris-soundbox acquirer rotate-secrets`` (re-encrypts
every acquirer's and partner's row under the first key) and then dropping the old key.
"""

from __future__ import annotations

import msgspec
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from qris_soundbox.core.config import Settings, secret_list
from qris_soundbox.core.errors import Unavailable


class SecretBox:
    """Seals a mapping of secret names to values into one token, and opens it again."""

    def __init__(self, keys: str | None) -> None:
        fernets = [Fernet(key.encode()) for key in secret_list(keys)]
        self._box = MultiFernet(fernets) if fernets else None

    @classmethod
    def of(cls, settings: Settings) -> SecretBox:
        return cls(settings.secrets_encryption_key)

    def _need(self) -> MultiFernet:
        if self._box is None:
            raise Unavailable("SECRETS_ENCRYPTION_KEY is not configured; stored secrets cannot be sealed or opened")
        return self._box

    def seal(self, secrets: dict[str, str]) -> bytes | None:
        return self._need().encrypt(msgspec.json.encode(secrets)) if secrets else None

    def open(self, sealed: bytes | None) -> dict[str, str]:
        if sealed is None:
            return {}
        try:
            return msgspec.json.decode(self._need().decrypt(bytes(sealed)), type=dict[str, str])
        except InvalidToken:
            raise Unavailable(
                "a stored secret was encrypted under a key SECRETS_ENCRYPTION_KEY no longer holds"
            ) from None

    def rotate(self, sealed: bytes) -> bytes:
        """``sealed`` re-encrypted under the first key."""
        return self._need().rotate(bytes(sealed))
