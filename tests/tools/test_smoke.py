"""``qris-soundbox smoke`` as an operator runs it: a subprocess against the running test platform."""

from __future__ import annotations

from tests.support import ADMIN_TOKEN, WEBHOOK_SECRET, RunningPlatform
from tests.tools.helpers import run_cli


async def _smoke(running: RunningPlatform, secret: str) -> tuple[int, str, str]:
    return await run_cli(
        "smoke",
        "--base-url",
        running.http_url,
        "--timeout",
        "10",
        env={"ADMIN_TOKEN": ADMIN_TOKEN, "INTEGRATION_WEBHOOK_SECRET": secret},
    )


async def test_smoke_passes_every_step_against_the_running_platform(running: RunningPlatform) -> None:
    code, out, err = await _smoke(running, WEBHOOK_SECRET)
    assert code == 0, out + err
    lines = out.splitlines()
    assert [line for line in lines if line.startswith(("FAIL", "SKIP"))] == []
    assert sum(line.startswith("PASS") for line in lines) == 19
    assert any('"Pembayaran QRIS diterima, dua puluh lima ribu rupiah"' in line for line in lines)
    assert lines[-1] == "smoke passed: 19 passed, 0 failed, 0 skipped"

    merchants = (
        await running.http.get("/admin/merchants", params={"limit": 100}, headers=running.admin_headers)
    ).json()["items"]
    assert any(m["name"].startswith("Smoke Merchant ") for m in merchants), "smoke objects are not recognisable"


async def test_smoke_fails_and_stops_when_the_callback_secret_is_wrong(running: RunningPlatform) -> None:
    code, out, _ = await _smoke(running, "not-the-platform-secret")
    assert code == 1
    assert "FAIL  signed paid callback accepted" in out and "401" in out
    assert "SKIP  payment announced on the device" in out
    assert out.splitlines()[-1].startswith("smoke FAILED: 9 passed, 1 failed")
