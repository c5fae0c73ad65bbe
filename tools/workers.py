"""``qris-soundbox serve --workers N``: the platform as N + 1 processes on one machine, under a supervisor.

The supervisor (``Supervisor``, the process ``serve`` started) starts the embedded
PostgreSQL (unless DATABASE_URL / PG* name one) and migrates once, then starts its
children, each a ``python -m qris_soundbox.tools.workers <name>`` running
``tools/serve.py``'s ``serve`` with the roles it is given:

- ``broker``: the MQTT broker and the worker role (scheduled jobs, the outbox
  publisher), so that announcements never wait behind HTTP work; with ``--demo``
  it seeds the demo data, once;
- ``api-1`` .. ``api-N``: the HTTP API, every one listening on the same port with
  SO_REUSEPORT (the kernel spreads new connections over them).

It runs no role itself: it only starts, watches, restarts (with a back-off) and
stops its children, so a crash in a role never takes supervision down, and its
loop has nothing to do that could delay a restart. A child reads what it runs
(``ChildSpec``, the settings included, so secrets never appear on a command line)
from its stdin, and reports once it serves (``Ready``: its URLs, the demo lines,
its broker's listeners) through a pipe; the supervisor prints the banner once,
from those reports. A child dies with the supervisor, even a SIGKILLed one
(``PR_SET_PDEATHSIG``, Linux). docs/operations.md has the measured figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from qris_soundbox.broker.config import Listeners
from qris_soundbox.core.config import Settings
from qris_soundbox.core.context import PlatformContext
from qris_soundbox.core.logging import configure_logging
from qris_soundbox.core.net import HTTP_PORT_FLAG, MQTT_PORT_FLAG, PortInUse, Wanted, ensure_ports_free
from qris_soundbox.tools.common import open_database
from qris_soundbox.tools.serve import ServeOptions, StartupError, run_until_signal

log = logging.getLogger(__name__)

BROKER = "broker"
BROKER_ROLES = ("broker", "worker")
# A child that exits is restarted after RESTART_MIN_S, doubled after each exit that follows a short run,
# at most RESTART_MAX_S; one that ran STABLE_S or longer starts again from RESTART_MIN_S.
RESTART_MIN_S = 0.5
RESTART_MAX_S = 30.0
STABLE_S = 60.0
# How long a child may take to stop gracefully on SIGTERM before it is killed.
STOP_TIMEOUT_S = 30.0
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

Address = tuple[str, int]


class ChildSpec(msgspec.Struct, kw_only=True, frozen=True):
    """What one child runs: written by the supervisor to the child's stdin."""

    name: str
    roles: tuple[str, ...]
    settings: Settings
    data_dir: str
    http_host: str
    http_port: int
    mqtt_host: str
    mqtt_port: int
    mqtt_tls_port: int | None
    broker_config: str
    metrics_port: int | None  # an API child's own /metrics port
    seed_demo: bool
    sibling_broker: tuple[Address | None, Address | None] | None  # the broker child's plain and TLS listeners
    supervisor_pid: int
    ready_fd: int


# The ServeOptions a child gets as the supervisor has them.
_PASSED_AS_IS = ("http_host", "http_port", "mqtt_host", "mqtt_port", "mqtt_tls_port")


class Ready(msgspec.Struct, kw_only=True):
    """What a child reports once it serves (or why it could not start)."""

    urls: dict[str, str] = {}
    demo_lines: list[str] = []
    broker_plain: Address | None = None
    broker_tls: Address | None = None
    error: str | None = None


@dataclass
class Child:
    name: str
    roles: tuple[str, ...]
    metrics_port: int | None = None
    proc: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    short_runs: int = 0  # exits in a row after less than STABLE_S


# Called once every child serves, with the URLs and the demo credential lines.
Banner = Callable[[dict[str, str], list[str]], object]


def shared_settings(settings: Settings, database_url: str | None) -> Settings:
    """The children's settings: the supervisor's database, and rate limits counted in it: in memory,
    each of N processes would count its own share, and a login limit of 5 would allow 5 × N."""
    if settings.rate_limit_store != "postgres":
        log.info("serve --workers: rate limits are counted in PostgreSQL (RATE_LIMIT_STORE=postgres)")
    return msgspec.structs.replace(settings, database_url=database_url, rate_limit_store="postgres")


def exit_reason(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-returncode).name}"
    return f"exit code {returncode}"


