"""Private keys kept as files outside the database, created on first start when missing."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def read_or_create(path: Path, generate: Callable[[], str]) -> str:
    """The file's text; when it does not exist, ``generate()``'s PEM written there owner-only first."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = generate()
        # O_EXCL: two processes starting together keep one key, the loser reads the winner's.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text()
        with os.fdopen(fd, "w") as handle:
            handle.write(pem)
        return pem
    return path.read_text()
