"""``qris-soundbox seed``: the demo data of ``serve --demo`` (idempotent), and its logins."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from qris_soundbox.core.demo import banner_lines, seed_demo_data
from qris_soundbox.core.logging import configure_logging
from qris_soundbox.tools.common import open_database, settings_or_exit


def register(sub: argparse._SubParsersAction) -> None:
    seed = sub.add_parser("seed", help="create the demo merchant, terminal and users if missing (development only)")
    seed.add_argument("--data-dir", type=Path, default=Path("var"), help="embedded PostgreSQL (default ./var)")
    seed.set_defaults(handler=_seed)


def _seed(args: argparse.Namespace) -> None:
    settings = settings_or_exit()
    configure_logging(settings.log_level)

    async def run() -> list[str]:
        async with open_database(settings, args.data_dir, pool_size=1) as db:
            data = await seed_demo_data(db)
        created = ", ".join(data.created) if data.created else "nothing (all demo data existed)"
        return [f"created: {created}", *banner_lines(data)]

    print("\n".join(asyncio.run(run())), flush=True)
