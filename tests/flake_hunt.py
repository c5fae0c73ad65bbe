"""``make flake-hunt``: the suite (or a part of it) run several times under a CPU hog; every test that failed once.

A test that passes alone and fails beside other work waits on time rather than
on a condition, or the product races. One core is kept busy by ``stress-ng``
(Debian's, installed by ``make system-packages``) for the whole hunt, so the
suite runs as on a loaded CI machine. Each run writes a JUnit XML report; the
hunt lists every test that failed or errored in any run, with how many runs,
and exits 1 if there is one (or if a run did not produce a report: a crash or
nothing collected is a failure too).

    python -m tests.flake_hunt --runs 5 -- tests/console -x
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from collections import Counter
from pathlib import Path

STRESS_NG = "stress-ng"


def failed_tests(report: Path) -> set[str]:
    """The ids (``module::test``) of the tests a JUnit XML report shows failed or errored."""
    failed = set()
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed.add(f"{case.get('classname', '')}::{case.get('name', '')}")
    return failed


def cpu_hog(cores: int) -> subprocess.Popen[bytes]:
    """``stress-ng`` keeping ``cores`` cores busy, in its own process group (stopped with the group)."""
    if shutil.which(STRESS_NG) is None:
        sys.exit("flake-hunt: stress-ng is not installed (make system-packages installs it)")
    return subprocess.Popen(
        [STRESS_NG, "--cpu", str(cores), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def hunt(runs: int, cores: int, pytest_args: list[str]) -> int:
    failures: Counter[str] = Counter()
    broken_runs: list[str] = []
    hog = cpu_hog(cores)
    try:
        with tempfile.TemporaryDirectory(prefix="flake-hunt-") as directory:
            for run in range(1, runs + 1):
                report = Path(directory) / f"run-{run}.xml"
                print(f"flake-hunt: run {run}/{runs}: pytest {' '.join(pytest_args)}", flush=True)
                completed = subprocess.run(
                    [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={report}", *pytest_args]
                )
                # 0: passed, 1: some tests failed (listed in the report); anything else is a broken run.
                if completed.returncode not in (0, 1) or not report.exists():
                    broken_runs.append(f"run {run}: pytest exited {completed.returncode}")
                    continue
                failures.update(failed_tests(report))
    finally:
        os.killpg(hog.pid, signal.SIGTERM)
        hog.wait()
    print(f"\nflake-hunt: {runs} run(s) under stress-ng --cpu {cores}")
    for test, count in sorted(failures.items()):
        print(f"  FAILED {count}/{runs}  {test}")
    for broken in broken_runs:
        print(f"  BROKEN {broken}")
    if not failures and not broken_runs:
        print("  every test passed in every run")
    return 1 if failures or broken_runs else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="how many times to run the suite (default 5)")
    parser.add_argument("--cores", type=int, default=1, help="cores stress-ng keeps busy (default 1)")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --), e.g. tests/console")
    options = parser.parse_args()
    if options.runs < 1 or options.cores < 1:
        parser.error("--runs and --cores must be at least 1")
    sys.exit(hunt(options.runs, options.cores, options.pytest_args))


if __name__ == "__main__":
    main()
