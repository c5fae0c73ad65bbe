"""``serve --workers 2`` as a real subprocess: a supervisor, two API processes on one HTTP port
(SO_REUSEPORT) and the broker with the jobs in a third (tools/workers.py).

- HTTP is answered by both API processes, each registered in the shared database;
- a paid callback taken by an API process is announced by the broker process to a real device;
- the login limit holds across the API processes (the shared store, chosen by the supervisor);
- with METRICS_PORT, the broker process serves /metrics there and API process i on METRICS_PORT + i;
- an API process killed with SIGKILL is restarted, the other answering meanwhile; every log line
  names the process that wrote it;
- SIGTERM to the supervisor stops everything, the embedded PostgreSQL included; the banner is
  printed once; SIGKILL of the supervisor takes its children with it.

Which process answers a connection is the kernel's choice (a hash of the connection), so the tests
open a new connection per request and ask enough times for both to be seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import psutil
import pytest

from qris_soundbox.tools.api import AdminApi, callback_body, callback_headers
from tests.broker.raw_client import WAIT_S
from tests.devices.helpers import eventually
from tests.serve_process import BANNER, Device, Serve, embedded_data_dir_of, postmaster_pid
from tests.support import ADMIN_TOKEN, WEBHOOK_SECRET

LOGIN_MAX = 3
# With both processes counting in memory, 16 attempts would all be refused only if one process took them all:
# a chance of 2 in 2^16.
LOGIN_ATTEMPTS = 16
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def free_ports_in_a_row(count: int) -> int:
    """The first of ``count`` consecutive free ports (METRICS_PORT and one per API process)."""
    for _ in range(50):
        with contextlib.ExitStack() as stack:
            first = stack.enter_context(socket.socket())
            first.bind(("127.0.0.1", 0))
            base = first.getsockname()[1]
            try:
                for offset in range(1, count):
                    stack.enter_context(socket.socket()).bind(("127.0.0.1", base + offset))
            except OSError:
                continue
            return base
    raise AssertionError("no free ports in a row")


@pytest.fixture(scope="module")
async def cluster(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Serve]:
    serve = Serve(
        database_url,
        tmp_path_factory.mktemp("workers"),
        workers=2,
        # Shared windows are aligned on the epoch: a day-long one is not crossed while the test runs.
        env={
            "RATE_LIMIT_LOGIN_MAX": str(LOGIN_MAX),
            "RATE_LIMIT_LOGIN_WINDOW_MS": "86400000",
            "METRICS_PORT": str(free_ports_in_a_row(3)),
        },
    )
    await serve.start()
    yield serve
    await serve.stop()


def children(serve: Serve) -> dict[str, psutil.Process]:
    """The supervisor's children by name (broker, api-1, api-2)."""
    assert serve.proc is not None
    return {child.cmdline()[-1]: child for child in psutil.Process(serve.proc.pid).children()}


