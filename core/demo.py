"""Demo mode (``serve --demo``, used by ``make run``): well-known development
secrets when none are set, and idempotent demo data.

Each domain adds its demo objects to ``seed_demo`` and returns the lines a
newcomer needs (logins, ids, secrets) for the start-up banner.
"""

from __future__ import annotations

from qris_soundbox.core.context import PlatformContext
from qris_soundbox.core.devices.demo import seed_demo_device

# The earlier implementation's development values, so its scripts keep working.
DEMO_SECRETS = {
    "admin_token": "admin-dev-token",
    "device_token": "device-dev-token",
    "integration_webhook_secret": "dev-callback-secret",
}


def demo_overrides(current: dict[str, object]) -> dict[str, object]:
    """Secrets for demo mode, leaving any the operator set alone."""
    return {name: value for name, value in DEMO_SECRETS.items() if not current.get(name)}


async def seed_demo(platform: PlatformContext) -> list[str]:
    settings = platform.settings
    return [
        f"ADMIN_TOKEN                 {settings.admin_token}   (Authorization: Bearer ...)",
        f"DEVICE_TOKEN                {settings.device_token}",
        f"INTEGRATION_WEBHOOK_SECRET  {settings.integration_webhook_secret}",
        *await seed_demo_device(platform),
    ]
