"""Soaks (bench/soak.py) in the suite: a small fleet, drops and slow readers, payments flowing.

The bench runs as a vendor or the lead runs it, a real subprocess that starts its own
platform; these tests read its JSON report. They assert outcomes, never timings: every
payment answered 200 reached its soundbox (or was skipped as too late, by design),
none came again as a new message after the device acknowledged it, none was announced
twice or to another device. They also check that the chaos happened (devices were
dropped and reconnected, slow readers stalled), so a run that exercised nothing
cannot pass.

The short soak is part of ``make test``: 12 s of payments to 30 devices, and a hard
limit on the whole subprocess (its own PostgreSQL and platform included). The longer
one (200 devices, 30 s of payments) carries the ``soak`` marker: ``make test`` leaves
it out, ``make soak`` (and ``.ci/run``, as its own step) runs it. Past its limit a soak
is killed with its whole process group and its PostgreSQL, and the test fails with
its output: it can never hold the suite.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from qris_soundbox.core.embedded_pg import client_tool_path

ROOT = Path(__file__).resolve().parents[2]
# After SIGTERM to the soak's process group, how long it has to go before SIGKILL.
TERMINATE_GRACE_S = 15


def run_soak(directory: Path, limit_s: float, *arguments: str) -> tuple[dict, subprocess.CompletedProcess[str]]:
    """``bench/soak.py`` with ``arguments``, killed past ``limit_s``; its JSON report and the finished process."""
    report_path = directory / "soak.json"
    # The bench starts its own embedded PostgreSQL: the suite's database settings must not reach it. Its
    # temporary directory (and so that PostgreSQL's data) is made in a scratch directory of this test's, to be
    # found if it has to be killed; a short path, for the server's Unix socket (at most 107 bytes).
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("PG")}
    command = [sys.executable, str(ROOT / "bench" / "soak.py"), *arguments, "--no-write", "--report", str(report_path)]
    with tempfile.TemporaryDirectory(prefix="qris-soak-") as scratch:
        env["TMPDIR"] = scratch
        process = subprocess.Popen(
            command,
            cwd=directory,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=limit_s)
        except subprocess.TimeoutExpired:
            stdout, stderr = _kill(process, Path(scratch))
            pytest.fail(
                f"the soak did not finish within {limit_s:.0f} s and was killed:\n{stdout[-4000:]}\n{stderr[-4000:]}"
            )
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    assert report_path.exists(), f"the soak did not finish:\n{stdout[-4000:]}\n{stderr[-4000:]}"
    return json.loads(report_path.read_text()), result


def _kill(process: subprocess.Popen[str], directory: Path) -> tuple[str, str]:
    """The soak's process group, then the PostgreSQL it started (pg_ctl puts the server in a session of its own)."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        stdout, stderr = process.communicate(timeout=TERMINATE_GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
    for pid_file in directory.glob("**/postmaster.pid"):
        subprocess.run(
            [str(client_tool_path("pg_ctl")), "stop", "-D", str(pid_file.parent), "-m", "immediate"],
            capture_output=True,
            timeout=60,
        )
    return stdout, stderr


def assert_nothing_lost(report: dict, devices: int) -> None:
    assert report["connected"] == devices and report["refused_connects"] == 0
    assert report["callbacks"]["answered_200"] > 0, report["callbacks"]
    assert report["fleet"]["drops"] > 0 and report["fleet"]["reconnects"] > 0, report["fleet"]
    assert report["fleet"]["stalls"] > 0, report["fleet"]
    assert report["lost"] == 0, (report["lost_by_outbox_status"], report["lost_transactions"])
    assert report["duplicated_after_ack"] == 0, report["after_ack_examples"]
    assert report["double_announced"] == 0, report["double_announced_examples"]
    assert report["misrouted_count"] == 0, report["misrouted"]
    assert report["announcement"]["count"] == report["callbacks"]["answered_200"] - report["skipped_late"]


def test_short_soak_loses_nothing_and_duplicates_nothing_after_ack(tmp_path: Path) -> None:
    # About 45 s on a quiet 2-core machine, most of it starting and stopping its own PostgreSQL and platform.
    report, result = run_soak(
        tmp_path,
        180,
        *("--devices", "30", "--rate", "10", "--minutes", "0.2", "--drops-per-s", "1"),
        *("--slow-every", "10", "--slow-share", "0.2", "--sample-s", "2", "--grace-s", "20"),
    )
    assert_nothing_lost(report, 30)
    assert result.returncode == 0, result.stderr[-4000:]


@pytest.mark.soak
def test_soak_of_200_devices_loses_nothing_and_duplicates_nothing_after_ack(tmp_path: Path) -> None:
    report, result = run_soak(
        tmp_path,
        900,
        *("--devices", "200", "--rate", "20", "--minutes", "0.5", "--drops-per-s", "2"),
        *("--slow-every", "20", "--slow-share", "0.2", "--sample-s", "2", "--grace-s", "90"),
    )
    assert_nothing_lost(report, 200)
    assert result.returncode == 0, result.stderr[-4000:]
