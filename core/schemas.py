"""The one base of the msgspec Structs that cross a boundary, and the shapes every domain shares.

``Struct`` is what the platform writes (responses, downlink payloads); ``Body``
is what it reads (request bodies, uplink payloads): the same base, and unknown
fields are an error rather than silently dropped. Responses stay lenient so a
query that returns one more column never fails a response.

msgspec applies ``kw_only`` per class, not by inheritance, so every Struct
says ``kw_only=True`` again.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")
S = TypeVar("S", bound=msgspec.Struct)


class Struct(msgspec.Struct, kw_only=True):
    """What the platform answers and sends."""


class Body(Struct, forbid_unknown_fields=True):
    """What the platform reads: unknown fields are an error, not silently dropped."""


class Page(Struct, Generic[T], kw_only=True):
    """Every list answers ``{"items": [...], "next_cursor"}`` (SPEC §3); built by ``core.paging``."""

    items: list[T]
    next_cursor: str | None = None


def from_row(cls: type[S], row: Any, **extra: Any) -> S:
    """Build ``cls`` from a database row (or a dict), taking only the fields it declares
    that the row has; ``extra`` gives the others."""
    data = dict(row)
    return cls(**{name: data[name] for name in cls.__struct_fields__ if name not in extra and name in data}, **extra)
