"""``qris-soundbox partner add|list|rotate-secret``: the partner registry from a shell.

Thin over ``core.partners.registry``, on the database as ``admin create-user`` is;
the ``client_secret`` is printed once, on its own line, and is not kept anywhere
but encrypted in the database.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import msgspec

from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.errors import DomainError
from qris_soundbox.core.logging import configure_logging
from qris_soundbox.core.paging import page_query
from qris_soundbox.core.partners import registry
from qris_soundbox.core.partners import schemas as s
from qris_soundbox.tools.common import add_registry_options, open_database, registry_settings

CLI_ACTOR = AuditActor(actor_type="system", actor_id="cli")


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("partner", help="cashier and POS partners (SNAP, docs/partners.md)")
    commands = group.add_subparsers(dest="partner_command", required=True)
    add = commands.add_parser("add", help="register a partner and print its client_secret once")
    add.add_argument("--name", required=True)
    add.add_argument("--client-key", required=True, help="the partner's X-CLIENT-KEY / X-PARTNER-ID")
    add.add_argument("--public-key", required=True, type=Path, metavar="PEM_FILE", help="the partner's RSA public key")
    add.add_argument("--notify-url", required=True)
    add.add_argument("--merchant", action="append", default=[], metavar="ID", help="a merchant it may act for (repeat)")
    add.set_defaults(handler=_add)
    listing = commands.add_parser("list", help="the registered partners")
    listing.set_defaults(handler=_list)
    rotate = commands.add_parser("rotate-secret", help="a new client_secret; the current one stays valid a while")
    rotate.add_argument("partner_id")
    rotate.add_argument("--overlap-seconds", type=int, default=86400, help="how long the current secret still works")
    rotate.set_defaults(handler=_rotate)
    for command in (add, listing, rotate):
        add_registry_options(command)


def _run(args: argparse.Namespace, work) -> None:
    settings = registry_settings(args)
    configure_logging(settings.log_level)

    async def run() -> None:
        async with open_database(settings, args.data_dir, pool_size=1) as db, db.transaction() as conn:
            await work(settings, conn)

    try:
        asyncio.run(run())
    except DomainError as exc:
        sys.exit(f"qris-soundbox: {exc.message}")


def _print_secret(partner: s.PartnerWithSecret) -> None:
    print(f"partner {partner.id}  client_key {partner.client_key}")
    print("client_secret (shown once; store it in the partner's vault now):")
    print(partner.client_secret, flush=True)


def _add(args: argparse.Namespace) -> None:
    try:
        pem = args.public_key.read_text()
        data = msgspec.convert(
            {
                "name": args.name,
                "client_key": args.client_key,
                "public_key_pem": pem,
                "notify_url": args.notify_url,
                "merchant_ids": args.merchant,
            },
            s.PartnerCreate,
        )
    except OSError as exc:
        sys.exit(f"qris-soundbox: --public-key: {exc.strerror}")
    except msgspec.ValidationError as exc:
        sys.exit(f"qris-soundbox: {exc}")

    async def work(settings, conn) -> None:
        _print_secret(await registry.create_partner(conn, settings, CLI_ACTOR, data))

    _run(args, work)


def _list(args: argparse.Namespace) -> None:
    async def work(settings, conn) -> None:
        page = await registry.list_partners(conn, page_query(limit=200))
        for partner in page.items:
            merchants = ",".join(partner.merchant_ids) or "-"
            print(f"{partner.id}  {partner.client_key}  {partner.status}  {partner.notify_url}  merchants={merchants}")

    _run(args, work)


def _rotate(args: argparse.Namespace) -> None:
    if not 0 <= args.overlap_seconds <= 7 * 86400:
        sys.exit("qris-soundbox: --overlap-seconds must be between 0 and 604800")

    async def work(settings, conn) -> None:
        _print_secret(await registry.rotate_secret(conn, settings, CLI_ACTOR, args.partner_id, args.overlap_seconds))

    _run(args, work)
