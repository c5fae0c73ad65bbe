"""The acquirer simulator (``qris-soundbox acquirer simulate``) as a real process, for the tests of SNAP out."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


@dataclass
class Simulator:
    url: str
    client_key: str
    public_key_pem: str
    control: httpx.AsyncClient

    async def config(self, **settings: Any) -> None:
        answer = await self.control.post("/simulator/config", json=settings)
        assert answer.status_code == 200, answer.text

    async def stats(self) -> dict[str, int]:
        return (await self.control.get("/simulator/stats")).json()


@asynccontextmanager
async def simulator_process(key_file: Path, *args: str) -> AsyncIterator[Simulator]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "qris_soundbox.tools.cli",
        "acquirer",
        "simulate",
        "--port",
        "0",
        "--key-file",
        str(key_file),
        *args,
        stdout=asyncio.subprocess.PIPE,
        env=os.environ | {"LOG_LEVEL": "WARNING"},
    )
    try:
        assert process.stdout is not None
        started = json.loads(await asyncio.wait_for(process.stdout.readline(), timeout=60))
        url = f"http://127.0.0.1:{started['port']}"
        async with httpx.AsyncClient(base_url=url, timeout=30) as control:
            yield Simulator(url, started["client_key"], started["public_key_pem"], control)
    finally:
        process.terminate()
        await process.wait()
