"""What the benchmarks share: a free loopback port, and rewriting their own section of docs/performance.md.

The benchmarks run as scripts (``python bench/<name>.py``), so this folder is on
``sys.path`` and they import this module as ``common``.
"""

from __future__ import annotations

import socket
from pathlib import Path

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def machine_rows(info: dict[str, str], load: tuple[str, str]) -> list[str]:
    """The table each section opens with: the machine, and how busy it was before and after the run."""
    return [
        "| machine | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in info.items()),
        f"| load before | {load[0]} |",
        f"| load after | {load[1]} |",
    ]


def write_section(text: str, begin: str, end: str) -> None:
    """Replace the text between ``begin`` and ``end`` (markers included in ``text``), or append it;
    every other benchmark's section and the hand-written notes are left as they are."""
    current = DOC.read_text() if DOC.exists() else "# Performance\n"
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        current = head + text + rest.split(end, 1)[1]
    else:
        current = current.rstrip("\n") + "\n\n" + text + "\n"
    DOC.write_text(current)


def publish(text: str, begin: str, end: str, *, no_write: bool) -> None:
    """``--no-write``: print the section; else rewrite it in docs/performance.md and say so."""
    if no_write:
        print(text)
    else:
        write_section(text, begin, end)
        print(f"wrote {DOC}")
