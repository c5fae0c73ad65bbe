"""``.env`` and ``--env-file``: the seed's ``cp .env.example .env`` habit, with the real environment winning."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from qris_soundbox.core.config import _VARIABLES, EnvFileError, apply_env_file, read_env_file

ROOT = Path(__file__).resolve().parents[2]


def _env_file(directory: Path, text: str, name: str = ".env") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def test_lines_comments_quotes_and_export(tmp_path: Path) -> None:
    path = _env_file(
        tmp_path,
        "# a comment\n"
        "\n"
        "PLAIN=value\n"
        "  SPACED = padded value  \n"
        "INLINE=abc # the rest is a comment\n"
        "HASH_INSIDE=abc#def\n"
        "EMPTY=\n"
        "SINGLE='it is $literal \\n # kept'\n"
        'DOUBLE="line one\\nline \\"two\\" \\\\ end" # comment\n'
        "export EXPORTED=yes\n"
        "TWICE=first\n"
        "TWICE=second\n",
    )
    assert read_env_file(path) == {
        "PLAIN": "value",
        "SPACED": "padded value",
        "INLINE": "abc",
        "HASH_INSIDE": "abc#def",
        "EMPTY": "",
        "SINGLE": "it is $literal \\n # kept",
        "DOUBLE": 'line one\nline "two" \\ end',
        "EXPORTED": "yes",
        "TWICE": "second",
    }


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("SECRET_WITHOUT_EQUALS_SIGN", "expected NAME=value"),
        ("9STARTS_WITH_DIGIT=s3cret-value", "expected NAME=value"),
        ("BAD-NAME=s3cret-value", "expected NAME=value"),
        ('UNCLOSED="s3cret-value', "not closed"),
        ("UNCLOSED='s3cret-value", "not closed"),
        ('TRAILING="s3cret-value" junk', "after the closing quote"),
    ],
)
def test_a_malformed_line_names_the_file_and_line_never_the_value(tmp_path: Path, line: str, reason: str) -> None:
    path = _env_file(tmp_path, f"# header\nGOOD=1\n{line}\n")
    with pytest.raises(EnvFileError) as raised:
        read_env_file(path)
    message = str(raised.value)
    assert f"{path}, line 3" in message and reason in message
    assert "s3cret" not in message


def test_the_real_environment_wins_even_when_empty(tmp_path: Path) -> None:
    path = _env_file(tmp_path, "FROM_FILE=file\nSET_BOTH=file\nSET_EMPTY=file\n")
    environ = {"SET_BOTH": "real", "SET_EMPTY": ""}
    apply_env_file(path, environ)
    assert environ == {"SET_BOTH": "real", "SET_EMPTY": "", "FROM_FILE": "file"}


def test_env_example_lists_every_platform_variable() -> None:
    """A variable added to core/config.py without a line in .env.example fails here."""
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^# ([A-Z][A-Z0-9_]*)=", example, flags=re.MULTILINE))
    assert set(_VARIABLES) - listed == set()
    # And the example itself reads: every line is a comment or blank.
    assert read_env_file(ROOT / ".env.example") == {}


async def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "qris_soundbox.tools.cli",
        *args,
        cwd=cwd,
        env={**_without_platform_variables(os.environ), **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode(), err.decode()


def _without_platform_variables(environ: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in environ.items() if name not in _VARIABLES}


async def test_dot_env_in_the_working_directory_is_read_and_the_environment_wins(
    tmp_path: Path, database_url: str
) -> None:
    _env_file(tmp_path, f"DATABASE_URL={database_url}\nQRIS_MAX_AMOUNT=lots\n")
    code, _, err = await _cli("migrate", cwd=tmp_path)
    assert code != 0 and "QRIS_MAX_AMOUNT" in err and "Traceback" not in err

    code, out, err = await _cli("migrate", cwd=tmp_path, env={"QRIS_MAX_AMOUNT": "5000000"})
    assert code == 0, err
    assert "migrations applied" in out


async def test_env_file_option_replaces_dot_env(tmp_path: Path, database_url: str) -> None:
    _env_file(tmp_path, "QRIS_MAX_AMOUNT=lots\n")
    other = _env_file(tmp_path, f"DATABASE_URL='{database_url}'\n", name="production.env")
    code, out, err = await _cli("--env-file", str(other), "migrate", cwd=tmp_path)
    assert code == 0, err
    assert "migrations applied" in out


async def test_a_malformed_or_missing_env_file_is_one_clear_line(tmp_path: Path) -> None:
    _env_file(tmp_path, "# settings\nADMIN_TOKEN=s3cret-admin-token\nnot a setting\n")
    code, _, err = await _cli("migrate", cwd=tmp_path)
    assert code != 0
    assert err.strip() == "qris-soundbox: .env, line 3: expected NAME=value (a name of letters, digits and _)"

    code, _, err = await _cli("--env-file", "missing.env", "migrate", cwd=tmp_path)
    assert code != 0
    assert err.startswith("qris-soundbox: cannot read env file missing.env") and "Traceback" not in err
