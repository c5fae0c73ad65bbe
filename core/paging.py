"""Paging and time windows: the rules every list follows, in one place.

Lists are newest first and the cursor is the last id of the previous page
(``core/ids.py``: ids sort by creation time). Queries take ``$cursor`` (text or
NULL) and ``$limit`` and are written as::

    WHERE ($1::text IS NULL OR id < $1) ... ORDER BY id DESC LIMIT $2

with ``$2 = page.fetch_limit`` (limit + 1): the extra row only tells whether
there is a next page. ``PageQuery.page`` turns the rows into the ``Page``.

The rules, each refused as 400 ``validation_error`` naming the field:

- ``limit``: 1 to ``MAX_LIMIT``; ``DEFAULT_LIMIT`` when absent;
- ``cursor``: an id as the API hands them out (``<prefix>_<ULID>``), in practice
  the ``next_cursor`` of the previous page;
- ``from`` / ``to``: a time with its zone (``Z`` or an offset): a time without
  one would be read in some unknown zone; ``from`` not after ``to``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import msgspec

from qris_soundbox.core.errors import ValidationFailed
from qris_soundbox.core.ids import ID_PATTERN
from qris_soundbox.core.schemas import Page, Value

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class PageQuery(Value, kw_only=True, frozen=True):
    """Which page of a list: ``limit`` rows older than ``cursor``. Built by ``page_query``."""

    cursor: str | None = None
    limit: int = DEFAULT_LIMIT

    @property
    def fetch_limit(self) -> int:
        return self.limit + 1

    def page(self, rows: Sequence[Any], convert: Callable[[Any], T]) -> Page[T]:
        """Rows fetched with ``fetch_limit`` → the page, with the next cursor when there are more."""
        items = rows[: self.limit]
        more = len(rows) > self.limit and len(items) > 0
        return Page(items=[convert(row) for row in items], next_cursor=items[-1]["id"] if more else None)


class TimeWindow(Value, kw_only=True, frozen=True):
    """A list's ``from`` / ``to`` filter; each list says which time it filters on. Built by ``time_window``."""

    from_: datetime | None = msgspec.field(default=None, name="from")
    to: datetime | None = None


def page_query(limit: int | None = None, cursor: str | None = None) -> PageQuery:
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}", details={"field": "limit"})
    if cursor is not None and not ID_PATTERN.fullmatch(cursor):
        raise ValidationFailed("cursor must be the next_cursor of a previous page", details={"field": "cursor"})
    return PageQuery(cursor=cursor, limit=DEFAULT_LIMIT if limit is None else limit)


def time_window(from_: datetime | None = None, to: datetime | None = None) -> TimeWindow:
    for name, value in (("from", from_), ("to", to)):
        if value is not None and value.tzinfo is None:
            raise ValidationFailed(
                f"{name} must carry a time zone (ISO-8601 with Z or an offset)", details={"field": name}
            )
    if from_ is not None and to is not None and from_ > to:
        raise ValidationFailed("from must not be after to", details={"field": "from"})
    return TimeWindow(from_=from_, to=to)


def contains_pattern(search: str | None) -> str | None:
    """An ILIKE pattern matching ``search`` anywhere, its own ``%``, ``_`` and ``\\`` taken literally
    (a search box's text is never a pattern). The trigram indexes of sql/migrations/120 answer it."""
    if search is None:
        return None
    return "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
