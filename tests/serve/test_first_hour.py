"""The first hour on ``make run``, as README.md tells it: run as a new user would.

- The banner's ``export`` lines, pasted into bash, give the tour its DEV, PW, TER, PORT and MQTT_PORT;
  the tour's own commands (taken from README.md, not copied here) make the demo soundbox hear the payment
  and acknowledge it: the transaction's notification reads ``acked``, not resent until ``skipped_late``.
- A second server on busy ports is refused with one message naming every busy port and the make
  variables that change them.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.adversarial.test_serve_lifecycle import ServeProcess, embedded_env
from tests.devices.helpers import eventually
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]


def tour_commands() -> str:
    """README's block that makes the demo soundbox speak, without its last line (which stops the simulator:
    here the test stops it once the ack is seen)."""
    readme = (ROOT / "README.md").read_text()
    after = readme[readme.index("Make the demo soundbox speak") :]
    start = after.index("```bash\n") + len("```bash\n")
    block = after[start : after.index("\n```", start)]
    return "\n".join(line for line in block.splitlines() if not line.startswith("kill %1"))


async def test_the_readme_tour_acknowledges_its_payment(database_url: str, tmp_path: Path) -> None:
    serve = ServeProcess(
        tmp_path, "--demo", "--data-dir", str(tmp_path / "var"), env=embedded_env() | {"DATABASE_URL": database_url}
    )
    tour: subprocess.Popen[bytes] | None = None
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            await serve.first_health_200(http)
            exports = [await serve.line_starting("export DEV="), await serve.line_starting("export PORT=")]
            assert f"PORT={serve.http_port} MQTT_PORT={serve.mqtt_port}" in exports[1]
            script = "set -e\n" + "\n".join(exports) + "\n" + tour_commands() + "\nwait\n"
            tour_log = tmp_path / "tour.log"
            with tour_log.open("wb") as log:
                tour = subprocess.Popen(
                    ["bash", "-c", script], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            terminal_id = re.search(r"TER=(\S+)", exports[0]).group(1)  # type: ignore[union-attr]
            admin = {"Authorization": "Bearer admin-dev-token"}

            async def acked() -> bool:
                page = await http.get(
                    f"{serve.base_url}/admin/transactions", params={"terminal_id": terminal_id}, headers=admin
                )
                if not (items := page.json()["items"]):
                    return False
                detail = await http.get(f"{serve.base_url}/admin/transactions/{items[0]['id']}", headers=admin)
                return (detail.json().get("notification") or {}).get("status") == "acked"

            assert await eventually(acked, timeout=60), f"{tour_log.read_text()}\n{serve.output()}"
            assert "dua puluh lima ribu rupiah" in tour_log.read_text()
    finally:
        if tour is not None and tour.poll() is None:
            os.killpg(tour.pid, signal.SIGTERM)
            tour.wait(timeout=20)
        serve.kill_if_running()


def test_a_second_server_hears_of_every_busy_port_and_the_make_variables(tmp_path: Path) -> None:
    with socket.socket() as http_taken, socket.socket() as mqtt_taken:
        for sock in (http_taken, mqtt_taken):
            sock.bind(("127.0.0.1", free_port()))
            sock.listen()
        http_port, mqtt_port = http_taken.getsockname()[1], mqtt_taken.getsockname()[1]
        refused = subprocess.run(
            [sys.executable, "-m", "qris_soundbox.tools.cli", "serve", "--data-dir", str(tmp_path / "var")]
            + ["--http-host", "127.0.0.1", "--http-port", str(http_port)]
            + ["--mqtt-host", "127.0.0.1", "--mqtt-port", str(mqtt_port)],
            env=embedded_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert refused.returncode != 0
    message = refused.stderr
    assert f"port {http_port} on 127.0.0.1 is not available" in message, message
    assert f"port {mqtt_port} on 127.0.0.1 is not available" in message, message
    assert "make run PORT=" in message and "make run MQTT_PORT=" in message, message
    assert "Traceback" not in message
