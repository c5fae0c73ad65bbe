"""A short soak (bench/soak.py) in the suite: a small fleet, drops and slow readers, half a minute of payments.

The bench runs as a vendor or the lead runs it, a real subprocess that starts its own
platform; this test reads its JSON report. It asserts outcomes, never timings: every
payment answered 200 reached its soundbox (or was skipped as too late, by design),
none came again as a new message after the device acknowledged it, none was announced
twice or to another device. It also checks that the chaos happened (devices were
dropped and reconnected, slow readers stalled), so a run that exercised nothing
cannot pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_short_soak_loses_nothing_and_duplicates_nothing_after_ack(tmp_path: Path) -> None:
    report_path = tmp_path / "soak.json"
    # The bench starts its own embedded PostgreSQL: the suite's database settings must not reach it.
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("PG")}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "soak.py"),
            "--devices",
            "200",
            "--rate",
            "20",
            "--minutes",
            "0.5",
            "--drops-per-s",
            "2",
            "--slow-every",
            "20",
            "--slow-share",
            "0.2",
            "--sample-s",
            "2",
            "--grace-s",
            "90",
            "--no-write",
            "--report",
            str(report_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert report_path.exists(), f"the soak did not finish:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    report = json.loads(report_path.read_text())

    assert report["connected"] == 200 and report["refused_connects"] == 0
    assert report["callbacks"]["answered_200"] > 0, report["callbacks"]
    assert report["fleet"]["drops"] > 0 and report["fleet"]["reconnects"] > 0, report["fleet"]
    assert report["fleet"]["stalls"] > 0, report["fleet"]
    assert report["lost"] == 0, (report["lost_by_outbox_status"], report["lost_transactions"])
    assert report["duplicated_after_ack"] == 0, report["after_ack_examples"]
    assert report["double_announced"] == 0, report["double_announced_examples"]
    assert report["misrouted_count"] == 0, report["misrouted"]
    assert report["announcement"]["count"] == report["callbacks"]["answered_200"] - report["skipped_late"]
    assert result.returncode == 0, result.stderr[-4000:]
