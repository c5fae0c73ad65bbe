"""Opaque, time-ordered ids: ``<prefix>_<ULID>``.

Sorting by id sorts by creation time, so a list's cursor is simply the last id
it returned (see ``core.paging``).
"""

from __future__ import annotations

import os
import re
import time
from datetime import datetime

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
ID_PATTERN = re.compile(rf"[a-z]{{2,8}}_[{_ALPHABET}]{{26}}")  # what new_id gives out, prefix and all


def new_id(prefix: str) -> str:
    return _encode(prefix, (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big"))


def id_floor(prefix: str, at: datetime) -> str:
    """The smallest id ``new_id(prefix)`` gives at ``at``: ``id >= id_floor(prefix, since)`` finds the rows
    created since then through the primary key, however many older rows the table holds."""
    return _encode(prefix, int(at.timestamp() * 1000) << 80)


def _encode(prefix: str, value: int) -> str:
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"
