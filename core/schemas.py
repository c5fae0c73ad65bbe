"""The one base of the msgspec Structs that cross a boundary, and the shapes every domain shares.

``Struct`` is the base (``Value`` its immutable twin): responses, and what the platform reads from parties
that may add fields of their own (the acquirer's callback, device uplinks),
which it ignores. ``Body`` is a request body of the API: an unknown field is an
error there, not silently dropped.

msgspec applies ``kw_only`` per class, not by inheritance, so every Struct
says ``kw_only=True`` again.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")
S = TypeVar("S", bound=msgspec.Struct)


class Struct(msgspec.Struct, kw_only=True):
    """What crosses a boundary; unknown fields are ignored when it is read."""


class Body(Struct, forbid_unknown_fields=True):
    """A request body: unknown fields are an error, not silently dropped."""


class Value(msgspec.Struct, kw_only=True, frozen=True):
    """An immutable value that crosses a boundary (hashable, safe to share); unknown fields are ignored.

    A separate base because type checkers refuse a frozen Struct derived from a mutable one; like
    ``kw_only``, ``frozen`` is said again by each subclass."""


class Page(Struct, Generic[T], kw_only=True):
    """Every list answers ``{"items": [...], "next_cursor"}`` (SPEC §3); built by ``core.paging``."""

    items: list[T]
    next_cursor: str | None = None


def from_row(cls: type[S], row: Any, **extra: Any) -> S:
    """Build ``cls`` from a database row (or a dict), taking only the fields it declares
    that the row has; ``extra`` gives the others."""
    data = dict(row)
    return cls(**{name: data[name] for name in cls.__struct_fields__ if name not in extra and name in data}, **extra)
