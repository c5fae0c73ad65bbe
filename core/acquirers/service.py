"""The acquirer registry: create, list, change; settings checked per protocol, secrets sealed.

Settings are split on the way in: what may be shown goes to ``acquirers.settings``,
the secrets (per protocol, ``SECRET_FIELDS``) are sealed with ``SECRETS_ENCRYPTION_KEY``
into ``acquirers.secrets``. Answers and audit rows carry the secrets' names only.
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import msgspec

from qris_soundbox.core import audit
from qris_soundbox.core.acquirers.errors import AcquirerNotFound, AcquirerSettingsInvalid, AcquirerTaken
from qris_soundbox.core.acquirers.schemas import Acquirer, MerchantAcquirerAnswer, TerminalAcquirerIdAnswer
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.db import QUERIES, Connection, fetch_one
from qris_soundbox.core.errors import NotFound
from qris_soundbox.core.ids import new_id
from qris_soundbox.core.paging import PageQuery
from qris_soundbox.core.schemas import Page
from qris_soundbox.core.secrets import SecretBox
from qris_soundbox.core.snap import wire

MASK = "********"
CODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
PAYMENT_STATUSES = ("paid", "failed", "expired", "ignore")
# latestTransactionStatus → what the platform does (SPEC §13). ``ignore``: acknowledged, nothing changes
# (initiated, paying, pending: a later notification or query answer settles it; refunded: the refund's own path).
DEFAULT_SNAP_STATUS_MAP = {
    "00": "paid",
    "01": "ignore",
    "02": "ignore",
    "03": "ignore",
    "04": "ignore",
    "05": "failed",
    "06": "failed",
    "07": "ignore",
}

SECRET_FIELDS: dict[str, frozenset[str]] = {
    "snap": frozenset({"client_secret", "private_key_pem"}),
    "midtrans": frozenset({"server_key"}),
    "xendit": frozenset({"callback_token"}),
    "doku": frozenset({"secret_key"}),
    "platform": frozenset(),
}
SHOWN_FIELDS: dict[str, frozenset[str]] = {
    "snap": frozenset(
        {"client_key", "public_key_pem", "notify_signature", "base_url", "channel_id", "status_map", "answer_signature"}
    ),
    "midtrans": frozenset(),
    "xendit": frozenset(),
    "doku": frozenset({"client_id"}),
    "platform": frozenset(),
}


def _invalid(field: str, message: str) -> AcquirerSettingsInvalid:
    return AcquirerSettingsInvalid(f"settings.{field}: {message}", details={"field": f"settings.{field}"})


def _text(field: str, value: Any, limit: int = 256) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit or "\x00" in value:
        raise _invalid(field, f"a non-empty text of at most {limit} characters")
    return value.strip() if not field.endswith("_pem") else value


def _check(protocol: str, shown: dict[str, Any], secrets: dict[str, str]) -> None:
    """Every protocol's rules on the merged settings, so a PATCH cannot leave an acquirer unusable."""
    if protocol != "snap":
        needed = SECRET_FIELDS[protocol] | ({"client_id"} if protocol == "doku" else set())
        for field in sorted(needed - set(shown) - set(secrets)):
            raise _invalid(field, f"required for protocol {protocol}")
        return
    for field in ("client_key", "public_key_pem"):
        if field not in shown:
            raise _invalid(field, "required for protocol snap")
    try:
        wire.load_public_key(shown["public_key_pem"])
    except ValueError as exc:
        raise _invalid("public_key_pem", str(exc)) from None
    if "private_key_pem" in secrets:
        try:
            wire.load_private_key(secrets["private_key_pem"])
        except ValueError as exc:
            raise _invalid("private_key_pem", str(exc)) from None
    mode = shown.setdefault("notify_signature", "symmetric")
    if mode not in ("symmetric", "asymmetric"):
        raise _invalid("notify_signature", "symmetric or asymmetric")
    if mode == "symmetric" and "client_secret" not in secrets:
        raise _invalid("client_secret", "required when notify_signature is symmetric")
    if shown.get("answer_signature", "optional") not in ("optional", "required"):
        raise _invalid("answer_signature", "optional (checked when the answer carries X-SIGNATURE) or required")
    if "base_url" in shown and not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", shown["base_url"]):
        raise _invalid("base_url", "an http(s) URL")
    status_map = shown.get("status_map", {})
    if not isinstance(status_map, dict) or not all(
        isinstance(k, str) and re.fullmatch(r"[0-9]{2}", k) and v in PAYMENT_STATUSES for k, v in status_map.items()
    ):
        raise _invalid("status_map", f'{{"NN": one of {", ".join(PAYMENT_STATUSES)}}}')