class Supervisor:
    """``options``: serve's (its ``roles`` and ``on_ready`` are not used), for every child."""

    def __init__(self, settings: Settings, options: ServeOptions, workers: int, banner: Banner) -> None:
        self.settings = settings
        self.layout = options
        self.workers = workers
        self.banner = banner
        self.stopping = False
        self.sibling_broker: tuple[Address | None, Address | None] | None = None
        metrics = settings.metrics_port
        self.broker = Child(BROKER, BROKER_ROLES)  # serves METRICS_PORT itself, as `serve --only broker` does
        self.api = [
            Child(f"api-{number}", ("api",), metrics + number if metrics else None) for number in range(1, workers + 1)
        ]

    async def run(self, stop: asyncio.Event) -> None:
        layout = self.layout
        try:
            wanted = [
                Wanted(layout.http_host, layout.http_port, HTTP_PORT_FLAG),
                Wanted(layout.mqtt_host, layout.mqtt_port, MQTT_PORT_FLAG),
            ]
            for child in self.api:
                if child.metrics_port is not None:
                    if child.metrics_port > 65535:
                        raise StartupError(f"METRICS_PORT + {self.workers} is past 65535: choose a lower METRICS_PORT")
                    wanted.append(Wanted(layout.http_host, child.metrics_port, f"METRICS_PORT (+ {child.name})"))
            ensure_ports_free(wanted)
        except PortInUse as exc:
            raise StartupError(str(exc)) from None
        async with open_database(self.settings, layout.data_dir, pool_size=1) as db:
            self.settings = shared_settings(self.settings, db.dsn)
            keepers: list[asyncio.Task[None]] = []
            started = asyncio.create_task(self._start_all(keepers))
            try:
                stopped = asyncio.create_task(stop.wait())
                await asyncio.wait([started, stopped], return_when=asyncio.FIRST_COMPLETED)
                if started.done():
                    stopped.cancel()
                    started.result()  # a child that could not start: StartupError
                    await stop.wait()
                else:
                    started.cancel()
            finally:
                self.stopping = True
                log.info("stopping the platform's processes")
                # The API first (no new payments), then the broker (it announces what they took).
                await self._stop(self.api)
                await self._stop([self.broker])
                for task in (started, *keepers):
                    task.cancel()
                await asyncio.gather(started, *keepers, return_exceptions=True)
                await self._stop(self.children())  # one a restart started meanwhile

    async def _start_all(self, keepers: list[asyncio.Task[None]]) -> None:
        broker = await self._start(self.broker, seed_demo=self.layout.demo)
        self.sibling_broker = (broker.broker_plain, broker.broker_tls)
        readies = await asyncio.gather(*(self._start(child) for child in self.api))
        urls = readies[0].urls | {k: v for k, v in broker.urls.items() if k != "metrics"}
        metrics = [ready.urls["metrics"] for ready in (broker, *readies) if "metrics" in ready.urls]
        if metrics:
            urls["metrics"] = ", ".join(metrics)
        log.info(
            "platform processes started",
            extra={"processes": {child.name: child.proc.pid for child in self.children() if child.proc}},
        )
        keepers.extend(asyncio.create_task(self._keep(child)) for child in self.children())
        self.banner(urls, broker.demo_lines)

    def children(self) -> list[Child]:
        return [self.broker, *self.api]

    async def _start(self, child: Child, *, seed_demo: bool = False) -> Ready:
        ready = await self._spawn(child, seed_demo)
        if ready.error is not None:
            raise StartupError(f"{child.name}: {ready.error}")
        return ready

    async def _spawn(self, child: Child, seed_demo: bool) -> Ready:
        """Start ``child`` and wait until it serves, or exits."""
        layout = self.layout
        read_end, write_end = os.pipe()
        spec = ChildSpec(
            name=child.name,
            roles=child.roles,
            settings=self.settings,
            data_dir=str(layout.data_dir),
            broker_config=str(layout.broker_config),
            **{name: getattr(layout, name) for name in _PASSED_AS_IS},
            metrics_port=child.metrics_port,
            seed_demo=seed_demo,
            sibling_broker=self.sibling_broker,
            supervisor_pid=os.getpid(),
            ready_fd=write_end,
        )
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "qris_soundbox.tools.workers",
                child.name,
                stdin=asyncio.subprocess.PIPE,
                pass_fds=(write_end,),
                # Ctrl-C reaches the supervisor alone, which stops the children in order.
                start_new_session=True,
            )
        finally:
            os.close(write_end)
        child.proc, child.started_at = proc, time.monotonic()
        assert proc.stdin is not None
        proc.stdin.write(msgspec.json.encode(spec))
        with contextlib.suppress(ConnectionError):  # it died at once: told below
            await proc.stdin.drain()
        proc.stdin.close()
        report = await _read_to_end(read_end)
        if not report:
            returncode = await proc.wait()
            return Ready(error=f"exited before it served ({exit_reason(returncode)}); its log lines say why")
        return msgspec.json.decode(report, type=Ready)

    async def _keep(self, child: Child) -> None:
        """Restart ``child`` whenever it exits, after a back-off, until the supervisor stops."""
        while child.proc is not None:
            returncode = await child.proc.wait()
            if self.stopping:
                return
            ran_s = time.monotonic() - child.started_at
            child.short_runs = 0 if ran_s >= STABLE_S else child.short_runs + 1
            delay = min(RESTART_MAX_S, RESTART_MIN_S * 2 ** max(0, child.short_runs - 1))
            log.warning(
                "platform process exited; restarting it",
                extra={
                    "child": child.name,
                    "exited_pid": child.proc.pid,
                    "reason": exit_reason(returncode),
                    "ran_s": round(ran_s, 1),
                    "restart_in_s": delay,
                },
            )
            await asyncio.sleep(delay)
            if self.stopping:
                return
            ready = await self._spawn(child, seed_demo=False)
            if ready.error is None:
                log.info("platform process restarted", extra={"child": child.name, "new_pid": child.proc.pid})
            else:
                log.warning("platform process did not restart", extra={"child": child.name, "error": ready.error})

    async def _stop(self, children: list[Child]) -> None:
        running = [child.proc for child in children if child.proc is not None and child.proc.returncode is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        waits = [asyncio.create_task(proc.wait()) for proc in running]
        if not waits:
            return
        _, late = await asyncio.wait(waits, timeout=STOP_TIMEOUT_S)
        for proc in running:
            if proc.returncode is None:
                log.warning("platform process did not stop in time: killed", extra={"child_pid": proc.pid})
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        await asyncio.gather(*waits)

    def forward(self, signum: int) -> None:
        """SIGHUP: the broker reloads its TLS certificate (connected devices stay connected)."""
        proc = self.broker.proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signum)


