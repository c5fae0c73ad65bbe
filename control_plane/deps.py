"""Dependency markers and the dependencies the route modules share.

Litestar 3 drops inferred dependencies, unmarked ``data`` and inferred query
parameters; routes spell them ``platform: Platform``, ``data: JSONBody[SomeStruct]``,
``status: FromQuery[str | None] = None``, ``merchant_id: FromPath[str]`` and, for a name that is a Python
keyword, ``fmt: Annotated[str | None, QueryParameter(name="format")] = None``.

Every list takes its paging as ``page: Paging`` (``limit``, ``cursor``) and, when it
filters on a time, ``window: Window`` (``from``, ``to``): declared once here, checked
once in ``core/paging.py``, so every list answers a bad value the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from qris_soundbox.core.context import PlatformContext
from qris_soundbox.core.paging import DEFAULT_LIMIT, MAX_LIMIT, PageQuery, TimeWindow, page_query, time_window

Platform = NamedDependency[PlatformContext]
Paging = NamedDependency[PageQuery]
Window = NamedDependency[TimeWindow]


def search_parameter(what: str) -> QueryParameter:
    """The ``q`` of a list route: what one search box sends (docs/console.md "Search")."""
    return QueryParameter(name="q", min_length=1, max_length=100, description=f"search: {what}")


def provide_page(
    limit: Annotated[int | None, QueryParameter(description=f"1 to {MAX_LIMIT}, {DEFAULT_LIMIT} when absent")] = None,
    cursor: Annotated[str | None, QueryParameter(description="next_cursor of the previous page")] = None,
) -> PageQuery:
    return page_query(limit, cursor)


def provide_window(
    from_: Annotated[datetime | None, QueryParameter(name="from", description="with its time zone")] = None,
    to: Annotated[datetime | None, QueryParameter(description="with its time zone")] = None,
) -> TimeWindow:
    return time_window(from_, to)


LIST_DEPENDENCIES = {
    "page": Provide(provide_page, sync_to_thread=False),
    "window": Provide(provide_window, sync_to_thread=False),
}

__all__ = [
    "LIST_DEPENDENCIES",
    "FromPath",
    "FromQuery",
    "JSONBody",
    "Paging",
    "Platform",
    "QueryParameter",
    "Window",
    "search_parameter",
]
