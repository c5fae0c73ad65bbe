"""Dependency markers the route modules share.

Litestar 3 drops inferred dependencies, unmarked ``data`` and inferred query
parameters; routes spell them ``platform: Platform``, ``data: JSONBody[SomeStruct]``,
``limit: FromQuery[int | None] = None``, ``merchant_id: FromPath[str]`` and, for a name that is a Python
keyword, ``from_: Annotated[datetime | None, QueryParameter(name="from")] = None``.
"""

from __future__ import annotations

from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from qris_soundbox.core.context import PlatformContext

Platform = NamedDependency[PlatformContext]

__all__ = ["FromPath", "FromQuery", "JSONBody", "Platform", "QueryParameter"]
