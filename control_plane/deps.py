"""Dependency markers the route modules share.

Litestar 3 drops inferred dependencies and unmarked ``data``; routes spell them
``platform: Platform`` and ``data: JSONBody[SomeStruct]``.
"""

from __future__ import annotations

from litestar.di import NamedDependency
from litestar.params import JSONBody

from qris_soundbox.core.context import PlatformContext

Platform = NamedDependency[PlatformContext]

__all__ = ["JSONBody", "Platform"]
