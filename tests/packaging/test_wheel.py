"""The platform as an operator installs it: a wheel in a fresh virtualenv outside the checkout,
run from an empty directory (SPEC §12: broker.yaml, ACL rules, migrations and queries travel
with the package).

How the virtualenv gets its dependencies, offline and in seconds: the wheel is built with the
project venv's own setuptools (``pip wheel --no-build-isolation --no-index``) from a copy of
the source in a temporary directory (so no ``build/`` lands in the checkout and nothing stale
from an earlier build can slip in). The new virtualenv is made without pip and without the
system site-packages; a ``.pth`` file appends the project venv's site-packages after its own, so
the dependencies already installed for the tests are importable while ``qris_soundbox`` itself
comes only from the wheel (the editable install's import hook is another ``.pth`` file of the
project venv, which Python does not run for a directory added this way). The project venv's pip
installs the wheel into it with ``--python``. A real operator runs ``pip install <wheel>`` and
pip fetches the dependencies; what is tested here is what the wheel itself carries.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import site
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import httpx
import pytest

from qris_soundbox.core.db import QUERIES
from qris_soundbox.core.migrations import MIGRATIONS_DIR
from tests.support import free_port
from tests.tools.helpers import LiveCli

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGE_DIRS: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    workdir: Path  # an empty directory outside the checkout, the operator's working directory

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def command(self) -> Path:
        return self.venv / "bin" / "qris-soundbox"


def _run(*command: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run([str(part) for part in command], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _source_copy(target: Path) -> Path:
    """What the wheel is built from: pyproject.toml, the files it names, and the package folders."""
    target.mkdir()
    for name in ("pyproject.toml", PYPROJECT["project"]["readme"], "broker.yaml"):
        shutil.copy2(ROOT / name, target / name)
    for folder in PACKAGE_DIRS.values():
        # symlinks=True: broker/broker.yaml stays a link to ../broker.yaml, as in the checkout.
        shutil.copytree(ROOT / folder, target / folder, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    # Not pytest's tmp_path: as root, the embedded PostgreSQL runs as another user and opens up
    # the directories above its data, and every pytest session on the machine closes its
    # /tmp/pytest-of-<user> again (tests/conftest.py keeps its server in a TemporaryDirectory too).
    with tempfile.TemporaryDirectory(prefix="qris-wheel-") as tmp:
        yield _install(Path(tmp))


def _install(base: Path) -> Installed:
    source = _source_copy(base / "source")
    dist = base / "dist"
    _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-w",
        dist,
        source,
    )
    wheel = next(dist.glob("qris_soundbox-*.whl"))
    venv = base / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    (site_packages,) = (venv / "lib").glob("python*/site-packages")
    (site_packages / "project-dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        venv / "bin" / "python",
        "install",
        "-q",
        "--no-deps",
        "--no-index",
        wheel,
    )
    workdir = base / "operator"
    workdir.mkdir()
    return Installed(wheel, venv, workdir)


def _operator_environment() -> dict[str, str]:
    """The test's environment without what would point the installed platform at the checkout or a database."""
    dropped = {"PYTHONPATH", "DATABASE_URL", "PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE"}
    return {name: value for name, value in os.environ.items() if name not in dropped}


def test_every_non_python_file_of_the_package_folders_is_in_the_wheel(installed: Installed) -> None:
    expected = set()
    for package, folder in PACKAGE_DIRS.items():
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts:
                relative = path.relative_to(ROOT / folder)
                expected.add("/".join([*package.split("."), *relative.parts]))
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        assert expected - names == set()
        # The symlink in the checkout became the file itself.
        assert wheel.read("qris_soundbox/broker/broker.yaml") == (ROOT / "broker.yaml").read_bytes()


def test_the_installed_package_finds_its_files_inside_the_virtualenv(installed: Installed) -> None:
    script = (
        "from qris_soundbox.broker.config import DEFAULT_CONFIG_PATH, load_broker_config\n"
        "from qris_soundbox.core.devices.acl import DEFAULT_RULES_PATH, AclRules\n"
        "from qris_soundbox.core.db import QUERIES\n"
        "from qris_soundbox.core.migrations import MIGRATIONS_DIR\n"
        "import qris_soundbox.core\n"
        "load_broker_config(); AclRules.load()\n"
        "print(qris_soundbox.core.__file__, DEFAULT_CONFIG_PATH, DEFAULT_RULES_PATH, MIGRATIONS_DIR, sep='\\n')\n"
        "print(len(QUERIES), len(list(MIGRATIONS_DIR.glob('*.sql'))))\n"
    )
    *paths, counts = _run(installed.python, "-c", script, cwd=installed.workdir).splitlines()
    for path in paths:
        assert Path(path).is_relative_to(installed.venv), path
    # The same named queries and migrations as the checkout.
    assert counts.split() == [str(len(QUERIES)), str(len(list(MIGRATIONS_DIR.glob("*.sql"))))]


def test_version_is_the_distribution_version(installed: Installed) -> None:
    out = _run(installed.command, "--version", cwd=installed.workdir)
    assert out.strip() == f"qris-soundbox {metadata.version('qris-soundbox')}"


async def test_serve_demo_runs_from_the_wheel_in_an_empty_directory(installed: Installed) -> None:
    http_port, mqtt_port = free_port(), free_port()
    proc = await asyncio.create_subprocess_exec(
        installed.command,
        "serve",
        "--demo",
        "--http-port",
        str(http_port),
        "--mqtt-host",
        "127.0.0.1",
        "--mqtt-port",
        str(mqtt_port),
        cwd=installed.workdir,
        env=_operator_environment(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    serve = LiveCli(proc)
    try:
        await serve.wait_for(lambda line: "QRIS Soundbox Platform is running" in line, timeout=120)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=10) as http:
            response = await http.get("/health/deep")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "ok"
        assert response.json()["broker"]["status"] == "ok"
    finally:
        code, lines = await serve.interrupt(timeout=60)
        serve.kill()
    assert code == 0, "\n".join(lines)
    assert not any("Traceback" in line for line in lines), "\n".join(lines)
    # The embedded PostgreSQL kept its data in ./var of the working directory.
    assert (installed.workdir / "var" / "postgres" / "PG_VERSION").is_file()
