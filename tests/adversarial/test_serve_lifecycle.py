"""``serve`` as a real subprocess: readiness means ready, and a crash leaves no PostgreSQL behind.

- ``/health`` answers 200 only once the demo data is seeded and the broker
  listens: a script that waits for it and then lists outlets finds the demo's.
- SIGKILL of ``serve`` orphans its embedded PostgreSQL; the next ``serve``
  adopts it, and a graceful stop of that one stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from qris_soundbox.core.demo import DEMO_OUTLET, DEMO_USERS
from tests.serve_process import embedded_data_dir_of, embedded_env, postmaster_pid
from tests.support import free_port

DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD = next(
    (email, password) for kind, email, _, role, password in DEMO_USERS if kind == "admin" and role == "admin"
)


class ServeProcess:
    """``qris-soundbox serve`` in ``workdir``, its output in ``workdir/serve-N.log``."""

    def __init__(self, workdir: Path, *args: str, env: dict[str, str]) -> None:
        self.http_port, self.mqtt_port = free_port(), free_port()
        self.base_url = f"http://127.0.0.1:{self.http_port}"
        self.log_path = workdir / f"serve-{self.http_port}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "qris_soundbox.tools.cli",
                    "serve",
                    *args,
                    "--http-port",
                    str(self.http_port),
                    "--mqtt-host",
                    "127.0.0.1",
                    "--mqtt-port",
                    str(self.mqtt_port),
                ],
                env=env,
                cwd=workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def line_starting(self, prefix: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while not (lines := [line.strip() for line in self.output().splitlines() if line.strip().startswith(prefix)]):
            assert time.monotonic() < deadline, f"no line starting {prefix!r}:\n{self.output()}"
            await asyncio.sleep(0.05)
        return lines[0]

    async def first_health_200(self, http: httpx.AsyncClient, timeout: float = 120) -> None:
        """Poll ``/health`` as a start-up script would, returning at the first 200."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, f"serve exited with {self.proc.returncode}:\n{self.output()}"
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(f"{self.base_url}/health", timeout=1)).status_code == 200:
                    return
            assert time.monotonic() < deadline, f"no /health 200 within {timeout} s:\n{self.output()}"
            await asyncio.sleep(0.02)

    def stop(self, sig: signal.Signals, timeout: float = 60) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def kill_if_running(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


async def test_health_answers_only_once_demo_data_is_seeded_and_broker_listens(
    database_url: str, tmp_path: Path
) -> None:
    serve = ServeProcess(
        tmp_path, "--demo", "--data-dir", str(tmp_path / "var"), env=embedded_env() | {"DATABASE_URL": database_url}
    )
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            await serve.first_health_200(http)
            # At once, as a start-up script would: the demo admin token from the banner lists the demo outlet.
            outlets = await http.get(
                f"{serve.base_url}/admin/outlets", headers={"Authorization": "Bearer admin-dev-token"}
            )
            assert outlets.status_code == 200, outlets.text
            assert DEMO_OUTLET["name"] in [outlet["name"] for outlet in outlets.json()["items"]]
            _, writer = await asyncio.open_connection("127.0.0.1", serve.mqtt_port)
            writer.close()
            login = await http.post(
                f"{serve.base_url}/admin/login", json={"email": DEMO_ADMIN_EMAIL, "password": DEMO_ADMIN_PASSWORD}
            )
            assert login.status_code == 200, login.text
            as_demo_admin = await http.get(
                f"{serve.base_url}/admin/outlets", headers={"Authorization": f"Bearer {login.json()['token']}"}
            )
            assert DEMO_OUTLET["name"] in [outlet["name"] for outlet in as_demo_admin.json()["items"]]

            # The demo switches the legacy shared device token on, and its banner says so.
            assert "ON for the demo" in await serve.line_starting("DEVICE_TOKEN")
            demo_device_id = (await serve.line_starting("demo device")).split()[2]
            legacy = await http.post(
                f"{serve.base_url}/device/heartbeat",
                json={"battery_level": 50},
                headers={"Authorization": "Bearer device-dev-token", "X-Device-Id": demo_device_id},
            )
            assert legacy.status_code == 200, legacy.text
        assert serve.stop(signal.SIGTERM) == 0, serve.output()
    finally:
        serve.kill_if_running()


@pytest.fixture
def embedded_data_dir() -> Iterator[Path]:
    with embedded_data_dir_of("qris-serve-crash-") as data_dir:
        yield data_dir


async def test_graceful_stop_after_a_crash_stops_the_adopted_embedded_postgres(
    tmp_path: Path, embedded_data_dir: Path
) -> None:
    pgdata = embedded_data_dir / "postgres"
    env = embedded_env()
    crashed = ServeProcess(tmp_path, "--data-dir", str(embedded_data_dir), env=env)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            await crashed.first_health_200(http)
        orphan = postmaster_pid(pgdata)
        assert orphan is not None
    finally:
        crashed.kill_if_running()  # SIGKILL: no clean-up of any kind
    assert postmaster_pid(pgdata) == orphan, "the embedded PostgreSQL outlives a SIGKILLed serve"

    restarted = ServeProcess(tmp_path, "--data-dir", str(embedded_data_dir), env=env)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            await restarted.first_health_200(http)
        assert postmaster_pid(pgdata) == orphan, "the restarted serve adopts the running server"
        assert restarted.stop(signal.SIGTERM) == 0, restarted.output()
    finally:
        restarted.kill_if_running()
    # pg_ctl stop -w returns once the postmaster has exited.
    assert postmaster_pid(pgdata) is None, f"PostgreSQL still runs after a graceful stop:\n{restarted.output()}"
    assert not (pgdata / "postmaster.pid").exists()
