"""``qris-soundbox acquirer add|list|set|rotate-secrets`` (and ``simulate``, tools/acquirer_simulator.py): the acquirer registry from a shell.

Secrets are prompted for (not echoed) with ``--secret NAME``, or read from a
file with ``--secret-file NAME=PATH`` (a PEM key); they never go on the command
line. ``--setting NAME=VALUE`` and ``--setting-file NAME=PATH`` give the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from qris_soundbox.core.acquirers import service
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.errors import DomainError
from qris_soundbox.core.logging import configure_logging
from qris_soundbox.core.paging import page_query
from qris_soundbox.core.partners import registry
from qris_soundbox.core.secrets import SecretBox
from qris_soundbox.tools import acquirer_simulator
from qris_soundbox.tools.common import add_registry_options, open_database, prompt_secret, registry_settings

CLI_ACTOR = AuditActor(actor_type="system", actor_id="cli")
PROTOCOLS = ("snap", "midtrans", "xendit", "doku", "platform")


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("acquirer", help="the acquirer registry (docs/acquirers.md)")
    commands = group.add_subparsers(dest="acquirer_command", required=True)
    add = commands.add_parser("add", help="register an acquirer")
    add.add_argument("--code", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--protocol", required=True, choices=PROTOCOLS)
    change = commands.add_parser("set", help="change an acquirer's name or settings")
    change.add_argument("code")
    change.add_argument("--name")
    for command in (add, change):
        command.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE")
        command.add_argument("--setting-file", action="append", default=[], metavar="NAME=PATH")
        command.add_argument("--secret", action="append", default=[], metavar="NAME", help="prompted for")
        command.add_argument("--secret-file", action="append", default=[], metavar="NAME=PATH")
    listing = commands.add_parser("list", help="list acquirers (secrets masked)")
    rotate = commands.add_parser(
        "rotate-secrets", help="re-encrypt every secret under the first SECRETS_ENCRYPTION_KEY"
    )
    for command in (add, change, listing, rotate):
        add_registry_options(command)
    acquirer_simulator.register(commands)
    add.set_defaults(handler=_run(_add))
    change.set_defaults(handler=_run(_set))
    listing.set_defaults(handler=_run(_list))
    rotate.set_defaults(handler=_run(_rotate))


def _pairs(items: list[str], flag: str) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            sys.exit(f"qris-soundbox: {flag} takes NAME=VALUE, got {item!r}")
        pairs.append((name, value))
    return pairs


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for name, value in _pairs(args.setting, "--setting"):
        # status_map is an object: given as JSON.
        settings[name] = json.loads(value) if name == "status_map" else value
    for name, path in _pairs(args.setting_file, "--setting-file") + _pairs(args.secret_file, "--secret-file"):
        settings[name] = Path(path).read_text()
    for name in args.secret:
        settings[name] = prompt_secret(name, f"or give it from a file with --secret-file {name}=PATH")
    return settings


def _run(action: Any) -> Any:
    def handler(args: argparse.Namespace) -> None:
        settings = registry_settings(args)
        configure_logging(settings.log_level)
        try:
            print(asyncio.run(action(settings, args)), flush=True)
        except (DomainError, OSError, ValueError) as exc:
            sys.exit(f"qris-soundbox: {getattr(exc, 'message', exc)}")

    return handler


def _shown(acquirer: Any) -> str:
    return msgspec.json.encode(acquirer).decode()


async def _add(settings: Any, args: argparse.Namespace) -> str:
    values = _settings(args)
    async with open_database(settings, args.data_dir, pool_size=1) as db, db.transaction() as conn:
        made = await service.create_acquirer(
            conn,
            SecretBox.of(settings),
            CLI_ACTOR,
            code=args.code,
            name=args.name,
            protocol=args.protocol,
            settings=values,
        )
    return _shown(made)


async def _set(settings: Any, args: argparse.Namespace) -> str:
    values = _settings(args)
    async with open_database(settings, args.data_dir, pool_size=1) as db, db.transaction() as conn:
        changed = await service.update_acquirer(
            conn, SecretBox.of(settings), CLI_ACTOR, args.code, name=args.name, settings=values or None
        )
    return _shown(changed)


async def _list(settings: Any, args: argparse.Namespace) -> str:
    async with open_database(settings, args.data_dir, pool_size=1) as db, db.transaction() as conn:
        page = await service.list_acquirers(conn, page_query(200))
    return "\n".join(f"{a.code}\t{a.protocol}\t{a.name}\t{json.dumps(a.settings, sort_keys=True)}" for a in page.items)


async def _rotate(settings: Any, args: argparse.Namespace) -> str:
    async with open_database(settings, args.data_dir, pool_size=1) as db, db.transaction() as conn:
        box = SecretBox.of(settings)
        acquirers = await service.rotate_secrets(conn, box)
        partners = await registry.rotate_secrets(conn, box)
    return (
        f"re-encrypted the secrets of {acquirers} acquirer(s) and {partners} partner(s) "
        "under the first SECRETS_ENCRYPTION_KEY"
    )