def _split(protocol: str, settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    shown: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for field, value in settings.items():
        if field in SECRET_FIELDS[protocol]:
            secrets[field] = _text(field, value, 8192)
        elif field in SHOWN_FIELDS[protocol]:
            shown[field] = value if field == "status_map" else _text(field, value, 8192)
        else:
            raise _invalid(field, f"not a setting of protocol {protocol}")
    return shown, secrets


def acquirer_of(row: asyncpg.Record) -> Acquirer:
    settings = dict(row["settings"]) | {name: MASK for name in row["secret_names"]}
    return Acquirer(
        id=row["id"],
        code=row["code"],
        name=row["name"],
        protocol=row["protocol"],
        settings=settings,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _audit_payload(row: asyncpg.Record) -> dict[str, Any]:
    # Names of the secrets only: an audit row is read by more people than the registry.
    return {
        "code": row["code"],
        "protocol": row["protocol"],
        "settings": sorted(row["settings"]),
        "secrets_set": list(row["secret_names"]),
    }


async def _client_key_not_a_partners(conn: Connection, shown: dict[str, Any]) -> None:
    """X-CLIENT-KEY is how the token endpoint tells an acquirer from a partner: it must name one of them
    (the partner registry refuses an acquirer's key the same way; migration 165 holds it under concurrency)."""
    key = shown.get("client_key")
    if key is not None and await conn.fetchrow(QUERIES["partner_by_client_key"], key) is not None:
        raise AcquirerTaken(f"client key {key} is a partner's", details={"field": "settings.client_key"})


async def create_acquirer(
    conn: Connection,
    box: SecretBox,
    actor: AuditActor,
    *,
    code: str,
    name: str,
    protocol: str,
    settings: dict[str, Any],
) -> Acquirer:
    if not CODE.fullmatch(code):
        raise AcquirerSettingsInvalid(
            "code: 1–32 of a-z 0-9 _ -, starting with a letter or digit", details={"field": "code"}
        )
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise AcquirerSettingsInvalid("name: 1–200 characters", details={"field": "name"})
    shown, secrets = _split(protocol, settings)
    _check(protocol, shown, secrets)
    await _client_key_not_a_partners(conn, shown)
    try:
        row = await fetch_one(
            conn,
            "insert_acquirer",
            new_id("acq"),
            code,
            name,
            protocol,
            shown,
            box.seal(secrets),
            sorted(secrets),
        )
    except asyncpg.UniqueViolationError:
        raise AcquirerTaken("another acquirer already has this code or client_key") from None
    await audit.record(
        conn, actor, "acquirer.created", entity_type="acquirer", entity_id=row["id"], payload=_audit_payload(row)
    )
    return acquirer_of(row)


async def list_acquirers(conn: Connection, page: PageQuery) -> Page[Acquirer]:
    rows = await conn.fetch(QUERIES["list_acquirers"], page.cursor, page.fetch_limit)
    return page.page(rows, acquirer_of)


async def acquirer_row(conn: Connection, code: str) -> asyncpg.Record:
    row = await conn.fetchrow(QUERIES["acquirer_by_code"], code)
    if row is None:
        raise AcquirerNotFound(f"acquirer {code} does not exist", details={"code": code})
    return row


async def update_acquirer(
    conn: Connection,
    box: SecretBox,
    actor: AuditActor,
    code: str,
    *,
    name: str | None,
    settings: dict[str, Any] | None,
) -> Acquirer:
    row = await conn.fetchrow(QUERIES["acquirer_by_code_for_update"], code)
    if row is None:
        raise AcquirerNotFound(f"acquirer {code} does not exist", details={"code": code})
    protocol = row["protocol"]
    shown = dict(row["settings"])
    secrets = box.open(row["secrets"])
    if settings:
        removed = {field for field, value in settings.items() if value is None}
        new_shown, new_secrets = _split(protocol, {k: v for k, v in settings.items() if v is not None})
        shown = {k: v for k, v in (shown | new_shown).items() if k not in removed}
        secrets = {k: v for k, v in (secrets | new_secrets).items() if k not in removed}
    _check(protocol, shown, secrets)
    new_name = row["name"] if name is None else name.strip()
    if not 1 <= len(new_name) <= 200:
        raise AcquirerSettingsInvalid("name: 1–200 characters", details={"field": "name"})
    await _client_key_not_a_partners(conn, shown)
    try:
        updated = await fetch_one(conn, "update_acquirer", code, new_name, shown, box.seal(secrets), sorted(secrets))
    except asyncpg.UniqueViolationError:
        raise AcquirerTaken("another acquirer already has this client_key") from None
    await audit.record(
        conn,
        actor,
        "acquirer.updated",
        entity_type="acquirer",
        entity_id=row["id"],
        payload=_audit_payload(updated) | {"changed": sorted(settings or {})},
    )
    return acquirer_of(updated)


async def rotate_secrets(conn: Connection, box: SecretBox) -> int:
    """Re-encrypt every acquirer's secrets under the newest key; how many rows."""
    rows = await conn.fetch(QUERIES["sealed_acquirer_secrets"])
    for row in rows:
        await conn.execute(QUERIES["reseal_acquirer_secrets"], row["code"], box.rotate(row["secrets"]))
    return len(rows)


async def set_merchant_acquirer(
    conn: Connection, actor: AuditActor, merchant_id: str, acquirer_code: str | None, acquirer_merchant_id: str | None
) -> MerchantAcquirerAnswer:
    if acquirer_code is not None:
        await acquirer_row(conn, acquirer_code)
    if acquirer_merchant_id is not None and not 1 <= len(acquirer_merchant_id) <= 64:
        raise AcquirerSettingsInvalid(
            "acquirer_merchant_id: 1–64 characters", details={"field": "acquirer_merchant_id"}
        )
    row = await conn.fetchrow(QUERIES["set_merchant_acquirer"], merchant_id, acquirer_code, acquirer_merchant_id)
    if row is None:
        raise NotFound(f"merchant {merchant_id} does not exist", details={"merchant_id": merchant_id})
    await audit.record(
        conn,
        actor,
        "merchant.acquirer_set",
        entity_type="merchant",
        entity_id=merchant_id,
        merchant_id=merchant_id,
        payload=dict(row),
    )
    return msgspec.convert(dict(row), MerchantAcquirerAnswer)


async def set_terminal_acquirer_id(
    conn: Connection, actor: AuditActor, terminal_id: str, acquirer_terminal_id: str | None
) -> TerminalAcquirerIdAnswer:
    if acquirer_terminal_id is not None and not 1 <= len(acquirer_terminal_id) <= 64:
        raise AcquirerSettingsInvalid(
            "acquirer_terminal_id: 1–64 characters", details={"field": "acquirer_terminal_id"}
        )
    row = await conn.fetchrow(QUERIES["set_terminal_acquirer_id"], terminal_id, acquirer_terminal_id)
    if row is None:
        raise NotFound(f"terminal {terminal_id} does not exist", details={"terminal_id": terminal_id})
    await audit.record(
        conn, actor, "terminal.acquirer_id_set", entity_type="terminal", entity_id=terminal_id, payload=dict(row)
    )
    return msgspec.convert(dict(row), TerminalAcquirerIdAnswer)
