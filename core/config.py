"""Platform settings read from the environment, validated once at start-up.

The variable names are the earlier Node.js implementation's, so operators can
switch without renaming anything. A bad value stops start-up with a message that
names the variable (``ConfigError``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import TypeVar

import msgspec

T = TypeVar("T")


class ConfigError(Exception):
    """A configuration value is invalid; the message names the variable."""


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    database_url: str | None = None
    admin_token: str | None = None
    device_token: str | None = None
    # The shared DEVICE_TOKEN lets its holder act as any device: off unless asked for (core/devices/legacy_token.py).
    device_auth_allow_legacy_token: bool = False
    integration_webhook_secret: str | None = None
    finance_platform_fee_bps: int = 70
    dynamic_qr_expiry_scheduler_enabled: bool = True
    dynamic_qr_expiry_sweep_interval_ms: int = 30_000
    dynamic_qr_expiry_sweep_limit: int = 500
    dynamic_qr_ttl_seconds: int = 900
    payment_announcement_max_age_seconds: int = 300
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
    rate_limit_enabled: bool = True
    rate_limit_login_window_ms: int = 60_000
    rate_limit_login_max: int = 10
    # Per client IP, whatever email is tried: the IP+email limit alone could be
    # dodged by cycling emails (password spraying).
    rate_limit_login_ip_max: int = 50
    rate_limit_device_window_ms: int = 60_000
    rate_limit_device_max: int = 600
    rate_limit_admin_write_window_ms: int = 60_000
    rate_limit_admin_write_max: int = 300
    rate_limit_callback_window_ms: int = 60_000
    rate_limit_callback_max: int = 3_000
    trust_proxy: bool = False
    json_body_limit: int = 1_048_576
    auth_token_ttl_seconds: int = 12 * 3600
    idempotency_key_ttl_seconds: int = 24 * 3600
    log_level: str = "INFO"
    http_port: int = 8000
    # Devices: where they connect (shown in provisioning profiles) and how long the MQTT trace is kept.
    mqtt_public_host: str | None = None
    mqtt_public_port: int | None = None
    device_trace_retention_days: int = 14


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


def parse_fee_bps(raw: str) -> int:
    value = int(raw.strip())
    if not 0 <= value <= 10_000:
        raise ValueError("must be basis points between 0 and 10000")
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


def parse_secret(raw: str) -> str:
    value = raw.strip()
    if len(value) < 8:
        raise ValueError("must be at least 8 characters")
    return value


# env name -> (settings field, parser)
_VARIABLES: dict[str, tuple[str, Callable[[str], object]]] = {
    "DATABASE_URL": ("database_url", str.strip),
    "ADMIN_TOKEN": ("admin_token", parse_secret),
    "DEVICE_TOKEN": ("device_token", parse_secret),
    "DEVICE_AUTH_ALLOW_LEGACY_TOKEN": ("device_auth_allow_legacy_token", parse_bool),
    "INTEGRATION_WEBHOOK_SECRET": ("integration_webhook_secret", parse_secret),
    "FINANCE_PLATFORM_FEE_BPS": ("finance_platform_fee_bps", parse_fee_bps),
    "DYNAMIC_QR_EXPIRY_SCHEDULER_ENABLED": ("dynamic_qr_expiry_scheduler_enabled", parse_bool),
    "DYNAMIC_QR_EXPIRY_SWEEP_INTERVAL_MS": ("dynamic_qr_expiry_sweep_interval_ms", parse_positive_int),
    "DYNAMIC_QR_EXPIRY_SWEEP_LIMIT": ("dynamic_qr_expiry_sweep_limit", parse_positive_int),
    "DYNAMIC_QR_TTL_SECONDS": ("dynamic_qr_ttl_seconds", parse_positive_int),
    "PAYMENT_ANNOUNCEMENT_MAX_AGE_SECONDS": ("payment_announcement_max_age_seconds", parse_positive_int),
    "EXPORT_WORKER_ENABLED": ("export_worker_enabled", parse_bool),
    "EXPORT_WORKER_INTERVAL_MS": ("export_worker_interval_ms", parse_positive_int),
    "EXPORT_WORKER_BATCH_SIZE": ("export_worker_batch_size", parse_positive_int),
    "EXPORT_STORAGE_DIR": ("export_storage_dir", str.strip),
    "EXPORT_RETENTION_DAYS": ("export_retention_days", parse_positive_int),
    "EXPORT_JOB_STALE_RUNNING_MS": ("export_job_stale_running_ms", parse_positive_int),
    "EXPORT_SETTLEMENT_ADJUSTMENT_MAX_ROWS": ("export_settlement_adjustment_max_rows", parse_positive_int),
    "ACQUIRER_REPORT_MAX_BYTES": ("acquirer_report_max_bytes", parse_body_limit),
    "ACQUIRER_SETTLEMENT_LAG_DAYS": ("acquirer_settlement_lag_days", parse_non_negative_int),
    "RATE_LIMIT_ENABLED": ("rate_limit_enabled", parse_bool),
    "RATE_LIMIT_LOGIN_WINDOW_MS": ("rate_limit_login_window_ms", parse_positive_int),
    "RATE_LIMIT_LOGIN_MAX": ("rate_limit_login_max", parse_positive_int),
    "RATE_LIMIT_LOGIN_IP_MAX": ("rate_limit_login_ip_max", parse_positive_int),
    "RATE_LIMIT_DEVICE_WINDOW_MS": ("rate_limit_device_window_ms", parse_positive_int),
    "RATE_LIMIT_DEVICE_MAX": ("rate_limit_device_max", parse_positive_int),
    "RATE_LIMIT_ADMIN_WRITE_WINDOW_MS": ("rate_limit_admin_write_window_ms", parse_positive_int),
    "RATE_LIMIT_ADMIN_WRITE_MAX": ("rate_limit_admin_write_max", parse_positive_int),
    "RATE_LIMIT_CALLBACK_WINDOW_MS": ("rate_limit_callback_window_ms", parse_positive_int),
    "RATE_LIMIT_CALLBACK_MAX": ("rate_limit_callback_max", parse_positive_int),
    "TRUST_PROXY": ("trust_proxy", parse_bool),
    "JSON_BODY_LIMIT": ("json_body_limit", parse_body_limit),
    "AUTH_TOKEN_TTL_SECONDS": ("auth_token_ttl_seconds", parse_positive_int),
    "IDEMPOTENCY_KEY_TTL_SECONDS": ("idempotency_key_ttl_seconds", parse_positive_int),
    "LOG_LEVEL": ("log_level", parse_log_level),
    "PORT": ("http_port", parse_port),
    "MQTT_PUBLIC_HOST": ("mqtt_public_host", str.strip),
    "MQTT_PUBLIC_PORT": ("mqtt_public_port", parse_port),
    "DEVICE_TRACE_RETENTION_DAYS": ("device_trace_retention_days", parse_positive_int),
}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build settings from ``environ`` (default ``os.environ``); ``overrides`` win.

    Empty variables count as unset, as they did in the seed's dotenv files.
    """
    env = os.environ if environ is None else environ
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
