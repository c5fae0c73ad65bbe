"""Platform settings read from the environment, validated once at start-up.

The variable names are the earlier Node.js implementation's, so operators can
switch without renaming anything. A bad value stops start-up with a message that
names the variable (``ConfigError``).

An env file (``.env`` in the working directory, or ``--env-file PATH``) fills in
variables the environment does not set: see ``apply_env_file``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path
from typing import TypeVar

import msgspec

T = TypeVar("T")

# No QRIS amount comes near this (100 × Bank Indonesia's Rp10,000,000 cap for one payment): an amount
# above it is malformed wherever it arrives (API body, callback, SNAP notify, adjustment), and no
# setting goes above it. Held in the database too (sql/migrations/166).
AMOUNT_CEILING = 1_000_000_000


class ConfigError(Exception):
    """A configuration value is invalid; the message names the variable."""


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    database_url: str | None = None
    # A direct (not pooled) connection for what holds a session: LISTEN, the migration lock, pg_dump's
    # snapshot. Unset: DATABASE_URL. Set when DATABASE_URL goes through PgBouncer in transaction mode.
    database_listen_url: str | None = None
    # asyncpg's prepared-statement cache per connection; 0 behind PgBouncer < 1.21 in transaction mode
    # (Debian 12 ships 1.18), where a named statement may be run on another server connection.
    database_statement_cache_size: int = 512
    admin_token: str | None = None
    device_token: str | None = None
    # The shared DEVICE_TOKEN lets its holder act as any device: off unless asked for (core/devices/legacy_token.py).
    device_auth_allow_legacy_token: bool = False
    # One or more HMAC keys of the acquirer callback, comma-separated (a rotation accepts old and new): webhook_secrets.
    integration_webhook_secret: str | None = None
    # Fernet keys encrypting acquirers' and partners' secrets at rest, comma-separated, newest first (core/secrets.py).
    secrets_encryption_key: str | None = None
    # The largest single QRIS payment, whole rupiah (Bank Indonesia; docs/finance.md).
    qris_max_amount: int = 10_000_000
    # An operator's refund above this many rupiah waits for a second person's approval (docs/finance.md).
    refund_approval_above: int = 1_000_000
    # Give the merchant back the MDR of what it refunds (in proportion); Bank Indonesia's rule keeps it (SPEC §15).
    finance_refund_returns_mdr: bool = False
    # The largest settlement adjustment, either sign, whole rupiah: a bigger correction is several rows.
    finance_max_adjustment: int = 100_000_000
    dynamic_qr_expiry_scheduler_enabled: bool = True
    dynamic_qr_expiry_sweep_interval_ms: int = 30_000
    dynamic_qr_expiry_sweep_limit: int = 500
    dynamic_qr_ttl_seconds: int = 900
    payment_announcement_max_age_seconds: int = 300
    # SNAP calls out to acquirers (docs/acquirers.md "Calls out"): one attempt's timeout, the circuit breaker,
    # and the qr-mpm-query poller of live acquirer-issued QRs (how often one QR is asked about, how many a round).
    acquirer_call_timeout_seconds: int = 10
    acquirer_circuit_failures: int = 5
    acquirer_circuit_open_seconds: int = 30
    acquirer_query_interval_ms: int = 3_000
    acquirer_query_batch: int = 50
    # Job snap.purge: expired B2B tokens and old X-EXTERNAL-ID claims, at most this many of each a round.
    snap_purge_interval_seconds: int = 300
    snap_purge_batch: int = 5_000
    export_worker_enabled: bool = True
    export_worker_interval_ms: int = 5_000
    export_worker_batch_size: int = 5
    export_storage_dir: str = "var/exports"
    export_retention_days: int = 7
    export_job_stale_running_ms: int = 600_000
    export_settlement_adjustment_max_rows: int = 100_000
    # Acquirer settlement reports (docs/finance.md): the largest upload taken, and how many
    # days after a payment's business day (Asia/Jakarta) the acquirer settles it.
    acquirer_report_max_bytes: int = 128 * 1024**2
    acquirer_settlement_lag_days: int = 0
    # A settlement batch's value date: this many Indonesian working days after its cutoff (docs/finance.md).
    settlement_t_plus_days: int = 1
    rate_limit_enabled: bool = True
    # memory: counts per process; postgres: one count shared by every API node (core/ratelimit.py).
    rate_limit_store: str = "memory"
    rate_limit_login_window_ms: int = 60_000
    rate_limit_login_max: int = 10
    # Per client IP, whatever email is tried: the IP+email limit alone could be
    # dodged by cycling emails (password spraying).
    rate_limit_login_ip_max: int = 50
    # Per account email, whatever the client address (core/users/service.py): after this many
    # failures each further one doubles the wait from 1 s up to login_backoff_max_seconds.
    login_backoff_free_failures: int = 5
    login_backoff_max_seconds: int = 300
    rate_limit_device_window_ms: int = 60_000
    rate_limit_device_max: int = 600
    # Wrong X-Device-Secret per device id (control_plane/device_auth.py): past it every
    # attempt, right or wrong, is refused until the window ends.
    rate_limit_device_auth_window_ms: int = 60_000
    rate_limit_device_auth_max: int = 10
    rate_limit_admin_write_window_ms: int = 60_000
    rate_limit_admin_write_max: int = 300
    rate_limit_callback_window_ms: int = 60_000
    rate_limit_callback_max: int = 3_000
    # Per partner (its SNAP calls, core/partners/services.py).
    rate_limit_partner_window_ms: int = 60_000
    rate_limit_partner_max: int = 6_000
    # The platform's RSA key signing notifications to partners (core/partners/platform_key.py).
    # None: snap/platform-key.pem in the data dir, created on first start.
    snap_private_key_file: str | None = None
    snap_previous_public_key_file: str | None = None
    # The Ed25519 key signing payment announcements to devices (core/announcement_signing.py).
    # None: signing/announcement-key.pem in the data dir, created on first start.
    announcement_signing_key_file: str | None = None
    announcement_previous_public_key_file: str | None = None
    # Notifications to partners (core/partners/notify.py): tries before dead-letter, the first
    # back-off (doubled each try, with jitter, capped), how long a receiver may take, how often due rows are sought.
    partner_notify_max_attempts: int = 10
    partner_notify_backoff_ms: int = 1_000
    partner_notify_backoff_max_ms: int = 600_000
    partner_notify_timeout_ms: int = 5_000
    partner_notify_interval_ms: int = 1_000
    trust_proxy: bool = False
    # Every process reports in this often; a broker node silent for 3 intervals is dead and its devices
    # offline (their pending downlinks go wherever they reconnect): docs/scaling.md.
    instance_heartbeat_interval_ms: int = 5_000
    # With TRUST_PROXY: the proxies whose X-Forwarded-For hops are believed (control_plane/auth.py client_ip).
    trusted_proxies: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    # Set: GET /metrics needs Authorization: Bearer <it>; unset: open, as exporters usually are.
    metrics_token: str | None = None
    # A process without the api role (serve --only broker/worker) serves GET /metrics on this port, if set.
    metrics_port: int | None = None
    json_body_limit: int = 1_048_576
    auth_token_ttl_seconds: int = 12 * 3600
    idempotency_key_ttl_seconds: int = 24 * 3600
    # A claim of an Idempotency-Key is a lease this long, renewed while its request runs (core/idempotency.py).
    idempotency_lease_seconds: int = 5
    log_level: str = "INFO"
    http_port: int = 8000
    # serve's processes on this machine (serve --workers): 1 runs everything in one process; N > 1 runs
    # N API processes sharing the HTTP port and the broker and jobs in another, under a supervisor.
    serve_workers: int = 1
    # Devices: where they connect (shown in provisioning profiles) and how long the MQTT trace is kept.
    mqtt_public_host: str | None = None
    mqtt_public_port: int | None = None
    # MQTT over TLS (broker/tls.py, docs/operations.md): served when a certificate and key are given.
    mqtt_tls_cert_file: str | None = None
    mqtt_tls_key_file: str | None = None
    mqtt_tls_port: int | None = None  # None: broker.yaml's tls listener, else 8883
    mqtt_port: int | None = None  # None: broker.yaml's plain listener (1883); `serve --mqtt-port` wins
    mqtt_tls_client_ca_file: str | None = None  # given: devices must present a certificate naming them
    mqtt_tls_server_ca_file: str | None = None  # the CA devices are told to trust (PEM and fingerprint)
    mqtt_plain_enabled: bool | None = None  # None: broker.yaml's word, which is on unless it says otherwise
    device_trace_retention_days: int = 14
    # What one device may send over MQTT (core/devices/uplink_budget.py): per uplink kind, this many
    # per window; past it the broker drops that kind until the window ends, counts it on the device,
    # and traces one dropped uplink in MQTT_UPLINK_TRACE_SAMPLE.
    mqtt_uplink_budget_window_ms: int = 60_000
    mqtt_uplink_budget_max: int = 600
    mqtt_uplink_trace_sample: int = 100


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|mb|gb)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {None: 1, "b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("expected true or false")


def parse_non_negative_int(raw: str) -> int:
    value = int(raw.strip())
    if value < 0:
        raise ValueError("must not be negative")
    return value


def parse_amount(raw: str) -> int:
    """Whole rupiah, 1 to ``AMOUNT_CEILING``."""
    value = parse_positive_int(raw)
    if value > AMOUNT_CEILING:
        raise ValueError(f"must be at most {AMOUNT_CEILING} (no QRIS amount comes near it)")
    return value


def parse_positive_int(raw: str) -> int:
    value = int(raw.strip())
    if value <= 0:
        raise ValueError("must be greater than zero")
    return value


def parse_port(raw: str) -> int:
    value = int(raw.strip())
    if not 0 < value < 65536:
        raise ValueError("must be a TCP port between 1 and 65535")
    return value


def parse_body_limit(raw: str) -> int:
    """Accept bytes or the express-style sizes the seed used (``100kb``, ``1mb``)."""
    match = _SIZE.match(raw)
    if not match:
        raise ValueError("expected a size such as 1048576, 100kb or 1mb")
    size = int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").lower() or None]
    if size <= 0:
        raise ValueError("must be greater than zero")
    return size


def parse_log_level(raw: str) -> str:
    value = raw.strip().upper()
    if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
    return value


def parse_rate_limit_store(raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"memory", "postgres"}:
        raise ValueError("expected memory or postgres")
    return value


def parse_secret(raw: str) -> str:
    value = raw.strip()
    if len(value) < 8:
        raise ValueError("must be at least 8 characters")
    return value


def parse_networks(raw: str) -> tuple[str, ...]:
    """Comma-separated addresses or CIDR networks (``10.0.0.0/8, 192.0.2.7``), normalised."""
    networks = []
    for item in raw.split(","):
        if item.strip():
            try:
                networks.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{item.strip()!r} is not an IP address or CIDR network") from None
    if not networks:
        raise ValueError("expected at least one IP address or CIDR network")
    return tuple(networks)


def parse_secret_list(raw: str) -> str:
    """One secret, or several separated by commas (each at least 8 characters): normalised to ``a,b``."""
    secrets = [part.strip() for part in raw.split(",")]
    if any(not secret for secret in secrets):
        raise ValueError("an empty secret in the comma-separated list")
    return ",".join(parse_secret(secret) for secret in secrets)


def parse_fernet_keys(raw: str) -> str:
    """Fernet keys (URL-safe Base64 of 32 bytes), comma-separated, the first encrypting: normalised to ``a,b``."""
    keys = [part.strip() for part in raw.split(",")]
    for key in keys:
        try:
            decoded = base64.urlsafe_b64decode(key.encode()) if key else b""
        except (binascii.Error, ValueError):
            decoded = b""
        if len(decoded) != 32:
            raise ValueError("each key must be URL-safe Base64 of 32 bytes (cryptography's Fernet.generate_key())")
    return ",".join(keys)


def secret_list(value: str | None) -> tuple[str, ...]:
    """The secrets of a comma-separated setting, in their order (``INTEGRATION_WEBHOOK_SECRET``)."""
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


# env name -> (settings field, parser)
_VARIABLES: dict[str, tuple[str, Callable[[str], object]]] = {
    "DATABASE_URL": ("database_url", str.strip),
    "DATABASE_LISTEN_URL": ("database_listen_url", str.strip),
    "DATABASE_STATEMENT_CACHE_SIZE": ("database_statement_cache_size", parse_non_negative_int),
    "ADMIN_TOKEN": ("admin_token", parse_secret),
    "DEVICE_TOKEN": ("device_token", parse_secret),
    "DEVICE_AUTH_ALLOW_LEGACY_TOKEN": ("device_auth_allow_legacy_token", parse_bool),
    "INTEGRATION_WEBHOOK_SECRET": ("integration_webhook_secret", parse_secret_list),
    "SECRETS_ENCRYPTION_KEY": ("secrets_encryption_key", parse_fernet_keys),
    "QRIS_MAX_AMOUNT": ("qris_max_amount", parse_amount),
    "FINANCE_MAX_ADJUSTMENT": ("finance_max_adjustment", parse_amount),
    "REFUND_APPROVAL_ABOVE": ("refund_approval_above", parse_non_negative_int),
    "FINANCE_REFUND_RETURNS_MDR": ("finance_refund_returns_mdr", parse_bool),
    "DYNAMIC_QR_EXPIRY_SCHEDULER_ENABLED": ("dynamic_qr_expiry_scheduler_enabled", parse_bool),
    "DYNAMIC_QR_EXPIRY_SWEEP_INTERVAL_MS": ("dynamic_qr_expiry_sweep_interval_ms", parse_positive_int),
    "DYNAMIC_QR_EXPIRY_SWEEP_LIMIT": ("dynamic_qr_expiry_sweep_limit", parse_positive_int),
    "DYNAMIC_QR_TTL_SECONDS": ("dynamic_qr_ttl_seconds", parse_positive_int),
    "PAYMENT_ANNOUNCEMENT_MAX_AGE_SECONDS": ("payment_announcement_max_age_seconds", parse_positive_int),
    "ACQUIRER_CALL_TIMEOUT_SECONDS": ("acquirer_call_timeout_seconds", parse_positive_int),
    "ACQUIRER_CIRCUIT_FAILURES": ("acquirer_circuit_failures", parse_positive_int),
    "ACQUIRER_CIRCUIT_OPEN_SECONDS": ("acquirer_circuit_open_seconds", parse_positive_int),
    "ACQUIRER_QUERY_INTERVAL_MS": ("acquirer_query_interval_ms", parse_positive_int),
    "ACQUIRER_QUERY_BATCH": ("acquirer_query_batch", parse_positive_int),
    "SNAP_PURGE_INTERVAL_SECONDS": ("snap_purge_interval_seconds", parse_positive_int),
    "SNAP_PURGE_BATCH": ("snap_purge_batch", parse_positive_int),
    "EXPORT_WORKER_ENABLED": ("export_worker_enabled", parse_bool),
    "EXPORT_WORKER_INTERVAL_MS": ("export_worker_interval_ms", parse_positive_int),
    "EXPORT_WORKER_BATCH_SIZE": ("export_worker_batch_size", parse_positive_int),
    "EXPORT_STORAGE_DIR": ("export_storage_dir", str.strip),
    "EXPORT_RETENTION_DAYS": ("export_retention_days", parse_positive_int),
    "EXPORT_JOB_STALE_RUNNING_MS": ("export_job_stale_running_ms", parse_positive_int),
    "EXPORT_SETTLEMENT_ADJUSTMENT_MAX_ROWS": ("export_settlement_adjustment_max_rows", parse_positive_int),
    "INSTANCE_HEARTBEAT_INTERVAL_MS": ("instance_heartbeat_interval_ms", parse_positive_int),
    "ACQUIRER_REPORT_MAX_BYTES": ("acquirer_report_max_bytes", parse_body_limit),
    "ACQUIRER_SETTLEMENT_LAG_DAYS": ("acquirer_settlement_lag_days", parse_non_negative_int),
    "SETTLEMENT_T_PLUS_DAYS": ("settlement_t_plus_days", parse_non_negative_int),
    "RATE_LIMIT_ENABLED": ("rate_limit_enabled", parse_bool),
    "RATE_LIMIT_STORE": ("rate_limit_store", parse_rate_limit_store),
    "RATE_LIMIT_LOGIN_WINDOW_MS": ("rate_limit_login_window_ms", parse_positive_int),
    "RATE_LIMIT_LOGIN_MAX": ("rate_limit_login_max", parse_positive_int),
    "RATE_LIMIT_LOGIN_IP_MAX": ("rate_limit_login_ip_max", parse_positive_int),
    "LOGIN_BACKOFF_FREE_FAILURES": ("login_backoff_free_failures", parse_positive_int),
    "LOGIN_BACKOFF_MAX_SECONDS": ("login_backoff_max_seconds", parse_positive_int),
    "MQTT_UPLINK_BUDGET_WINDOW_MS": ("mqtt_uplink_budget_window_ms", parse_positive_int),
    "MQTT_UPLINK_BUDGET_MAX": ("mqtt_uplink_budget_max", parse_positive_int),
    "MQTT_UPLINK_TRACE_SAMPLE": ("mqtt_uplink_trace_sample", parse_positive_int),
    "RATE_LIMIT_DEVICE_WINDOW_MS": ("rate_limit_device_window_ms", parse_positive_int),
    "RATE_LIMIT_DEVICE_MAX": ("rate_limit_device_max", parse_positive_int),
    "RATE_LIMIT_DEVICE_AUTH_WINDOW_MS": ("rate_limit_device_auth_window_ms", parse_positive_int),
    "RATE_LIMIT_DEVICE_AUTH_MAX": ("rate_limit_device_auth_max", parse_positive_int),
    "RATE_LIMIT_ADMIN_WRITE_WINDOW_MS": ("rate_limit_admin_write_window_ms", parse_positive_int),
    "RATE_LIMIT_ADMIN_WRITE_MAX": ("rate_limit_admin_write_max", parse_positive_int),
    "RATE_LIMIT_CALLBACK_WINDOW_MS": ("rate_limit_callback_window_ms", parse_positive_int),
    "RATE_LIMIT_CALLBACK_MAX": ("rate_limit_callback_max", parse_positive_int),
    "RATE_LIMIT_PARTNER_WINDOW_MS": ("rate_limit_partner_window_ms", parse_positive_int),
    "RATE_LIMIT_PARTNER_MAX": ("rate_limit_partner_max", parse_positive_int),
    "SNAP_PRIVATE_KEY_FILE": ("snap_private_key_file", str.strip),
    "SNAP_PREVIOUS_PUBLIC_KEY_FILE": ("snap_previous_public_key_file", str.strip),
    "ANNOUNCEMENT_SIGNING_KEY_FILE": ("announcement_signing_key_file", str.strip),
    "ANNOUNCEMENT_PREVIOUS_PUBLIC_KEY_FILE": ("announcement_previous_public_key_file", str.strip),
    "PARTNER_NOTIFY_MAX_ATTEMPTS": ("partner_notify_max_attempts", parse_positive_int),
    "PARTNER_NOTIFY_BACKOFF_MS": ("partner_notify_backoff_ms", parse_positive_int),
    "PARTNER_NOTIFY_BACKOFF_MAX_MS": ("partner_notify_backoff_max_ms", parse_positive_int),
    "PARTNER_NOTIFY_TIMEOUT_MS": ("partner_notify_timeout_ms", parse_positive_int),
    "PARTNER_NOTIFY_INTERVAL_MS": ("partner_notify_interval_ms", parse_positive_int),
    "TRUST_PROXY": ("trust_proxy", parse_bool),
    "TRUSTED_PROXIES": ("trusted_proxies", parse_networks),
    "METRICS_TOKEN": ("metrics_token", parse_secret),
    "METRICS_PORT": ("metrics_port", parse_port),
    "JSON_BODY_LIMIT": ("json_body_limit", parse_body_limit),
    "AUTH_TOKEN_TTL_SECONDS": ("auth_token_ttl_seconds", parse_positive_int),
    "IDEMPOTENCY_KEY_TTL_SECONDS": ("idempotency_key_ttl_seconds", parse_positive_int),
    "IDEMPOTENCY_LEASE_SECONDS": ("idempotency_lease_seconds", parse_positive_int),
    "LOG_LEVEL": ("log_level", parse_log_level),
    "PORT": ("http_port", parse_port),
    "SERVE_WORKERS": ("serve_workers", parse_positive_int),
    "MQTT_PUBLIC_HOST": ("mqtt_public_host", str.strip),
    "MQTT_PUBLIC_PORT": ("mqtt_public_port", parse_port),
    "MQTT_TLS_CERT_FILE": ("mqtt_tls_cert_file", str.strip),
    "MQTT_TLS_KEY_FILE": ("mqtt_tls_key_file", str.strip),
    "MQTT_TLS_PORT": ("mqtt_tls_port", parse_port),
    "MQTT_PORT": ("mqtt_port", parse_port),
    "MQTT_TLS_CLIENT_CA_FILE": ("mqtt_tls_client_ca_file", str.strip),
    "MQTT_TLS_SERVER_CA_FILE": ("mqtt_tls_server_ca_file", str.strip),
    "MQTT_PLAIN_ENABLED": ("mqtt_plain_enabled", parse_bool),
    "DEVICE_TRACE_RETENTION_DAYS": ("device_trace_retention_days", parse_positive_int),
}


# Variables that no longer mean anything: refused loudly, so nobody believes one still applies.
_RETIRED = {
    "FINANCE_PLATFORM_FEE_BPS": "the fee is the merchant's MDR schedule by category (GET /admin/mdr-schedules), "
    "or its fee_bps contract below it; remove the variable (docs/finance.md)",
}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build settings from ``environ`` (default ``os.environ``); ``overrides`` win.

    Empty variables count as unset, as they did in the seed's dotenv files.
    """
    env = os.environ if environ is None else environ
    for name, why in _RETIRED.items():
        if (env.get(name) or "").strip():
            raise ConfigError(f"{name} is retired: {why}")
    values: dict[str, object] = {}
    for name, (field, parse) in _VARIABLES.items():
        raw = env.get(name)
        if raw is None or raw.strip() == "":
            continue
        try:
            values[field] = parse(raw)
        except ValueError as exc:
            reason = str(exc) if "invalid literal" not in str(exc) else "expected a whole number"
            # The value itself is not echoed: several of these are secrets.
            raise ConfigError(f"invalid value for {name}: {reason}") from None
    values.update(overrides)
    settings = Settings(**values)  # type: ignore[arg-type]
    if settings.device_auth_allow_legacy_token and not settings.device_token:
        raise ConfigError(
            "invalid value for DEVICE_AUTH_ALLOW_LEGACY_TOKEN: true needs DEVICE_TOKEN, the token it allows"
        )
    return settings


