"""Running the ``qris-soundbox`` CLI as an operator does: a real subprocess, its output read as it comes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path


async def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    cwd: Path | None = None,
    stdin: bytes | None = None,
) -> tuple[int, str, str]:
    """Exit code, stdout, stderr. stdin is a pipe (``stdin`` or nothing), never a terminal, as under cron or CI."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "qris_soundbox.tools.cli",
        *args,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin or b""), timeout=timeout)
    return proc.returncode or 0, out.decode(), err.decode()


class LiveCli:
    """A long-running subcommand (the simulator): wait for lines, then interrupt it like Ctrl-C."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    @classmethod
    async def start(cls, *args: str, env: dict[str, str] | None = None) -> LiveCli:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "qris_soundbox.tools.cli",
            *args,
            env={**os.environ, **(env or {})},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        return cls(proc)

    async def wait_for(self, wanted: Callable[[str], bool], timeout: float = 15) -> str:
        """The first line (already read or still to come) for which ``wanted`` is true."""
        for line in self.lines:
            if wanted(line):
                return line
        assert self.proc.stdout is not None

        async def next_match() -> str:
            while True:
                raw = await self.proc.stdout.readline()  # type: ignore[union-attr]
                if not raw:
                    raise AssertionError("the command ended first; its output:\n" + "\n".join(self.lines))
                line = raw.decode().rstrip("\n")
                self.lines.append(line)
                if wanted(line):
                    return line

        try:
            return await asyncio.wait_for(next_match(), timeout)
        except TimeoutError:
            raise AssertionError(f"no such line within {timeout} s; output so far:\n" + "\n".join(self.lines)) from None

    async def interrupt(self, timeout: float = 20) -> tuple[int, list[str]]:
        """Ctrl-C, then the exit code and the whole output."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(self.proc.communicate(), timeout)
        self.lines += rest.decode().splitlines()
        return self.proc.returncode or 0, self.lines

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
