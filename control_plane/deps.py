"""Dependency markers the route modules share.

Litestar 3 drops inferred dependencies, unmarked ``data`` and inferred
parameters; routes spell them ``platform: Platform``, ``data: JSONBody[SomeStruct]``,
``merchant_id: FromPath[str]`` and ``limit: FromQuery[int | None] = None``.
"""

from __future__ import annotations

from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from qris_soundbox.core.context import PlatformContext

Platform = NamedDependency[PlatformContext]

__all__ = ["FromPath", "FromQuery", "JSONBody", "Platform", "QueryParameter"]
