"""``qris-soundbox admin create-user`` and ``qris-soundbox merchant create-user``.

The password is prompted for (twice, not echoed) on a terminal, read from
standard input with ``--password-stdin`` (scripts), or given as ``--password``, which stays for the earlier implementation's scripts, but it
lands in shell history. ``--rotate-password`` sets a new password on an
existing user and ends all of their sessions.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.auth import ADMIN_ROLES, MERCHANT_ROLES
from qris_soundbox.core.errors import DomainError
from qris_soundbox.core.logging import configure_logging
from qris_soundbox.core.merchants import service as merchants
from qris_soundbox.core.users import service as users
from qris_soundbox.core.users.passwords import check_policy
from qris_soundbox.tools.common import open_database, prompt_secret, secret_from_stdin, settings_or_exit

CLI_ACTOR = AuditActor(actor_type="system", actor_id="cli")


def register(sub: argparse._SubParsersAction) -> None:
    for kind, article, roles in (("admin", "an", ADMIN_ROLES), ("merchant", "a", MERCHANT_ROLES)):
        group = sub.add_parser(kind, help=f"{kind} users")
        commands = group.add_subparsers(dest=f"{kind}_command", required=True)
        create = commands.add_parser(
            "create-user",
            help=f"create {article} {kind} user, or rotate their password",
            description=f"Create {article} {kind} user; with --rotate-password, set a new password on an existing one.",
        )
        if kind == "merchant":
            create.add_argument("--merchant", required=True, metavar="ID|CODE", help="merchant id or code (M000001)")
        create.add_argument("--email", required=True)
        create.add_argument("--name", required=True)
        create.add_argument("--role", required=True, choices=roles)
        given = create.add_mutually_exclusive_group()
        given.add_argument("--password", help="omit to be prompted (keeps it out of shell history)")
        given.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
        create.add_argument(
            "--rotate-password", action="store_true", help="the user exists: set this password and end their sessions"
        )
        create.add_argument("--data-dir", type=Path, default=Path("var"), help="embedded PostgreSQL (default ./var)")
        create.set_defaults(handler=_create_user, kind=kind)


def _create_user(args: argparse.Namespace) -> None:
    settings = settings_or_exit()
    configure_logging(settings.log_level)
    if args.password_stdin:
        password = secret_from_stdin("the password")
    elif args.password is not None:
        password = args.password
    else:
        password = prompt_secret("the password", "give --password-stdin (or --password)", confirm=True)
    try:
        check_policy(password)  # before the database starts: a typo costs nothing
        message = asyncio.run(_create_or_rotate(settings, args, password))
    except DomainError as exc:
        sys.exit(f"qris-soundbox: {exc.message}")
    print(message, flush=True)


async def _create_or_rotate(settings, args: argparse.Namespace, password: str) -> str:
    kind = args.kind
    async with open_database(settings, args.data_dir, pool_size=1) as db, db.transaction() as conn:
        merchant_id = None
        if kind == "merchant":
            merchant_id = (await merchants.find_merchant(conn, args.merchant)).id
        existing = await users.find_user(conn, kind, args.email)
        if existing is not None:
            if not args.rotate_password:
                raise users.UserExists(
                    f"{kind} user {existing.email} exists; add --rotate-password to set a new password"
                )
            if kind == "merchant" and existing.merchant_id != merchant_id:
                raise users.UserExists(f"{existing.email} belongs to another merchant ({existing.merchant_id})")
            await users.rotate_password(conn, CLI_ACTOR, kind, existing.id, password)
            return f"password rotated for {kind} user {existing.email} ({existing.id}); their sessions were ended"
        user = await users.create_user(
            conn,
            CLI_ACTOR,
            kind,
            email=args.email,
            name=args.name,
            role=args.role,
            password=password,
            merchant_id=merchant_id,
        )
        where = f" of merchant {merchant_id}" if merchant_id else ""
        return f"created {kind} user {user.email} ({user.role}){where}: {user.id}"
