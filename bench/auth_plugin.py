"""amqtt auth plugin of the benchmarks and the broker tests: one shared password for every client.

Not anonymous access: a CONNECT without a username or with another password is
refused, so the broker's refusal paths are exercised too.
"""

from __future__ import annotations

from dataclasses import dataclass

from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import Session


class SharedPasswordAuthPlugin(BaseAuthPlugin):
    @dataclass
    class Config:
        password: str = "shared-test-password"
        """The password every client must present, with any non-empty username."""

    async def authenticate(self, *, session: Session) -> bool | None:
        return bool(session.username) and session.password == self.config.password