async def fresh(url: str, method: str, path: str, **kwargs: object) -> httpx.Response:
    """One request on a connection of its own, so the kernel picks the process anew."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        return await http.request(method, path, **kwargs)  # type: ignore[arg-type]


async def deep_health(url: str) -> dict:
    response = await fresh(url, "GET", "/admin/health/deep", headers=ADMIN)
    assert response.status_code == 200, response.text
    return dict(response.json())


def pid_of(instance_id: str) -> int:
    return int(instance_id.split("-")[-2])  # <host>-<pid>-<random>


async def test_http_is_answered_by_both_api_processes_each_registered(cluster: Serve) -> None:
    processes = children(cluster)
    assert sorted(processes) == ["api-1", "api-2", "broker"]
    answers = [await deep_health(cluster.url) for _ in range(20)]
    answered_by = {pid_of(answer["instance_id"]) for answer in answers}
    assert answered_by == {processes["api-1"].pid, processes["api-2"].pid}
    live = {pid_of(i["id"]): sorted(i["roles"]) for i in answers[-1]["instances"] if i["alive"]}
    assert live == {
        processes["api-1"].pid: ["api"],
        processes["api-2"].pid: ["api"],
        processes["broker"].pid: ["broker", "worker"],
    }
    assert all(answer["status"] == "ok" and answer["roles"] == ["api"] for answer in answers)


def listening(process: psutil.Process) -> set[int]:
    return {c.laddr.port for c in process.net_connections("tcp") if c.status == psutil.CONN_LISTEN}


async def test_each_process_serves_its_own_metrics_port(cluster: Serve) -> None:
    metrics_port = int(cluster.env["METRICS_PORT"])
    processes = children(cluster)
    assert listening(processes["broker"]) >= {cluster.mqtt_port, metrics_port}
    assert cluster.http_port not in listening(processes["broker"])
    for number in (1, 2):
        assert listening(processes[f"api-{number}"]) == {cluster.http_port, metrics_port + number}
    for port in (metrics_port, metrics_port + 1, metrics_port + 2):
        response = await fresh(f"http://127.0.0.1:{port}", "GET", "/metrics")
        assert response.status_code == 200 and "qris_" in response.text
    banner = cluster.log.read_text()
    assert all(f"127.0.0.1:{port}/metrics" in banner for port in (metrics_port, metrics_port + 1, metrics_port + 2))


async def test_a_paid_callback_is_announced_by_the_broker_process(cluster: Serve) -> None:
    async with AdminApi(cluster.url, ADMIN_TOKEN) as api:
        onboarded = await api.onboard_terminal("Warung Workers")
        terminal_id = onboarded["terminal"]["id"]
        credential = await api.provision_device(f"SN-WORKERS-{uuid.uuid4().hex[:10]}", "generic-audio", terminal_id)
    device = Device(credential, cluster.mqtt_port)
    device_task = asyncio.create_task(device.run())
    try:
        await asyncio.wait_for(device.subscribed.wait(), WAIT_S)
        raw = msgspec.json.encode(callback_body(amount=15_000, terminal_id=terminal_id))
        response = await fresh(
            cluster.url,
            "POST",
            "/integrations/qris/callback",
            content=raw,
            headers=callback_headers(WEBHOOK_SECRET, raw),
        )
        assert response.status_code == 200, response.text
        transaction_id = response.json()["transaction_id"]

        async def heard() -> bool:
            return transaction_id in device.heard

        assert await eventually(heard, WAIT_S)
        assert len(device.heard[transaction_id]) == 1
    finally:
        device_task.cancel()


async def test_the_login_limit_holds_across_the_api_processes(cluster: Serve) -> None:
    statuses = [
        (
            await fresh(
                cluster.url, "POST", "/admin/login", json={"email": "spray@example.com", "password": "wrong password"}
            )
        ).status_code
        for _ in range(LOGIN_ATTEMPTS)
    ]
    assert statuses == [401] * LOGIN_MAX + [429] * (LOGIN_ATTEMPTS - LOGIN_MAX)


async def test_a_killed_api_process_is_restarted_while_the_other_answers(cluster: Serve) -> None:
    before = children(cluster)
    killed, survivor = before["api-1"], before["api-2"]
    killed.kill()
    killed.wait(10)
    answered_by: list[int] = []

    async def restarted() -> bool:
        answer = await deep_health(cluster.url)  # fails the test unless a live process answers
        answered_by.append(pid_of(answer["instance_id"]))
        return answered_by[-1] not in (killed.pid, survivor.pid)

    assert await eventually(restarted, 60, interval=0.05), "api-1 did not come back"
    assert killed.pid not in answered_by
    assert answered_by.count(survivor.pid) >= 1  # it answered while api-1 was away
    after = children(cluster)
    assert after["api-1"].pid == answered_by[-1] and after["api-2"].pid == survivor.pid
    assert after["broker"].pid == before["broker"].pid
    lines = [msgspec.json.decode(line) for line in cluster.log.read_text().splitlines() if line.startswith("{")]
    assert {line["process_name"] for line in lines} <= {"supervisor", "broker", "api-1", "api-2"}
    assert all(isinstance(line["pid"], int) for line in lines)
    exited = [line for line in lines if line["msg"] == "platform process exited; restarting it"]
    assert len(exited) == 1 and exited[0]["process_name"] == "supervisor"
    assert exited[0]["child"] == "api-1" and exited[0]["reason"] == "killed by SIGKILL"


async def test_sigterm_stops_every_process_and_the_embedded_postgresql() -> None:
    with embedded_data_dir_of("qris-workers-") as data_dir:
        data_dir.mkdir()
        await _sigterm_stops_every_process_and_the_embedded_postgresql(data_dir)


async def _sigterm_stops_every_process_and_the_embedded_postgresql(data_dir: Path) -> None:
    serve = Serve("", data_dir, workers=2, args=("--demo",))  # no DATABASE_URL: the embedded PostgreSQL
    await serve.start()
    try:
        assert serve.proc is not None
        postmaster = postmaster_pid(data_dir / "postgres")
        assert postmaster is not None
        processes = [psutil.Process(serve.proc.pid), *children(serve).values(), psutil.Process(postmaster)]
        assert len(processes) == 5
        log = serve.log.read_text()
        assert log.count(BANNER) == 1 and log.count("ADMIN_TOKEN ") == 1
        serve.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(serve.proc.wait(), 60) == 0
        gone, alive = psutil.wait_procs(processes, timeout=10)
        assert alive == [], f"left behind: {alive}\n{serve.log.read_text()}"
    finally:
        await serve.stop()


async def test_the_children_die_with_a_sigkilled_supervisor(database_url: str, tmp_path: Path) -> None:
    serve = Serve(database_url, tmp_path, workers=2)
    await serve.start()
    try:
        processes = list(children(serve).values())
        assert len(processes) == 3
        await serve.kill()
        gone, alive = psutil.wait_procs(processes, timeout=30)
        assert alive == [], f"left behind: {alive}\n{serve.log.read_text()}"
    finally:
        await serve.stop()


async def test_only_and_workers_are_refused_together(database_url: str, tmp_path: Path) -> None:
    serve = Serve(database_url, tmp_path, roles=("api",), workers=2)
    with pytest.raises(AssertionError, match="--only runs one process"):
        await serve.start()