async def _read_to_end(fd: int) -> bytes:
    """What a child writes to its end of the pipe, once it has closed it (or died)."""
    reader = asyncio.StreamReader()
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
    )
    try:
        return await reader.read()
    finally:
        transport.close()


def run_supervisor(settings: Settings, options: ServeOptions, workers: int, banner: Banner) -> None:
    """``serve --workers N`` (N > 1): until SIGINT/SIGTERM. Raises ``StartupError``."""
    tag_log_lines("supervisor")

    async def main() -> None:
        supervisor = Supervisor(settings, options, workers, banner)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, supervisor.forward, signal.SIGHUP)
        await supervisor.run(stop)

    asyncio.run(main())


class _ProcessTag(logging.Filter):
    """Adds which of the platform's processes wrote a line (``process_name``: supervisor, broker, api-1, ...)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.process_name, self.pid = name, os.getpid()

    def filter(self, record: logging.LogRecord) -> bool:
        record.process_name = self.process_name
        record.pid = self.pid
        return True


def tag_log_lines(name: str) -> None:
    for handler in logging.getLogger().handlers:
        handler.addFilter(_ProcessTag(name))


def _die_with_supervisor(supervisor_pid: int) -> None:
    """SIGTERM (a graceful stop) when the supervisor dies, however it dies."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != supervisor_pid:  # it died before the line above
        sys.exit(0)


def child_main() -> None:
    """A child: read its ``ChildSpec`` from stdin, serve its roles, report through ``ready_fd``."""
    spec = msgspec.json.decode(sys.stdin.buffer.read(), type=ChildSpec)
    _die_with_supervisor(spec.supervisor_pid)
    configure_logging(spec.settings.log_level)
    tag_log_lines(spec.name)

    def report(ready: Ready) -> None:
        with contextlib.suppress(OSError):  # the supervisor is gone: PDEATHSIG stops this process
            os.write(spec.ready_fd, msgspec.json.encode(ready))
            os.close(spec.ready_fd)

    def on_ready(platform: PlatformContext, urls: dict[str, str], demo_lines: list[str]) -> None:
        own = platform.broker is not None
        report(
            Ready(
                urls=urls,
                demo_lines=demo_lines,
                broker_plain=platform.broker_listener if own else None,
                broker_tls=platform.broker_tls_listener if own else None,
            )
        )

    sibling = spec.sibling_broker
    options = ServeOptions(
        roles=frozenset(spec.roles),
        data_dir=Path(spec.data_dir),
        broker_config=Path(spec.broker_config),
        **{name: getattr(spec, name) for name in _PASSED_AS_IS},
        demo=spec.seed_demo,
        on_ready=on_ready,
        reuse_port=True,
        metrics_port=spec.metrics_port,
        migrate=False,
        sibling_broker=Listeners(plain=sibling[0], tls=sibling[1]) if sibling else None,
    )
    try:
        run_until_signal(spec.settings, options)
    except StartupError as exc:
        report(Ready(error=str(exc)))
        sys.exit(1)


if __name__ == "__main__":
    child_main()