# KEY=VALUE, optionally after ``export `` (so a file can also be sourced by a shell).
_ENV_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
_DOUBLE_QUOTED_ESCAPES = {"n": "\n", '"': '"', "\\": "\\"}


class EnvFileError(ConfigError):
    """A line of an env file cannot be read; the message names the file and the line, never the value."""


def _env_value(raw: str) -> str:
    """The value of one line: quoted ('...' literal, "..." with \\n \\" \\\\), or bare up to a `` #`` comment."""
    if raw[:1] in ("'", '"'):
        quote = raw[0]
        value: list[str] = []
        index = 1
        while index < len(raw):
            char = raw[index]
            if char == quote:
                rest = raw[index + 1 :].strip()
                if rest and not rest.startswith("#"):
                    raise ValueError("unexpected text after the closing quote")
                return "".join(value)
            if quote == '"' and char == "\\" and raw[index + 1 : index + 2] in _DOUBLE_QUOTED_ESCAPES:
                value.append(_DOUBLE_QUOTED_ESCAPES[raw[index + 1]])
                index += 2
                continue
            value.append(char)
            index += 1
        raise ValueError(f"the {quote} quote is not closed on this line")
    comment = re.search(r"\s#", raw)
    return (raw[: comment.start()] if comment else raw).strip()


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of an env file: ``KEY=VALUE`` lines, blank lines and ``#`` comments; the last
    line wins for a name given twice. A line that is none of these is an ``EnvFileError``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EnvFileError(f"cannot read env file {path}: {exc}") from None
    variables: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ENV_LINE.match(stripped)
        if match is None:
            raise EnvFileError(f"{path}, line {number}: expected NAME=value (a name of letters, digits and _)")
        try:
            variables[match.group(1)] = _env_value(match.group(2))
        except ValueError as exc:
            raise EnvFileError(f"{path}, line {number}: {exc}") from None
    return variables


def apply_env_file(path: Path, environ: MutableMapping[str, str] | None = None) -> None:
    """Set the variables of ``path`` that ``environ`` (default ``os.environ``) does not have yet:
    the real environment wins over the file, even where it sets a variable to the empty string."""
    env = os.environ if environ is None else environ
    for name, value in read_env_file(path).items():
        env.setdefault(name, value)
