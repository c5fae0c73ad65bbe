"""msgspec Structs that cross a boundary (HTTP bodies, MQTT payloads, responses).

Capability field names are a contract: the announcement shaper, the config and
command services read them as spelled here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from qris_soundbox.core.schemas import Body, Struct, Value

AnnouncementFormat = Literal["amount_only", "text", "clips"]
Percent = Annotated[int, Meta(ge=0, le=100)]
ModelId = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$")]
SerialNumber = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")]
TextId = Annotated[str, Meta(min_length=1, max_length=64)]
# Text PostgreSQL can store (no U+0000), checked on decoding: a heartbeat is written in a batch after
# its answer, where the database's refusal could no longer reach the sender (docs/devices.md).
NO_NUL = r"^[^\x00]*$"


class Capabilities(Value, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """What a device model can do (SPEC §5 "universal soundbox")."""

    screen: bool = False
    dynamic_qr: bool = False
    languages: Annotated[list[str], Meta(min_length=1, max_length=8)] = msgspec.field(default_factory=lambda: ["id"])
    announcement_format: AnnouncementFormat = "text"
    max_text_length: Annotated[int, Meta(ge=20, le=10_000)] | None = None
    volume_min: Percent = 0
    volume_max: Percent = 100
    commands: list[str] = msgspec.field(default_factory=list)


class DeviceModel(Struct, kw_only=True):
    id: str
    name: str
    vendor: str | None
    capabilities: Capabilities
    builtin: bool
    dialect: str  # the wire dialect its devices speak (docs/dialects.md); "native" is the platform's own
    created_at: datetime
    # False: its dialect cannot carry the platform's announcement signature, so its devices cannot tell a
    # forged "payment received" (docs/announcement-signing.md). Filled from the loaded dialects by the routes.
    signs_announcements: bool = True


class DeviceModelCreate(Body, kw_only=True):
    id: ModelId
    name: Annotated[str, Meta(min_length=1, max_length=120)]
    vendor: Annotated[str, Meta(min_length=1, max_length=120)] | None = None
    capabilities: Capabilities


class DeviceCreate(Body, kw_only=True):
    serial_number: SerialNumber
    model: ModelId


class BindRequest(Body, kw_only=True):
    """The terminal by its id or by the code printed on its QRIS (``T000002``): exactly one of them."""

    terminal_id: TextId | None = None
    terminal_code: TextId | None = None


class DisableRequest(Body, kw_only=True):
    reason: Annotated[str, Meta(max_length=500)] | None = None


class HealthSummary(Struct, kw_only=True):
    status: str  # healthy | degraded | critical | offline | unprovisioned | disabled | retired
    score: int  # 0..100
    age_seconds: int | None  # since the device was last heard from (presence or heartbeat)
    reasons: list[str]


class Credential(Struct, kw_only=True):
    """The credential as the registry shows it: never the secret, never the hash."""

    fingerprint: str | None
    rotated_at: datetime | None


class Device(Struct, kw_only=True):
    id: str
    serial_number: str
    model: str
    status: str
    role: str
    terminal_id: str | None
    merchant_id: str | None
    outlet_id: str | None
    bound_at: datetime | None
    credential: Credential
    disabled_reason: str | None
    online: bool
    last_seen_at: datetime | None
    last_heartbeat_at: datetime | None
    battery_level: int | None
    network_strength: int | None
    firmware_version: str | None
    heartbeat: dict[str, Any] | None
    acl_denials: int
    last_acl_denial_at: datetime | None
    mqtt_username: str
    health_summary: HealthSummary
    created_at: datetime
    updated_at: datetime
    retired_at: datetime | None
    # What it is bound to, by name (None when unbound).
    terminal_code: str | None = None
    terminal_name: str | None = None
    outlet_name: str | None = None
    merchant_name: str | None = None
    # MQTT uplinks the broker dropped past the device's budget (core/devices/uplink_budget.py), and the last time.
    uplinks_dropped: int = 0
    last_uplink_drop_at: datetime | None = None


class BrokerAddress(Struct, kw_only=True):
    """The connection profile's broker part: where a device connects and how it trusts the server."""

    host: str
    port: int
    scheme: Literal["mqtt", "mqtts"] = "mqtt"
    url: str = ""  # scheme://host:port
    # mqtts with a private CA (MQTT_TLS_SERVER_CA_FILE): its SHA-256 fingerprint (as `openssl x509
    # -fingerprint -sha256` prints it) and PEM. Absent with mqtts: the device's own CA bundle trusts the server.
    ca_sha256: str | None = None
    ca_pem: str | None = None
    # Mutual TLS (MQTT_TLS_CLIENT_CA_FILE): the device must present a certificate whose CN or a SAN is its id.
    client_certificate_required: bool = False
    # What the technician should know before handing this out (no public host configured, CA unreadable).
    warnings: list[str] = msgspec.field(default_factory=list)


class AnnouncementKey(Struct, kw_only=True):
    """A public key the platform signs announcements with (docs/announcement-signing.md)."""

    kid: str  # the first 16 hex digits of SHA-256 over the 32 raw public-key bytes
    algorithm: Literal["Ed25519"] = "Ed25519"
    public_key: str  # the 32 raw bytes, standard Base64 (libsodium's crypto_sign_verify_detached takes them as is)
    current: bool  # signs new announcements; the other one, during a rotation, still verifies


class AnnouncementKeys(Struct, kw_only=True):
    """``GET /device/keys`` and the connection profile: every key a device must accept."""

    current_kid: str
    keys: list[AnnouncementKey]


class IssuedCredential(Struct, kw_only=True):
    """SPEC §9: the only time the secret is ever shown."""

    device_id: str
    mqtt_username: str
    mqtt_password: str
    mqtt_client_id: str
    fingerprint: str
    rotated_at: datetime
    broker: BrokerAddress
    # The platform's public keys: the device verifies every payment announcement against them.
    announcement_keys: AnnouncementKeys


class Heartbeat(Body, kw_only=True):
    """``devices/<id>/uplink/heartbeat`` and ``POST /device/heartbeat`` (same struct, same core function)."""

    device_id: str | None = None  # optional; must be the authenticated device when given
    message_id: Annotated[str, Meta(max_length=128, pattern=NO_NUL)] | None = None
    timestamp: datetime | None = None  # the device's clock, kept for drift diagnosis
    battery_level: Percent | None = None
    charging: bool | None = None
    network_strength: Percent | None = None  # signal, 0..100
    network_type: Annotated[str, Meta(max_length=16, pattern=NO_NUL)] | None = None  # wifi | 4g | ethernet ...
    firmware_version: Annotated[str, Meta(max_length=64, pattern=NO_NUL)] | None = None
    volume: Percent | None = None
    uptime_s: Annotated[int, Meta(ge=0)] | None = None
    ip_address: Annotated[str, Meta(max_length=64, pattern=NO_NUL)] | None = None


class HeartbeatRecorded(Struct, kw_only=True):
    device_id: str
    received_at: datetime
    health_summary: HealthSummary


class MqttMessage(Struct, kw_only=True):
    id: str
    device_id: str
    direction: str  # uplink | downlink
    topic: str
    qos: int | None
    message_id: str | None
    payload: str  # UTF-8 text (undecodable bytes replaced), truncated to the trace bound
    payload_bytes: int
    truncated: bool
    created_at: datetime
