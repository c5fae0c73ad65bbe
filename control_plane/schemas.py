"""msgspec Structs shared by all control-plane modules."""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

T = TypeVar("T")


class Base(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Request bodies: unknown fields are an error, not silently dropped."""


class Health(msgspec.Struct, kw_only=True):
    status: str


class Page(msgspec.Struct, Generic[T], kw_only=True):
    """Every list answers ``{"items": [...], "next_cursor"}`` (SPEC §3)."""

    items: list[T]
    next_cursor: str | None = None
