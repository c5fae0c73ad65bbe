"""SNAP notify throughput against the platform's own callback, in the same run (issue 24).

Starts ``serve`` with its own embedded PostgreSQL (``serve_process`` of
bench/http_payments.py, rate limits off), onboards two merchants with a terminal
each through the API, registers two SNAP acquirers (one symmetric, one
asymmetric, keys made here) and attaches one merchant to each. Then, in
alternating rounds at 32 concurrent clients (aiohttp), sends static-QR paid
notifications, each with a new reference:

1. ``POST /integrations/qris/callback`` (HMAC-SHA256), the baseline;
2. ``POST /v1.0/qr/qr-mpm-notify`` symmetric (HMAC-SHA512, one B2B token got first);
3. ``POST /v1.0/qr/qr-mpm-notify`` asymmetric (SHA256withRSA verified on every request).

Requests are signed before the clock starts for each (signing is the sender's
cost, RSA signing especially); the figure is the server's.

Usage: ``.venv/bin/python bench/snap_notify.py [--quick] [--no-write]``.
Writes the "SNAP notify" section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
from common import machine_rows, write_section
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from serving import ADMIN_TOKEN, CONCURRENCY, WEBHOOK_SECRET, machine, serve_process, uptime

from qris_soundbox.tools.api import AdminApi, callback_body, callback_headers
from qris_soundbox.tools.loadtest import Burst, burst, expect_status

BEGIN, END = "<!-- snap-notify:begin -->", "<!-- snap-notify:end -->"
SECRET = "bench-snap-client-secret"
NOTIFY = "/v1.0/qr/qr-mpm-notify"
GOAL = 0.8  # SNAP notify at least 80 % of the callback's throughput
WIB = timezone(timedelta(hours=7))


def ts() -> str:
    return datetime.now(UTC).astimezone(WIB).isoformat(timespec="seconds")


def rsa_b64(key: rsa.RSAPrivateKey, message: str) -> str:
    return base64.b64encode(key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def snap_body(terminal: str) -> bytes:
    body = {
        "originalReferenceNo": uuid.uuid4().hex[:20],
        "latestTransactionStatus": "00",
        "amount": {"value": "25000.00", "currency": "IDR"},
        "additionalInfo": {"terminalId": terminal},
    }
    return json.dumps(body, separators=(",", ":")).encode()


def snap_request(
    key: rsa.RSAPrivateKey, client_key: str, terminal: str, token: str | None
) -> tuple[bytes, dict[str, str]]:
    raw = snap_body(terminal)
    now = ts()
    digest = hashlib.sha256(raw).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-TIMESTAMP": now,
        "X-PARTNER-ID": client_key,
        "X-EXTERNAL-ID": uuid.uuid4().hex,
        "CHANNEL-ID": "95221",
    }
    if token:
        headers["Authorization"] = f"Bearer {token}"
        message = f"POST:{NOTIFY}:{token}:{digest}:{now}"
        headers["X-SIGNATURE"] = base64.b64encode(
            hmac.new(SECRET.encode(), message.encode(), hashlib.sha512).digest()
        ).decode()
    else:
        headers["X-SIGNATURE"] = rsa_b64(key, f"POST:{NOTIFY}:{digest}:{now}")
    return raw, headers


async def setup(base_url: str) -> dict[str, Any]:
    world: dict[str, Any] = {}
    async with AdminApi(base_url, ADMIN_TOKEN) as api:
        for mode in ("symmetric", "asymmetric", "callback"):
            made = await api.onboard_terminal(f"Bench {mode}")
            world[f"{mode}_terminal"] = made["terminal"]
            if mode == "callback":
                continue
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            settings = {"client_key": f"bench-{mode}", "public_key_pem": pem.decode(), "notify_signature": mode}
            if mode == "symmetric":
                settings["client_secret"] = SECRET
            auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            answer = await api.http.post(
                "/admin/acquirers",
                headers=auth,
                json={"code": f"bench-{mode[:3]}", "name": mode, "protocol": "snap", "settings": settings},
            )
            answer.raise_for_status()
            answer = await api.http.put(
                f"/admin/merchants/{made['merchant']['id']}/acquirer",
                headers=auth,
                json={"acquirer_code": f"bench-{mode[:3]}"},
            )
            answer.raise_for_status()
            world[f"{mode}_key"] = key
        now = ts()
        answer = await api.http.post(
            "/v1.0/access-token/b2b",
            content=b'{"grantType":"client_credentials"}',
            headers={
                "Content-Type": "application/json",
                "X-CLIENT-KEY": "bench-symmetric",
                "X-TIMESTAMP": now,
                "X-SIGNATURE": rsa_b64(world["symmetric_key"], f"bench-symmetric|{now}"),
            },
        )
        answer.raise_for_status()
        world["token"] = answer.json()["accessToken"]
    return world


async def measure(base_url: str, world: dict[str, Any], seconds: float, rounds: int) -> dict[str, list[Burst]]:
    results: dict[str, list[Burst]] = {"callback": [], "snap symmetric": [], "snap asymmetric": []}
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(base_url, connector=connector) as http:

        async def callback(_: int) -> str | None:
            raw = json.dumps(callback_body(25_000, terminal_id=world["callback_terminal"]["id"])).encode()
            error, _ = await expect_status(
                http.post("/integrations/qris/callback", data=raw, headers=callback_headers(WEBHOOK_SECRET, raw)), 200
            )
            return error

        def snap(mode: str) -> Any:
            terminal = world[f"{mode}_terminal"]["terminal_code"]
            token = world["token"] if mode == "symmetric" else None

            async def send(_: int) -> str | None:
                raw, headers = snap_request(world[f"{mode}_key"], f"bench-{mode}", terminal, token)
                error, body = await expect_status(http.post(NOTIFY, data=raw, headers=headers), 200)
                return error or (None if body and body.get("responseCode") == "2005200" else "not 2005200")

            return send

        sends = {"callback": callback, "snap symmetric": snap("symmetric"), "snap asymmetric": snap("asymmetric")}
        for _ in range(rounds):
            for name, send in sends.items():
                results[name].append(await burst(name, 10**9, CONCURRENCY, send, time.monotonic() + seconds))
    return results


def render(
    results: dict[str, list[Burst]], info: dict[str, str], load: tuple[str, str], seconds: float, rounds: int
) -> str:
    def total(name: str) -> dict[str, Any]:
        bursts = results[name]
        count = sum(len(b.latencies_ms) for b in bursts)
        spent = sum(b.seconds for b in bursts)
        latencies = sorted(ms for b in bursts for ms in b.latencies_ms)
        errors = sum(sum(b.errors.values()) for b in bursts)
        pct = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else 0.0  # noqa: E731
        return {
            "rps": count / spent if spent else 0.0,
            "p50": pct(0.5),
            "p95": pct(0.95),
            "errors": errors,
            "count": count,
        }

    base = total("callback")
    lines = [
        BEGIN,
        "## SNAP notify against the platform callback",
        "",
        f"`bench/snap_notify.py`, {rounds} alternating rounds of {seconds:g} s each at {CONCURRENCY} concurrent "
        "clients, static-QR paid notifications with new references, one `serve` with its own embedded PostgreSQL.",
        "",
        *machine_rows(info, load),
        "",
        "| route | requests | errors | req/s | p50 ms | p95 ms | of the callback's req/s | goal ≥ 80 % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in results:
        t = total(name)
        share = t["rps"] / base["rps"] if base["rps"] else 0.0
        verdict = "—" if name == "callback" else ("met" if share >= GOAL else "missed")
        lines.append(
            f"| {name} | {t['count']} | {t['errors']} | {t['rps']:.0f} | {t['p50']:.1f} | {t['p95']:.1f} "
            f"| {share:.0%} | {verdict} |"
        )
    lines += [
        "",
        "The asymmetric row verifies one SHA256withRSA (2048-bit) signature per request; the symmetric "
        "row one HMAC-SHA512 plus a token lookup (one indexed read). Both add the acquirer lookup and the "
        "X-EXTERNAL-ID claim (one INSERT each) to the callback's path.",
        END,
    ]
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    seconds, rounds = (3.0, 2) if args.quick else (10.0, 3)
    os.environ.setdefault("SECRETS_ENCRYPTION_KEY", "YmVuY2gtc2VjcmV0cy1lbmNyeXB0aW9uLWtleS0zMiE=")
    load_before = uptime()
    with tempfile.TemporaryDirectory(prefix="bench-snap-") as tmp:
        async with serve_process(Path(tmp)) as platform:
            world = await setup(platform.base_url)
            results = await measure(platform.base_url, world, seconds, rounds)
    text = render(results, machine(), (load_before, uptime()), seconds, rounds)
    print(text)
    if not args.no_write:
        write_section(text, BEGIN, END)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
