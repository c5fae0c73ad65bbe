"""Rotating the acquirer's callback secret: old and new valid together, and which one signed is recorded."""

from __future__ import annotations

import time

import pytest

from qris_soundbox.core.config import ConfigError, load_settings
from qris_soundbox.core.payments.callbacks import verify_signature
from qris_soundbox.core.payments.errors import CallbackSignatureInvalid, CallbackTimestampStale
from tests.onboarding import onboarded_terminal
from tests.payments.helpers import callback_body, post_callback, signed_headers
from tests.support import PlatformFactory, RunningPlatform

NEW, OLD = "acquirer-secret-2026", "acquirer-secret-2025"


def test_every_listed_secret_verifies_and_says_which_it_was() -> None:
    body, now = b'{"x": 1}', int(time.time())
    for index, secret in enumerate((NEW, OLD)):
        headers = signed_headers(body, secret=secret, timestamp=now)
        signature = headers["X-Callback-Signature"]
        assert verify_signature((NEW, OLD), str(now), signature, body) == index
    forged = signed_headers(body, secret="some-other-secret", timestamp=now)["X-Callback-Signature"]
    with pytest.raises(CallbackSignatureInvalid):
        verify_signature((NEW, OLD), str(now), forged, body)
    stale = signed_headers(body, secret=OLD, timestamp=now - 3600)["X-Callback-Signature"]
    with pytest.raises(CallbackTimestampStale):
        verify_signature((NEW, OLD), str(now - 3600), stale, body)


def test_the_variable_takes_a_comma_separated_list() -> None:
    settings = load_settings({"INTEGRATION_WEBHOOK_SECRET": f" {NEW} , {OLD} "})
    assert settings.integration_webhook_secret == f"{NEW},{OLD}"
    for bad in (f"{NEW},,{OLD}", f"{NEW},short", f"{NEW},"):
        with pytest.raises(ConfigError, match="INTEGRATION_WEBHOOK_SECRET") as refused:
            load_settings({"INTEGRATION_WEBHOOK_SECRET": bad})
        assert NEW not in str(refused.value)  # the value is never echoed


@pytest.fixture(scope="module")
async def rotating(platform_factory: PlatformFactory) -> RunningPlatform:
    return await platform_factory.start(integration_webhook_secret=f"{NEW},{OLD}")


async def test_callbacks_signed_with_the_old_or_the_new_secret_are_applied_and_recorded(
    rotating: RunningPlatform,
) -> None:
    ids = await onboarded_terminal(rotating, qris_ready=True)
    for secret, index in ((OLD, 1), (NEW, 0)):
        answer = await post_callback(
            rotating, callback_body(amount=5_000, terminal_id=ids["terminal_id"]), secret=secret
        )
        assert answer.status_code == 200, answer.text
        transaction_id = answer.json()["transaction_id"]
        events = (
            await rotating.http.get(f"/admin/transactions/{transaction_id}/events", headers=rotating.admin_headers)
        ).json()["items"]
        assert [event["payload"].get("secret_index") for event in events if event["payload"].get("event_id")] == [index]
        audit = (
            await rotating.http.get(
                "/admin/audit-logs",
                params={"action": "qris.callback.applied", "entity_id": transaction_id},
                headers=rotating.admin_headers,
            )
        ).json()["items"]
        assert [row["payload"]["secret_index"] for row in audit] == [index]
        assert all(OLD not in str(row) and NEW not in str(row) for row in audit + events)
    refused = await post_callback(
        rotating, callback_body(amount=5_000, terminal_id=ids["terminal_id"]), secret="retired-secret-2024"
    )
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_signature"
