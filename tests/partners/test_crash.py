"""A SIGKILL of the platform between a payment and its partner notification loses nothing."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from qris_soundbox.tools.api import AdminApi, callback_body, callback_headers
from tests.partners.helpers import Remote, receiver, receiver_url, register_partner
from tests.serve_process import Serve
from tests.support import ADMIN_TOKEN, SECRETS_ENCRYPTION_KEY, WEBHOOK_SECRET, free_port


async def test_a_notification_pending_at_a_sigkill_is_delivered_after_restart(
    database_url: str, tmp_path: Path
) -> None:
    serve = Serve(
        database_url,
        tmp_path,
        env={
            "SECRETS_ENCRYPTION_KEY": SECRETS_ENCRYPTION_KEY,
            "PARTNER_NOTIFY_BACKOFF_MS": "100",
            "PARTNER_NOTIFY_BACKOFF_MAX_MS": "300",
            "PARTNER_NOTIFY_INTERVAL_MS": "100",
            "PARTNER_NOTIFY_MAX_ATTEMPTS": "1000",
            "PARTNER_NOTIFY_TIMEOUT_MS": "1000",
        },
    )
    await serve.start()
    try:
        async with AdminApi(serve.url, ADMIN_TOKEN) as api:
            terminal = (await api.onboard_terminal("Warung Crash", qris_ready=True))["terminal"]
        async with httpx.AsyncClient(base_url=serve.url, timeout=10) as http:
            admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            # The receiver is down at first: the notification waits in the outbox, retried.
            port = free_port()
            partner = await register_partner(Remote(http, admin), [terminal["merchant_id"]], receiver_url(port))
            generated = (
                await partner.generate({"merchant_id": terminal["merchant_id"], "terminal_id": terminal["id"]})
            ).json()
            raw = json.dumps(callback_body(amount=25000, transaction_id=generated["referenceNo"])).encode()
            paid = await http.post(
                "/integrations/qris/callback", content=raw, headers=callback_headers(WEBHOOK_SECRET, raw)
            )
            assert paid.status_code == 200, paid.text
        await serve.kill()
        async with receiver(tmp_path, "ok", port=port) as sink:
            await serve.start()
            received = await sink.wait_for(1, timeout=30)
        assert [json.loads(request["body"])["originalReferenceNo"] for request in received] == [
            generated["referenceNo"]
        ]
    finally:
        await serve.stop()
