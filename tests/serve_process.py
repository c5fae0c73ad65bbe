"""``qris-soundbox serve`` as real subprocesses, and a soundbox that acks every payment it hears.

Shared by the tests that kill a process (SIGKILL) or run several nodes on one database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import asyncpg
import msgspec
import psutil

from qris_soundbox.tools.api import DeviceCredential
from tests.devices.helpers import eventually
from tests.support import ADMIN_TOKEN, WEBHOOK_SECRET, free_port

BANNER = "QRIS Soundbox Platform is running"
# How long a device waits for the PUBACK of its ack before it reconnects and sends it again: generous,
# because on a loaded 2-core machine a broker catching up after a restart can take seconds to answer.
ACK_TIMEOUT_S = 30.0


def embedded_env() -> dict[str, str]:
    """The environment of a fresh machine: no DATABASE_URL / PG*, so serve starts its embedded PostgreSQL."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("PG")}
    return env | {"LOG_LEVEL": "WARNING"}


def postmaster_pid(pgdata: Path) -> int | None:
    """The running postmaster of ``pgdata``, from its ``postmaster.pid``."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None
    try:
        running = psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return None
    return pid if running else None


@contextlib.contextmanager
def embedded_data_dir_of(prefix: str) -> Iterator[Path]:
    """A ``--data-dir`` for serve's embedded PostgreSQL outside pytest's tmp_path, which pytest keeps
    private (0700) and the PostgreSQL system user of a root run cannot traverse (concurrent sessions
    close /tmp/pytest-of-root again). A PostgreSQL a failing test leaves in it is stopped."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        pgdata = Path(tmp) / "var" / "postgres"
        try:
            yield pgdata.parent
        finally:
            left = postmaster_pid(pgdata)
            if left is not None:  # a signal, not pg_ctl: pg_ctl refuses to run as root
                postmaster = psutil.Process(left)
                postmaster.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
                with contextlib.suppress(psutil.TimeoutExpired):
                    postmaster.wait(timeout=20)
                if postmaster.is_running():
                    postmaster.kill()


class Serve:
    """``qris-soundbox serve`` as a subprocess on fixed ports (a restart keeps them, as a real host does).

    ``roles``: the ``--only`` parts (all of them when empty); ``workers``: ``--workers N``; ``env``: variables
    on top of the test's; ``args``: more options of ``serve``."""

    def __init__(
        self,
        database_url: str,
        directory: Path,
        *,
        roles: tuple[str, ...] = (),
        workers: int | None = None,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.directory = directory
        self.roles = roles
        self.args = (*args, *(("--workers", str(workers)) if workers else ()))
        self.http_port, self.mqtt_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "INTEGRATION_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.name = f"serve-{'-'.join(roles) or 'all'}{f'-x{workers}' if workers else ''}-{self.mqtt_port}"

    @property
    def log(self) -> Path:
        return self.directory / f"{self.name}-{self.starts}.log"

    async def start(self) -> None:
        self.starts += 1
        with self.log.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "qris_soundbox.tools.cli",
                "serve",
                "--data-dir",
                str(self.directory),
                "--http-port",
                str(self.http_port),
                "--mqtt-host",
                "127.0.0.1",
                "--mqtt-port",
                str(self.mqtt_port),
                *(argument for role in self.roles for argument in ("--only", role)),
                *self.args,
                env=self.env,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )

        async def ready() -> bool:
            assert self.proc is not None and self.proc.returncode is None, self.log.read_text()
            return BANNER in self.log.read_text()

        assert await eventually(ready, timeout=60, interval=0.1), f"serve did not start:\n{self.log.read_text()}"

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: no shutdown handler runs
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            await self.kill()
            raise AssertionError(f"serve did not stop on SIGTERM:\n{self.log.read_text()}") from None


