"""``serve`` as an operator meets it: roles, ports, configuration errors, MQTT closed."""

from __future__ import annotations

import asyncio
import os
import socket
import sys

import aiomqtt
import pytest

from tests.support import PlatformFactory, RunningPlatform, free_port


async def _run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "qris_soundbox.tools.cli",
        *args,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, stderr.decode()


async def test_port_in_use_is_one_line_naming_port_and_flag(database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, stderr = await _run_cli(
            "serve", "--http-port", str(port), "--mqtt-port", str(free_port()), env={"DATABASE_URL": database_url}
        )
    assert code != 0
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert str(port) in lines[0] and "--http-port" in lines[0]


async def test_mqtt_port_in_use_names_mqtt_flag(database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, stderr = await _run_cli(
            "serve",
            "--mqtt-host",
            "127.0.0.1",
            "--mqtt-port",
            str(port),
            "--http-port",
            str(free_port()),
            env={"DATABASE_URL": database_url},
        )
    assert code != 0
    assert str(port) in stderr and "--mqtt-port" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("QRIS_MAX_AMOUNT", "lots"),
        ("FINANCE_PLATFORM_FEE_BPS", "70"),
        ("JSON_BODY_LIMIT", "huge"),
        ("TRUST_PROXY", "maybe"),
        ("PORT", "70000"),
    ],
)
async def test_bad_environment_value_stops_startup_naming_the_variable(variable: str, value: str) -> None:
    code, stderr = await _run_cli("serve", env={variable: value})
    assert code != 0
    assert variable in stderr
    assert "Traceback" not in stderr


async def test_anonymous_mqtt_connection_is_refused(running: RunningPlatform) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with running.mqtt(client_id="anonymous-probe"):
            pass


async def test_only_api_runs_no_broker(platform_factory: PlatformFactory) -> None:
    api_only = await platform_factory.start(roles=frozenset({"api"}))
    try:
        assert api_only.platform.broker is None
        with pytest.raises(OSError):
            await asyncio.open_connection(api_only.mqtt_host, api_only.mqtt_port)
        assert (await api_only.http.get("/health")).status_code == 200
    finally:
        await platform_factory.stop(api_only)


async def test_deep_health_of_api_only_process_sees_broker_in_another_process(
    platform_factory: PlatformFactory, running: RunningPlatform
) -> None:
    # `running` (all roles) shares this module's database and has registered as a broker.
    api_only = await platform_factory.start(roles=frozenset({"api"}))
    try:
        body = (await api_only.http.get("/health/deep")).json()
        assert body["broker"]["status"] == "ok"
        assert running.platform.instance_id in body["broker"]["detail"]
    finally:
        await platform_factory.stop(api_only)
