"""``qris-soundbox loadtest`` with tiny counts against the running test platform, and its loopback guard."""

from __future__ import annotations

import json
from pathlib import Path

from qris_soundbox.tools.loadtest import is_loopback
from tests.support import ADMIN_TOKEN, WEBHOOK_SECRET, RunningPlatform
from tests.tools.helpers import run_cli

SCENARIOS = {
    "health",
    "transaction_create",
    "callback_paid",
    "heartbeat",
    "dynamic_qr",
    "observability_summary",
    "transactions_list",
}
ENV = {
    "ADMIN_TOKEN": ADMIN_TOKEN,
    "INTEGRATION_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "LOAD_CALLBACKS": "3",
    "LOAD_HEARTBEATS": "4",
    "LOAD_DYNAMIC_QR": "2",
    "LOAD_READS": "2",
    "LOAD_CONCURRENCY": "2",
}


async def test_loadtest_reports_every_scenario_without_errors(running: RunningPlatform, tmp_path: Path) -> None:
    report_file = tmp_path / "reports" / "load.json"
    code, out, err = await run_cli(
        "loadtest",
        "--base-url",
        running.http_url,
        "--profile",
        "staging",
        "--exports",
        "1",
        env={**ENV, "LOAD_REPORT_FILE": str(report_file)},
    )
    assert code == 0, out + err
    report = json.loads(report_file.read_text())
    scenarios = report["scenarios"]
    assert set(scenarios) == SCENARIOS | {"export_job"}
    assert report["totals"]["errors"] == 0 and not report["totals"]["truncated"]
    counts = {name: s["count"] for name, s in scenarios.items()}
    assert counts == {
        "health": 4,
        "transaction_create": 3,
        "callback_paid": 3,
        "heartbeat": 4,
        "dynamic_qr": 2,
        "observability_summary": 2,
        "transactions_list": 2,
        "export_job": 1,
    }
    assert scenarios["export_job"]["jobs"] == {"completed": 1}
    for name, s in scenarios.items():
        assert s["latency"]["p50_ms"] > 0 and s["throughput_rps"] > 0, name
        assert name == "health" or s["vs_health"]["p50"] > 0, name
    assert "admin_token" not in json.dumps(report) and ADMIN_TOKEN not in report_file.read_text()

    # The callbacks really paid what the burst created: the platform holds those payments.
    paid = (
        await running.http.get(
            "/admin/transactions",
            params={"status": "paid", "limit": 100, "merchant_id": report["setup"]["merchant_id"]},
            headers=running.admin_headers,
        )
    ).json()["items"]
    assert len(paid) == 3
    assert "transaction_create" in out and "report saved to" in out


async def test_loadtest_refuses_a_remote_base_url_without_allow_remote(tmp_path: Path) -> None:
    code, out, err = await run_cli(
        "loadtest",
        env={**ENV, "BASE_URL": "http://192.0.2.10:8000", "LOAD_REPORT_FILE": str(tmp_path / "r.json")},
        timeout=30,
    )
    assert code != 0 and "--allow-remote" in err and "Traceback" not in err
    assert not (tmp_path / "r.json").exists()


def test_only_this_machine_counts_as_loopback() -> None:
    for url in ("http://127.0.0.1:8000", "http://localhost:3120", "http://127.0.0.9", "http://[::1]:8000"):
        assert is_loopback(url), url
    for url in ("http://10.0.0.5:8000", "https://staging.example.com", "http://0.0.0.0:8000", "http://[::]:8000"):
        assert not is_loopback(url), url
