"""Cursor paging shared by every list: newest first, cursor = last id returned.

Queries take ``$cursor`` (text or NULL) and ``$limit`` and are written as::

    WHERE ($1::text IS NULL OR id < $1) ... ORDER BY id DESC LIMIT $2

with ``$2 = limit + 1``: the extra row only tells whether there is a next page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from qris_soundbox.core.errors import ValidationFailed

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def page_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}", details={"field": "limit"})
    return limit


def split_page(rows: Sequence[T], limit: int, id_of=lambda row: row["id"]) -> tuple[list[T], str | None]:
    """Rows fetched with ``limit + 1`` → (the page, next cursor or None)."""
    items = list(rows[:limit])
    return items, (id_of(items[-1]) if len(rows) > limit and items else None)
