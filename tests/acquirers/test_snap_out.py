"""SNAP out against the simulator as a real process: 50 concurrent generates cost one token request."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from qris_soundbox.core.acquirers.snap_out import AcquirerCallFailed, SnapClient
from qris_soundbox.core.qris import parse_qris
from qris_soundbox.core.snap import wire


@pytest.fixture
async def simulator_url(tmp_path: Path) -> AsyncIterator[str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "qris_soundbox.tools.cli",
        "acquirer",
        "simulate",
        "--port",
        "0",
        "--key-file",
        str(tmp_path / "sim.pem"),
        stdout=asyncio.subprocess.PIPE,
        env=os.environ | {"LOG_LEVEL": "WARNING"},
    )
    try:
        assert process.stdout is not None
        started = json.loads(await asyncio.wait_for(process.stdout.readline(), timeout=60))
        yield f"http://127.0.0.1:{started['port']}"
    finally:
        process.terminate()
        await process.wait()


async def test_fifty_concurrent_generates_take_one_token(simulator_url: str) -> None:
    client = SnapClient(
        code="sim",
        base_url=simulator_url,
        client_key="platform",
        client_secret="s3cret-value",
        private_key_pem=wire.generate_private_key_pem(),
    )
    try:
        answers = await asyncio.gather(
            *(
                client.generate(
                    partner_reference=f"txn-{i}", amount=1000 + i, merchant_id="M1", terminal_id="T1", validity_s=600
                )
                for i in range(50)
            )
        )
    finally:
        await client.aclose()
    assert {a["responseCode"] for a in answers} == {"2004700"}
    assert [parse_qris(a["qrContent"]).amount for a in answers] == [1000 + i for i in range(50)]
    async with httpx.AsyncClient(base_url=simulator_url) as http:
        stats = (await http.get("/simulator/stats")).json()
    assert stats["token"] == 1 and stats["generate"] == 50


async def test_unreachable_acquirer_is_a_clear_error() -> None:
    client = SnapClient(
        code="gone",
        base_url="http://127.0.0.1:9",
        client_key="k",
        client_secret="s",
        private_key_pem=wire.generate_private_key_pem(),
        timeout_s=2,
    )
    try:
        with pytest.raises(AcquirerCallFailed, match="gone"):
            await client.generate(partner_reference="x", amount=1, merchant_id="M", terminal_id="T", validity_s=60)
    finally:
        await client.aclose()