class Device:
    """A soundbox: subscribes to its downlinks, acks every payment, reconnects whenever the broker goes away.
    Records the message ids heard per transaction, the ones whose ack the broker took (PUBACK), and
    each time a message was heard again after its ack had been taken.

    Its acks are at least once, as a firmware's QoS 1 publishes are: an ack whose PUBACK did not come back
    (the broker was killed after taking it, or was too slow to answer within the deadline) is published
    again after the next connect, before subscribing. Without that, an ack the platform recorded but whose PUBACK was lost
    would be missing from ``acked`` for ever: the platform never sends an acknowledged payment again."""

    def __init__(self, credential: DeviceCredential, port: int) -> None:
        self.credential, self.port = credential, port
        self.heard: dict[str, set[str]] = defaultdict(set)
        self.acked: set[str] = set()
        self.unconfirmed: dict[str, None] = {}  # acks published whose PUBACK has not come back, in order
        self.heard_after_ack: list[str] = []
        self.sessions = 0
        self.subscribed = asyncio.Event()

    async def run(self) -> None:
        device_id = self.credential.device_id
        while True:
            try:
                async with aiomqtt.Client(
                    "127.0.0.1",
                    self.port,
                    username=device_id,
                    password=self.credential.secret,
                    identifier=device_id,
                    timeout=5,
                ) as client:
                    # The acks left unconfirmed go first: subscribing makes every unacked downlink due at once,
                    # and a payment whose ack the platform does not have yet is rightly sent again (on the wire
                    # before the ack's PUBACK: it would be taken for a repeat after the ack).
                    for message_id in list(self.unconfirmed):
                        await self._ack(client, message_id)
                    await client.subscribe(f"devices/{device_id}/downlink/#", qos=1)
                    self.sessions += 1
                    self.subscribed.set()
                    async for message in client.messages:
                        if not message.topic.matches(f"devices/{device_id}/downlink/payment"):
                            continue
                        body = msgspec.json.decode(message.payload)
                        if body["message_id"] in self.acked:
                            self.heard_after_ack.append(body["message_id"])
                        self.heard[body["transaction_id"]].add(body["message_id"])
                        await self._ack(client, body["message_id"])
            except aiomqtt.MqttError:
                self.subscribed.clear()
                await asyncio.sleep(0.2)  # a reconnect's back-off, as a device has: not a wait for a condition

    async def _ack(self, client: aiomqtt.Client, message_id: str) -> None:
        self.unconfirmed[message_id] = None
        await client.publish(
            f"devices/{self.credential.device_id}/uplink/payment/ack",
            msgspec.json.encode({"message_id": message_id}),
            qos=1,
            timeout=ACK_TIMEOUT_S,
        )
        self.unconfirmed.pop(message_id, None)
        self.acked.add(message_id)


async def assert_books(db: asyncpg.Pool, terminal_id: str, answered: dict[str, str], amounts: dict[str, int]) -> None:
    """One paid transaction per event id, with exactly three balanced ledger rows of the callback's amount."""
    callbacks = {
        row["event_id"]: row["transaction_id"]
        for row in await db.fetch(
            "SELECT event_id, transaction_id FROM acquirer_callbacks WHERE event_id = ANY($1::text[])", list(answered)
        )
    }
    assert callbacks == answered
    transactions = {
        row["id"]: row
        for row in await db.fetch("SELECT id, status, amount FROM transactions WHERE terminal_id = $1", terminal_id)
    }
    assert set(transactions) == set(answered.values()), "a transaction exists that no callback was answered with"
    ledger: dict[str, dict[str, int]] = defaultdict(dict)
    rows = await db.fetch(
        "SELECT transaction_id, entry_type, amount FROM ledger_entries WHERE transaction_id = ANY($1::text[])",
        list(transactions),
    )
    for row in rows:
        ledger[row["transaction_id"]][row["entry_type"]] = row["amount"]
    assert len(rows) == 3 * len(transactions), "a transaction without exactly three ledger rows"
    for event_id, transaction_id in answered.items():
        transaction, entries = transactions[transaction_id], ledger[transaction_id]
        assert transaction["status"] == "paid"
        assert transaction["amount"] == entries["gross_income"] == amounts[event_id]
        assert entries["platform_fee"] + entries["merchant_payable"] == entries["gross_income"]
