"""Several broker nodes on one PostgreSQL: what a second node costs, per node and in the database.

A sibling of ``bench/broker_scale.py``, whose fleet machinery it uses (the
hand-written MQTT client, ``provisioned_fleet``, ``Fleet``, the broker
process with its bench control socket): each broker node is
``serve --only broker`` with broker.yaml's plugins and the real device auth,
all on one PostgreSQL (embedded in a temporary directory, or DATABASE_URL).

Measured, with one node holding the whole fleet and with two nodes holding
half each:

1. PostgreSQL writes per second per 10,000 connected idle devices over a
   steady window once every device is connected and subscribed: rows
   written per table (``pg_stat_user_tables``), transactions
   (``pg_stat_database``), WAL bytes and, where the server loads it,
   ``pg_stat_statements`` per statement. On the embedded
   server the bench turns ``pg_stat_statements`` on itself (``ALTER SYSTEM``
   and a restart before any node starts). A fraction of the fleet
   (``--heartbeat-fraction``) sends the MQTT heartbeat soundboxes are asked to
   send every 60 s (docs/devices.md), each device at its own phase.
2. Per-node figures: connect + subscribe rate with real device auth, RSS per
   session, QoS 1 downlink latency at 1,000 msg/s (through the control
   socket, as broker_scale does), and the node's CPU while the fleet idles.
   With two nodes each is measured in turn (the other holding its half), so
   a node's figure can be set against the single node's at the same number
   of sessions. Connect runs are repeated on freshly started nodes (a node
   caches the secrets it verified), latency runs on the same sessions; the
   median is reported with every run's figure, the machine being shared.
3. Cross-node routing: an API + broker process and a broker-only process,
   signed callbacks to the first at a steady rate, half of them for devices
   on the same process and half for devices on the other node; callback →
   announcement latency at the device (which acks each announcement).

Usage: ``.venv/bin/python bench/broker_nodes.py [--quick] [--heartbeat-fraction F] [--no-write]``.
Writes the "Several broker nodes" section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from common import DOC, write_section
from fleet import (
    BrokerProcess,
    Credentials,
    Fleet,
    announcement_client,
    broker_machine,
    downlink_latency,
    downlink_sender,
    latency_percentiles,
    load_rows,
    provisioned_fleet,
    publish_packet,
    raise_fd_limit,
    start_platform_broker,
    verify_cost,
)
from serving import ADMIN_TOKEN, WEBHOOK_SECRET, enable_pg_stat_statements, serve_process

BEGIN, END = "<!-- broker-nodes:begin -->", "<!-- broker-nodes:end -->"
HEARTBEAT_INTERVAL_S = 60.0  # docs/devices.md: the interval devices are asked to keep
PER_10K = 10_000


@dataclass(frozen=True)
class Plan:
    devices: int  # the whole fleet: one node holds all of it, or two nodes half each
    warmup_s: float  # after the last SUBSCRIBE, before the steady window opens
    window_s: float
    rate: int  # downlinks per second for the latency figure
    latency_s: float
    latency_runs: int  # the run with the median p99 is reported, with the spread of the p99s
    connect_runs: int  # connect + subscribe runs to the half fleet: the median is reported
    cross_devices: int  # per process, for the cross-node routing figure
    cross_rate: int  # callbacks per second
    cross_s: float


FULL = Plan(
    devices=10_000,
    warmup_s=15,  # longer than PostgreSQL's 10 s at most before an idle backend reports its counters
    window_s=60,
    rate=1_000,
    latency_s=5,
    latency_runs=3,
    connect_runs=3,
    cross_devices=10,
    cross_rate=50,
    cross_s=20,
)
QUICK = Plan(
    devices=1_000,
    warmup_s=2,
    window_s=10,
    rate=1_000,
    latency_s=2,
    latency_runs=2,
    connect_runs=2,
    cross_devices=3,
    cross_rate=50,
    cross_s=4,
)


# ---- PostgreSQL: what the window wrote --------------------------------------------------------------------------


@dataclass
class Snapshot:
    at: float
    database: dict[str, int]
    wal_lsn: str
    tables: dict[str, tuple[int, int, int]]


async def snapshot(db: object) -> Snapshot:
    pool = db.pool  # type: ignore[attr-defined]
    row = await pool.fetchrow(
        "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted, pg_current_wal_lsn()::text AS lsn"
        " FROM pg_stat_database WHERE datname = current_database()"
    )
    tables = await pool.fetch("SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables")
    return Snapshot(
        time.perf_counter(),
        {key: row[key] for key in ("xact_commit", "tup_inserted", "tup_updated", "tup_deleted")},
        row["lsn"],
        {t["relname"]: (t["n_tup_ins"], t["n_tup_upd"], t["n_tup_del"]) for t in tables},
    )


async def window_writes(db: object, before: Snapshot, after: Snapshot, statements: bool) -> dict[str, object]:
    """Per-second rates between two snapshots (the sampling's own transactions are a handful: left in)."""
    pool = db.pool  # type: ignore[attr-defined]
    seconds = after.at - before.at
    rates: dict[str, object] = {key: (after.database[key] - before.database[key]) / seconds for key in before.database}
    rates["wal_bytes"] = (
        await pool.fetchval(
            "SELECT pg_wal_lsn_diff($1::text::pg_lsn, $2::text::pg_lsn)::float8", after.wal_lsn, before.wal_lsn
        )
        / seconds
    )
    tables = {}
    for name, counts in after.tables.items():
        previous = before.tables.get(name, (0, 0, 0))
        delta = [(now - then) / seconds for now, then in zip(counts, previous, strict=True)]
        if any(delta):
            tables[name] = delta
    rates["tables"] = tables
    if statements:
        rows = await pool.fetch(
            "SELECT queryid, query, calls, rows FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE"
            " datname = current_database()) AND query NOT ILIKE '%pg_stat%' AND query NOT ILIKE '%pg_current_wal%'"
            " AND query NOT ILIKE '%pg_wal_lsn_diff%' ORDER BY calls DESC LIMIT 30"
        )
        rates["statements"] = [
            (r["queryid"], " ".join(r["query"].split()), r["calls"] / seconds, r["rows"] / seconds) for r in rows
        ]
    return rates


class OtherWork:
    """The share of the machine's cores busy with work other than the bench's own over a phase: every CPU
    second the machine spent, less this process's and its children's (the nodes, once they are stopped and
    waited for) and the embedded PostgreSQL's (its postmaster, its backends and the backends it reaped)."""

    def __init__(self, postmaster: int | None) -> None:
        self.postmaster = psutil.Process(postmaster) if postmaster else None
        self.started = (0.0, 0.0, 0.0)

    @staticmethod
    def _tree(process: psutil.Process) -> float:
        own = process.cpu_times()
        total = own.user + own.system + own.children_user + own.children_system
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                times = child.cpu_times()
                total += times.user + times.system
        return total

    def _sample(self) -> tuple[float, float, float]:
        machine = psutil.cpu_times()
        busy = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
        database = self._tree(self.postmaster) if self.postmaster is not None else 0.0
        return time.monotonic(), busy, self._tree(psutil.Process()) + database

    def start(self) -> None:
        self.started = self._sample()

    def share(self) -> float:
        at, busy, ours = self._sample()
        return max(0.0, (busy - self.started[1]) - (ours - self.started[2])) / (
            (at - self.started[0]) * psutil.cpu_count()
        )


def postmaster_pid(workdir: Path, external: bool) -> int | None:
    """The embedded server's postmaster (first line of postmaster.pid); None for a server of your own."""
    if external:
        return None
    return int((workdir / "postgres" / "postmaster.pid").read_text().split()[0])


# ---- the idle fleet: heartbeats and the steady window ------------------------------------------------------------


@dataclass
class Heartbeats:
    """Heartbeats from a fraction of the fleet, each device every ``HEARTBEAT_INTERVAL_S`` at its own phase."""

    fleets: list[Fleet]
    fraction: float
    sent: int = 0
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _run(self) -> None:
        rng = random.Random(7)
        members = [(fleet, i) for fleet in self.fleets for i in range(len(fleet.clients))]
        chosen = rng.sample(members, round(self.fraction * len(members)))
        schedule = sorted((rng.uniform(0, HEARTBEAT_INTERVAL_S), fleet, i) for fleet, i in chosen)
        if not schedule:
            return
        start, index, cycle = time.perf_counter(), 0, 0
        while True:
            now = time.perf_counter() - start
            while cycle * HEARTBEAT_INTERVAL_S + schedule[index][0] <= now:
                _, fleet, i = schedule[index]
                device = fleet.credentials.ids[i]
                payload = json.dumps(
                    {"battery_level": 87, "network_strength": 64, "firmware_version": "bench-1.0", "uptime_s": int(now)}
                ).encode()
                topic = f"devices/{device}/uplink/heartbeat".encode()
                fleet.clients[i].write(publish_packet(topic, payload, 1, self.sent % 65535 + 1))
                self.sent += 1
                index += 1
                if index == len(schedule):
                    index, cycle = 0, cycle + 1
            await asyncio.sleep(0.01)


async def steady_window(
    db: object, nodes: list[BrokerProcess], fleets: list[Fleet], plan: Plan, fraction: float, statements: bool
) -> dict[str, object]:
    """Every device connected and idle (but for heartbeats): what PostgreSQL writes and what each node burns."""
    heartbeats = Heartbeats(fleets, fraction)
    heartbeats.start()
    try:
        await asyncio.sleep(plan.warmup_s)
        if statements:
            await db.pool.execute("SELECT pg_stat_statements_reset()")  # type: ignore[attr-defined]
        before, sent_before = await snapshot(db), heartbeats.sent
        cpu_before = [node.cpu_seconds() for node in nodes]
        await asyncio.sleep(plan.window_s)
        after, sent_after = await snapshot(db), heartbeats.sent
        cpu_after = [node.cpu_seconds() for node in nodes]
    finally:
        await heartbeats.stop()
    seconds = after.at - before.at
    result = await window_writes(db, before, after, statements)
    result.update(
        seconds=seconds,
        devices=sum(len(fleet.clients) for fleet in fleets),
        heartbeats_per_s=(sent_after - sent_before) / seconds,
        node_cpu=[(a - b) / seconds for a, b in zip(cpu_after, cpu_before, strict=True)],
    )
    return result


# ---- per node: connect, memory, downlink latency ------------------------------------------------------------------


async def grow(fleet: Fleet, target: int) -> dict[str, object]:
    rss_before = fleet.broker.rss
    first = len(fleet.clients)
    rate = await fleet.grow(target)
    await asyncio.sleep(0.5)
    rss = fleet.broker.rss
    return {
        "connect_rate": rate,
        "connect_runs": [rate],
        "sessions": target,
        "rss": rss,
        "rss_per_session": (rss - rss_before) / (target - first),
    }


async def fresh_node_grown(
    db: object, workdir: Path, credentials: Credentials, target: int, runs: int
) -> tuple[Fleet, dict[str, object]]:
    """A node holding ``target`` devices, their connect + subscribe measured ``runs`` times, each time on a
    freshly started node (a node remembers the secrets it verified: a second run on the same node would
    hash nothing); the runs before the last are stopped again. The median rate and every run's rate."""
    rates: list[float] = []
    for run in range(runs):
        node = await start_platform_broker(argparse.Namespace(auth="devices", profile=None), workdir, node_dsn(db))
        fleet = Fleet(node, credentials)
        try:
            stats = await grow(fleet, target)
        except BaseException:
            node.stop()
            raise
        rates.append(float(stats["connect_rate"]))  # type: ignore[arg-type]
        if run < runs - 1:
            for client in fleet.clients:
                client.close()
            node.stop()
    return fleet, {**stats, "connect_rate": sorted(rates)[len(rates) // 2], "connect_runs": rates}


async def latency(fleet: Fleet, plan: Plan) -> dict[str, object]:
    """``latency_runs`` runs on a machine others share: the one with the median p99, and every run's p99."""
    send, close = await downlink_sender(fleet, 0)
    try:
        runs = [await downlink_latency(fleet, send, plan.rate, plan.latency_s) for _ in range(plan.latency_runs)]
    finally:
        close()
    runs.sort(key=lambda run: run["p99"])
    return {**runs[len(runs) // 2], "lost": sum(run["lost"] for run in runs), "p99_runs": [r["p99"] for r in runs]}


def close_fleets(fleets: list[Fleet]) -> None:
    for fleet in fleets:
        for client in fleet.clients:
            client.close()
        fleet.broker.stop()


async def one_node(
    db: object, workdir: Path, credentials: Credentials, plan: Plan, fraction: float, statements: bool
) -> dict[str, object]:
    half = plan.devices // 2
    whole = Credentials(credentials.ids[: plan.devices], credentials.secrets[: plan.devices])
    fleet, first = await fresh_node_grown(db, workdir, whole, half, plan.connect_runs)
    try:
        result: dict[str, object] = {"half": {**first, **await latency(fleet, plan)}}
        print(f"  1 node, {half:,} sessions: {result['half']}", flush=True)
        result["all"] = {**await grow(fleet, plan.devices), **await latency(fleet, plan)}
        print(f"  1 node, {plan.devices:,} sessions: {result['all']}", flush=True)
        result["window"] = await steady_window(db, [fleet.broker], [fleet], plan, fraction, statements)
        print(f"  1 node, steady window: {result['window']}", flush=True)
    finally:
        close_fleets([fleet])
    return result


async def two_nodes(
    db: object, workdir: Path, credentials: Credentials, plan: Plan, fraction: float, statements: bool
) -> dict[str, object]:
    half = plan.devices // 2
    fleets: list[Fleet] = []
    result: dict[str, object] = {}
    try:
        for i, name in enumerate("AB"):
            mine = Credentials(
                credentials.ids[i * half : (i + 1) * half], credentials.secrets[i * half : (i + 1) * half]
            )
            fleet, result[name] = await fresh_node_grown(db, workdir, mine, half, plan.connect_runs)
            fleets.append(fleet)
            print(f"  2 nodes, node {name} connects {half:,}: {result[name]}", flush=True)
        for name, fleet in zip("AB", fleets, strict=True):
            result[name].update(await latency(fleet, plan))  # type: ignore[attr-defined]
            print(f"  2 nodes, node {name} downlinks: {result[name]}", flush=True)
        result["window"] = await steady_window(db, [f.broker for f in fleets], fleets, plan, fraction, statements)
        print(f"  2 nodes, steady window: {result['window']}", flush=True)
    finally:
        close_fleets(fleets)
    return result


def node_dsn(db: object) -> str | None:
    """None with DATABASE_URL / PG* set (the nodes find it in the environment), else the embedded server's DSN."""
    from qris_soundbox.core.config import load_settings
    from qris_soundbox.core.embedded_pg import external_database_configured

    return None if external_database_configured(load_settings().database_url) else db.dsn  # type: ignore[attr-defined]


# ---- cross-node routing: callback -> announcement ------------------------------------------------------------------


async def cross_node(dsn: str, workdir: Path, plan: Plan) -> dict[str, object]:
    """An API + broker process and a broker-only process; callbacks to the first for devices on both."""
    import aiohttp

    from qris_soundbox.tools.api import AdminApi, callback_body, callback_headers

    received: dict[str, float] = {}
    clients = []
    nodes = contextlib.AsyncExitStack()
    try:
        for name in ("front", "other"):
            (workdir / name).mkdir(exist_ok=True)
        front = await nodes.enter_async_context(
            serve_process(workdir / "front", dsn, ("--only", "api", "--only", "broker"))
        )
        other = await nodes.enter_async_context(serve_process(workdir / "other", dsn, ("--only", "broker")))
        terminals: list[str] = []
        async with AdminApi(front.base_url, ADMIN_TOKEN) as admin:
            onboarded = await admin.onboard_terminal(f"Bench Nodes {os.getpid() % 100_000}")
            for index in range(2 * plan.cross_devices):
                terminal = (
                    onboarded["terminal"]
                    if index == 0
                    else await admin.create_terminal(onboarded["outlet"]["id"], {"name": f"Kasir {index}"})
                )
                terminals.append(terminal["id"])
                credential = await admin.provision_device(
                    f"BENCH-NODES-{time.time_ns()}", "generic-audio", terminal["id"]
                )
                port = (front if index < plan.cross_devices else other).mqtt_port
                clients.append(await announcement_client(port, credential.device_id, credential.secret, received))
        sent: dict[str, tuple[float, str]] = {}
        total = int(plan.cross_rate * (plan.cross_s + 1))  # the first second warms up and is not counted
        async with aiohttp.ClientSession(base_url=front.base_url) as http:

            async def callback(index: int) -> None:
                where = "same process" if index % 2 == 0 else "other node"
                device = (index // 2) % plan.cross_devices + (0 if where == "same process" else plan.cross_devices)
                raw = json.dumps(callback_body(amount=10_000 + index, terminal_id=terminals[device])).encode()
                started = time.perf_counter()
                async with http.post(
                    "/integrations/qris/callback", data=raw, headers=callback_headers(WEBHOOK_SECRET, raw)
                ) as response:
                    body = await response.json()
                    if response.status != 200:
                        raise RuntimeError(f"callback answered {response.status}: {body}")
                if index >= plan.cross_rate:
                    sent[body["transaction_id"]] = (started, where)

            start, pending = time.perf_counter(), []
            for index in range(total):
                await asyncio.sleep(max(0.0, start + index / plan.cross_rate - time.perf_counter()))
                pending.append(asyncio.create_task(callback(index)))
            await asyncio.gather(*pending)
        deadline = time.perf_counter() + 15
        while not set(sent) <= set(received) and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        result: dict[str, object] = {}
        for where in ("same process", "other node"):
            mine = [txn for txn, (_, w) in sent.items() if w == where]
            latencies = [received[txn] - sent[txn][0] for txn in mine if txn in received]
            result[where] = {"sent": len(mine), "lost": len(mine) - len(latencies), **latency_percentiles(latencies)}
            print(f"  callback -> announcement, {where}: {result[where]}", flush=True)
        return result
    finally:
        for client in clients:
            client.close()
        await nodes.aclose()


# ---- report --------------------------------------------------------------------------------------------------------


# Statements shown as one row each: asyncpg's reset of a connection returned to the pool, and transaction brackets.
STATEMENT_LABELS = {
    "SELECT pg_advisory_unlock_all()": "asyncpg's reset of a connection returned to the pool"
    " (`CLOSE ALL`, `UNLISTEN *`, `RESET ALL`, `pg_advisory_unlock_all()`: one each)",
    "BEGIN": "`BEGIN` … `COMMIT` (explicit transactions)",
}
FOLDED = {"CLOSE ALL", "RESET ALL", "UNLISTEN *", "COMMIT"}


def rows_written(window: dict[str, object]) -> float:
    return sum(sum(counts) for counts in window["tables"].values())  # type: ignore[attr-defined]


def per_10k(window: dict[str, object], value: float) -> float:
    return value * PER_10K / int(window["devices"])  # type: ignore[call-overload]


def within(value: float, reference: float, higher_is_better: bool) -> str:
    change = (value - reference) / reference if reference else float("nan")
    worse = -change if higher_is_better else change
    return f"{change:+.0%} ({'> 10% worse' if worse > 0.10 else 'not 10% worse'})"


def render(
    plan: Plan,
    quick: bool,
    fraction: float,
    single: dict[str, object],
    pair: dict[str, object],
    cross: dict[str, object],
    facts: dict[str, object],
    statements_note: str | None,
    info: dict[str, str],
    load: tuple[tuple[float, ...], tuple[float, ...]],
    seconds: float,
) -> str:
    half = plan.devices // 2
    w1, w2 = single["window"], pair["window"]
    lines = [
        BEGIN,
        "",
        "## Several broker nodes",
        "",
        f"`bench/broker_nodes.py{' --quick' if quick else ''} --heartbeat-fraction {fraction:g}`,"
        f" {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {seconds:.0f} s. Every broker node is"
        " `serve --only broker` with broker.yaml's plugins and the real device auth (argon2id,"
        f" {facts['verify_ms']:.2f} ms per verify here), on {facts['database']}; {plan.devices:,} provisioned"
        " devices held by one node, then by two nodes half each. The load generator, the nodes and PostgreSQL"
        " share this machine's two cores with other developers' work (see the load).",
        "",
        *load_rows(info, load),
        f"| other work, one node phase | {single['other_work']:.0%} of the cores |",
        f"| other work, two nodes phase | {pair['other_work']:.0%} of the cores |",
        f"| other work, cross-node phase | {cross['other_work']:.0%} of the cores |",
        "",
        "Other work = CPU the machine spent outside the bench, its nodes and its PostgreSQL during that phase"
        " (other developers' tests): a phase that had much more of it than another is not a fair comparison.",
        "",
        "### PostgreSQL writes per 10,000 connected devices",
        "",
        f"Over a steady window of {w1['seconds']:.0f} s once every device is connected and subscribed; a fraction"  # type: ignore[index]
        f" {fraction:g} of the fleet sends the MQTT heartbeat every {HEARTBEAT_INTERVAL_S:.0f} s (docs/devices.md),"
        " each device at its own phase; no payments. Rows from `pg_stat_user_tables`, transactions from"
        " `pg_stat_database` (a statement outside a transaction counts as one, reads included), WAL from the"
        " server's WAL position (the whole server: autovacuum and checkpoints' full-page images included, so"
        " noisy); per second, scaled to 10,000 devices.",
        "",
        f"| per second, per 10,000 devices | 1 node, {plan.devices:,} devices | 2 nodes, {half:,} each |",
        "|---|---|---|",
    ]

    def both(label: str, pick: object, digits: int = 1) -> None:
        a, b = pick(w1), pick(w2)  # type: ignore[operator]
        lines.append(f"| {label} | {a:,.{digits}f} | {b:,.{digits}f} |")

    both("MQTT heartbeats sent by the devices", lambda w: per_10k(w, w["heartbeats_per_s"]))
    both("**rows written to the platform's tables**", lambda w: per_10k(w, rows_written(w)))
    both("transactions committed (reads included)", lambda w: per_10k(w, w["xact_commit"]))
    both("WAL written, whole server (KB)", lambda w: per_10k(w, w["wal_bytes"]) / 1000)
    tables = sorted(set(w1["tables"]) | set(w2["tables"]))  # type: ignore[arg-type]
    for table in tables:
        for column, what in enumerate(("inserted", "updated", "deleted")):
            values = [w["tables"].get(table, (0, 0, 0))[column] for w in (w1, w2)]  # type: ignore[attr-defined]
            if any(values):
                lines.append(
                    f"| rows {what} in `{table}` | {per_10k(w1, values[0]):,.2f} | {per_10k(w2, values[1]):,.2f} |"
                )
    node_cpu = lambda w: ", ".join(f"{100 * c:.1f}%" for c in w["node_cpu"])  # noqa: E731
    lines += [
        f"| broker node CPU while idle (each node, not scaled) | {node_cpu(w1)} | {node_cpu(w2)} |",
        "",
    ]
    if statements_note is None:
        lines += [
            "`pg_stat_statements` over the same windows, the most frequent statements (calls per second, scaled to"
            " 10,000 devices; reads included):",
            "",
            "| statement | 1 node | 2 nodes |",
            "|---|---|---|",
        ]
        calls: dict[int, list[float]] = {}  # by queryid: the text kept may differ between windows
        texts: dict[int, str] = {}
        for column, window in enumerate((w1, w2)):
            for queryid, query, per_s, _rows in window.get("statements", []):  # type: ignore[attr-defined]
                if query in STATEMENT_LABELS or query not in FOLDED:
                    calls.setdefault(queryid, [0.0, 0.0])[column] = per_10k(window, per_s)
                    texts.setdefault(queryid, query)
        for queryid, (a, b) in sorted(calls.items(), key=lambda kv: -max(kv[1]))[:12]:
            query = texts[queryid]
            text = query if len(query) <= 90 else query[:87] + "..."
            label = STATEMENT_LABELS.get(query, f"`{text.replace('|', '/')}`")
            lines.append(f"| {label} | {a:,.2f} | {b:,.2f} |")
        lines.append("")
    else:
        lines += [f"No per-statement figures: {statements_note}.", ""]

    one_half, one_all = single["half"], single["all"]
    lines += [
        "### Per node, against one node",
        "",
        f"Connect + subscribe with real device auth from 0 to {half:,} sessions ({plan.connect_runs} runs, each on a"
        " freshly started node so that every secret is hashed; the median is shown), then downlinks (QoS 1, through"
        f" the bench control socket into `deliver_to_client`) at {plan.rate:,} msg/s, {plan.latency_runs} runs of"
        f" {plan.latency_s:g} s: the run with the median p99 is shown, and every run's p99 below. With"
        " two nodes each node is measured in turn while the other holds its half; with one node the same figures"
        f" at {half:,} sessions (and at {plan.devices:,}). Change = node against the single node at the same"
        " number of sessions; whether it is more than 10% worse.",
        "",
        f"| figure | 1 node at {half:,} | 1 node at {plan.devices:,} | node A at {half:,} (2 nodes) | change |"
        f" node B at {half:,} (2 nodes) | change |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = (
        ("connect + subscribe (sessions/s)", "connect_rate", "{:,.0f}", True, 1),
        ("RSS per session (KB)", "rss_per_session", "{:,.1f}", False, 1 / 1000),
        ("RSS (MiB)", "rss", "{:,.1f}", False, 1 / 2**20),
        (f"downlink p50 at {plan.rate:,} msg/s (ms)", "p50", "{:,.2f}", False, 1),
        (f"downlink p99 at {plan.rate:,} msg/s (ms)", "p99", "{:,.2f}", False, 1),
        ("downlinks lost", "lost", "{:,.0f}", False, 1),
    )
    for label, key, fmt, higher, scale in rows:
        a, b = pair["A"][key] * scale, pair["B"][key] * scale  # type: ignore[index]
        ref = one_half[key] * scale  # type: ignore[index]
        lines.append(
            f"| {label} | {fmt.format(ref)} | {fmt.format(one_all[key] * scale)} | {fmt.format(a)} |"  # type: ignore[index]
            f" {within(a, ref, higher) if key != 'lost' else ''} | {fmt.format(b)} |"
            f" {within(b, ref, higher) if key != 'lost' else ''} |"
        )
    for label, key, fmt in (
        ("connect + subscribe of each run (sessions/s)", "connect_runs", "{:,.0f}"),
        ("downlink p99 of each run (ms)", "p99_runs", "{:.2f}"),
    ):
        runs = [", ".join(fmt.format(v) for v in r[key]) for r in (one_half, one_all, pair["A"], pair["B"])]  # type: ignore[index]
        lines.append(f"| {label} | {runs[0]} | {runs[1]} | {runs[2]} | | {runs[3]} | |")
    same, other = cross["same process"], cross["other node"]
    lines += [
        "",
        "### Cross-node routing: callback → announcement",
        "",
        f"One `serve --only api --only broker` process takes every signed callback (aiohttp, {plan.cross_rate}/s for"
        f" {plan.cross_s:g} s after a second of warm-up, alternating); {plan.cross_devices} devices are connected to"
        f" it and {plan.cross_devices} to a `serve --only broker` node; each device acks every announcement. Latency"
        " = from just before the HTTP request to the device hearing the payment, so it includes the callback's own"
        " handling; the difference between the columns is the cost of the other node.",
        "",
        "| | same process | other node | other node adds |",
        "|---|---|---|---|",
    ]
    for name in ("p50", "p95", "p99", "max"):
        a, b = same[name], other[name]  # type: ignore[index]
        lines.append(f"| {name} (ms) | {a:,.1f} | {b:,.1f} | {b - a:+,.1f} |")
    lines += [
        f"| announced / sent | {same['sent'] - same['lost']:,} / {same['sent']:,} |"  # type: ignore[index,operator]
        f" {other['sent'] - other['lost']:,} / {other['sent']:,} | |",  # type: ignore[index,operator]
        "",
        END,
    ]
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> int:
    plan = QUICK if args.quick else FULL
    info = {name: value for name, value in broker_machine().items() if name != "Mosquitto"}
    load_before = os.getloadavg()
    started = time.perf_counter()
    facts: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="broker-nodes-") as tmp:
        workdir = Path(tmp)
        print(f"provisioning {plan.devices:,} devices ...", flush=True)
        async with provisioned_fleet(workdir, plan.devices, facts) as (db, credentials):
            facts["verify_ms"] = 1000 * verify_cost()
            external = facts["database"] == "DATABASE_URL"
            note = await enable_pg_stat_statements(db, workdir, external)
            statements = note is None
            print(f"  {facts}; pg_stat_statements: {note or 'on'}", flush=True)
            other = OtherWork(postmaster_pid(workdir, external))
            print("one node ...", flush=True)
            other.start()
            single = await one_node(db, workdir, credentials, plan, args.heartbeat_fraction, statements)
            single["other_work"] = other.share()
            print(f"two nodes ... (other work during one node: {single['other_work']:.0%})", flush=True)
            other.start()
            pair = await two_nodes(db, workdir, credentials, plan, args.heartbeat_fraction, statements)
            pair["other_work"] = other.share()
            print(f"cross-node routing ... (other work during two nodes: {pair['other_work']:.0%})", flush=True)
            other.start()
            cross = await cross_node(str(facts["dsn"]), workdir, plan)
            cross["other_work"] = other.share()
    load = (load_before, os.getloadavg())
    text = render(
        plan,
        args.quick,
        args.heartbeat_fraction,
        single,
        pair,
        cross,
        facts,
        note,
        info,
        load,
        time.perf_counter() - started,
    )
    print(text)
    if not args.no_write:
        write_section(text, BEGIN, END)
        print(f"written to {DOC}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 devices, short windows: checks that it runs")
    parser.add_argument(
        "--heartbeat-fraction",
        type=float,
        default=1.0,
        help="share of the fleet sending the MQTT heartbeat every 60 s (0: idle devices send nothing)",
    )
    parser.add_argument("--no-write", action="store_true", help="print the tables, leave docs/performance.md alone")
    args = parser.parse_args()
    raise_fd_limit()
    import uvloop

    return uvloop.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
