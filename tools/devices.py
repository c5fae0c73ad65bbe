"""Device tools: ``device provision``, ``acl check`` and ``acl smoke``.

- ``device provision`` rotates a device's credential through the admin HTTP
  API and prints its connection profile (the secret is shown this once):
  scheme, host, port, how to trust the broker (CA fingerprint and PEM) and
  the platform's warnings; ``--check`` then connects with it over MQTT.
- ``acl check --print-template`` prints the ACL rules as a Mosquitto
  ``acl_file``; ``acl check --file F`` checks a rules file (our YAML or a
  Mosquitto ACL) cannot let one device reach another's topics.
- ``acl smoke`` proves against a running broker, with two real devices, that
  device A cannot reach device B (``mqtts://`` URLs and the TLS options of
  ``tools/mqtt_tls.py`` for a broker over TLS).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import httpx
import yaml

from qris_soundbox.core.devices.acl import AclRules, AclRulesError, parse_mosquitto_acl
from qris_soundbox.tools.api import (
    BASE_URL_HELP,
    AdminApi,
    ApiError,
    DeviceCredential,
    admin_token,
    default_base_url,
)
from qris_soundbox.tools.mqtt_tls import (
    DEFAULT_MQTT_PORT,
    DEFAULT_MQTTS_PORT,
    MqttTarget,
    TlsOptions,
    add_tls_arguments,
    mqtt_target,
)

SUBSCRIBE_REFUSED = 0x80


def register(subparsers: argparse._SubParsersAction) -> None:
    device = subparsers.add_parser("device", help="device tools")
    device_sub = device.add_subparsers(dest="device_command", required=True)
    provision = device_sub.add_parser("provision", help="issue MQTT credentials and print the connection profile")
    provision.add_argument("--device-id", required=True)
    provision.add_argument("--base-url", default=default_base_url(), help=BASE_URL_HELP)
    provision.add_argument("--admin-token", default=None, help="default: $ADMIN_TOKEN, else prompted")
    provision.add_argument("--json", action="store_true", help="print the profile as JSON")
    provision.add_argument(
        "--check", action="store_true", help="then connect with the profile over MQTT and subscribe, as the device will"
    )
    add_tls_arguments(provision)
    provision.set_defaults(handler=_provision)

    acl = subparsers.add_parser("acl", help="MQTT topic ACL tools")
    acl_sub = acl.add_subparsers(dest="acl_command", required=True)
    check = acl_sub.add_parser("check", help="check a rules file, or print the template")
    what = check.add_mutually_exclusive_group(required=True)
    what.add_argument("--file", type=Path, help="acl/rules.yaml-style file or a Mosquitto ACL file")
    what.add_argument("--print-template", action="store_true", help="print the rules as a Mosquitto acl_file")
    check.add_argument("--rules", type=Path, default=None, help="rules to print (default: the packaged acl/rules.yaml)")
    check.set_defaults(handler=_acl_check)

    smoke = acl_sub.add_parser("smoke", help="prove with two real devices that A cannot reach B")
    smoke.add_argument(
        "--broker-url",
        default=os.environ.get("MQTT_BROKER_URL") or "mqtt://127.0.0.1:1883",
        help="mqtt://host:port, or mqtts://host:port for MQTT over TLS (default: $MQTT_BROKER_URL)",
    )
    add_tls_arguments(smoke)
    smoke.add_argument(
        "--base-url",
        default=os.environ.get("BASE_URL"),
        help="control plane, to confirm A's refusals were counted (needs $ADMIN_TOKEN)",
    )
    smoke.set_defaults(handler=_acl_smoke)


def _provision(args: argparse.Namespace) -> None:
    tls = TlsOptions.from_args(args)
    if tls.wanted() and not args.check:
        sys.exit("qris-soundbox: the TLS options are for --check (the profile itself comes from the platform)")
    token = admin_token(args.admin_token)

    async def rotate() -> dict:
        async with AdminApi(args.base_url, token) as api:
            return await api.rotate_credential(args.device_id)

    try:
        issued = asyncio.run(rotate())
    except ApiError as exc:
        sys.exit(f"qris-soundbox: rotation failed ({exc.status or 'no answer'} {exc.code}: {exc.message})")
    profile = connection_profile(issued)
    if args.json:
        print(json.dumps(profile, indent=2), flush=True)
    else:
        print(format_profile(profile), flush=True)
    for warning in profile["warnings"]:
        print(f"WARNING: {warning}", file=sys.stderr, flush=True)
    if args.check:
        target = mqtt_target(tls, None, None, DeviceCredential.from_issued(issued))
        error = asyncio.run(_connects(target, profile["username"], profile["password"]))
        if error:
            sys.exit(f"qris-soundbox: check failed: cannot connect to {target.url} with this profile: {error}")
        print(f"check: connected to {target.url} as {profile['username']} and subscribed to its downlinks", flush=True)


def connection_profile(issued: dict[str, Any]) -> dict[str, Any]:
    """What a device (and the technician installing it) needs, from a credential rotation's answer."""
    device_id, broker = issued["device_id"], issued["broker"]
    scheme = broker.get("scheme", "mqtt")
    return {
        "scheme": scheme,
        "host": broker["host"],
        "port": broker["port"],
        "url": broker.get("url") or f"{scheme}://{broker['host']}:{broker['port']}",
        "username": issued["mqtt_username"],
        "password": issued["mqtt_password"],
        "client_id": issued.get("mqtt_client_id", device_id),
        "fingerprint": issued["fingerprint"],
        "ca_sha256": broker.get("ca_sha256"),
        "ca_pem": broker.get("ca_pem"),
        "client_certificate_required": broker.get("client_certificate_required", False),
        "publish": f"devices/{device_id}/uplink/#",
        "subscribe": f"devices/{device_id}/downlink/#",
        "http_headers": {"X-Device-Id": device_id, "X-Device-Secret": issued["mqtt_password"]},
        "announcement_keys": issued.get("announcement_keys"),
        "warnings": broker.get("warnings", []),
    }


def format_profile(profile: dict[str, Any]) -> str:
    device_id = profile["username"]
    if profile["scheme"] != "mqtts":
        trust = "none: plain MQTT, not encrypted (configure MQTT_TLS_* for devices on the internet)"
    elif profile["ca_sha256"]:
        trust = f"the CA below, SHA-256 fingerprint {profile['ca_sha256']}"
    else:
        trust = "the device's own CA bundle (the broker's certificate is from a public CA)"
    lines = [
        f"Device {device_id} — connection profile (the password is shown only now)",
        f"  MQTT URL       {profile['url']}",
        f"  MQTT host      {profile['host']}",
        f"  MQTT port      {profile['port']}   ({'TLS' if profile['scheme'] == 'mqtts' else 'plain'})",
        f"  trust          {trust}",
        f"  username       {profile['username']}",
        f"  password       {profile['password']}",
        f"  client id      {profile['client_id']}   (must equal the username)",
        f"  fingerprint    {profile['fingerprint']}",
        f"  publish to     {profile['publish']}   (heartbeat, payment/ack, dynamic-qr/request, config/ack, command/ack)",
        f"  subscribe to   {profile['subscribe']}   (payment, dynamic-qr/response, config, command)",
        f"  HTTP headers   X-Device-Id: {device_id}",
        f"                 X-Device-Secret: {profile['password']}",
    ]
    for key in (profile.get("announcement_keys") or {}).get("keys", []):
        role = "current" if key["current"] else "previous, still accepted"
        lines.append(f"  announcement key {key['kid']} ({role}): Ed25519 {key['public_key']}")
    if profile["client_certificate_required"]:
        lines.append(f"  client cert    required: signed by the fleet's device CA, CN or a SAN = {device_id}")
    if profile["ca_pem"]:
        lines += ["  broker CA (PEM, save as the device's CA file):", profile["ca_pem"].rstrip()]
    return "\n".join(lines)


async def _connects(target: MqttTarget, username: str, password: str) -> str | None:
    """None if the device can connect and subscribe to its downlinks with these, else what went wrong."""
    try:
        async with target.client(username, password, timeout=10) as client:
            await client.subscribe(f"devices/{username}/downlink/#", qos=1)
    except (aiomqtt.MqttError, OSError) as exc:
        return str(exc) or type(exc).__name__
    return None


def _load_any_rules(path: Path) -> AclRules:
    text = path.read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    if isinstance(data, dict):
        return AclRules.parse(data, source=str(path))
    return parse_mosquitto_acl(text)


def _acl_check(args: argparse.Namespace) -> None:
    try:
        if args.print_template:
            sys.stdout.write(AclRules.load(args.rules).template())
            return
        rules = _load_any_rules(args.file)
    except (OSError, AclRulesError) as exc:
        sys.exit(f"qris-soundbox: {exc}")
    problems = rules.problems()
    if problems:
        print(f"{args.file}: {len(problems)} problem(s)", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        sys.exit(1)
    print(f"{args.file}: OK ({len(rules.rules)} rules; no device can reach another device's topics)")


def _acl_smoke(args: argparse.Namespace) -> None:
    names = ("MQTT_TEST_DEVICE_A_USERNAME", "MQTT_TEST_DEVICE_A_PASSWORD", "MQTT_TEST_DEVICE_B_USERNAME")
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        sys.exit(f"qris-soundbox: set {', '.join(missing)}")
    device_a, password_a, device_b = (os.environ[name] for name in names)
    target = broker_url_target(args.broker_url, TlsOptions.from_args(args))
    ok = asyncio.run(_smoke(target, device_a, password_a, device_b, args.base_url))
    sys.exit(0 if ok else 1)


def broker_url_target(url: str, tls: TlsOptions) -> MqttTarget:
    """``mqtt://host[:1883]`` or ``mqtts://host[:8883]`` (MQTT over TLS); anything else is refused."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        sys.exit(f"qris-soundbox: --broker-url {url!r}: the scheme is mqtt:// or mqtts://")
    try:
        port = parts.port
    except ValueError as exc:
        sys.exit(f"qris-soundbox: --broker-url {url!r}: {exc}")
    profile = DeviceCredential(
        device_id="",
        secret="",
        broker_host=parts.hostname or "127.0.0.1",
        broker_port=port or (DEFAULT_MQTTS_PORT if parts.scheme == "mqtts" or tls.wanted() else DEFAULT_MQTT_PORT),
        broker_scheme=parts.scheme,
    )
    return mqtt_target(tls, None, None, profile)


async def _denials(base_url: str, token: str, device_id: str) -> int | None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        response = await client.get(f"/admin/devices/{device_id}", headers={"Authorization": f"Bearer {token}"})
    return response.json().get("acl_denials") if response.status_code == 200 else None


async def _smoke(target: MqttTarget, device_a: str, password_a: str, device_b: str, base_url: str | None) -> bool:
    token = os.environ.get("ADMIN_TOKEN") if base_url else None
    before = await _denials(base_url, token, device_a) if base_url and token else None
    results: list[tuple[str, bool]] = []
    forged = [f"devices/{device_b}/uplink/heartbeat", f"devices/{device_b}/downlink/payment"]
    try:
        async with target.client(device_a, password_a, timeout=10) as client:
            own = (await client.subscribe(f"devices/{device_a}/downlink/#", qos=1))[0]
            results.append(
                (f"A subscribes to its own downlink over {target.url} (granted {own})", own != SUBSCRIBE_REFUSED)
            )
            for topic_filter in (
                f"devices/{device_b}/downlink/#",
                f"devices/{device_b}/uplink/#",
                "devices/#",
                "#",
                "devices/+/downlink/#",
            ):
                code = (await client.subscribe(topic_filter, qos=1))[0]
                results.append((f"A cannot subscribe to {topic_filter}", code == SUBSCRIBE_REFUSED))
            await client.publish(f"devices/{device_a}/uplink/heartbeat", b"{}", qos=1)
            results.append(("A publishes its own heartbeat", True))
            for topic in forged:
                await client.publish(topic, b'{"message_id": "acl-smoke"}', qos=1)
    except (aiomqtt.MqttError, OSError) as exc:
        print(f"FAIL  device A could not connect to {target.url}: {exc or type(exc).__name__}")
        return False
    if before is not None:
        await asyncio.sleep(1.5)  # denial counts are persisted in batches
        after = await _denials(base_url, token, device_a)  # type: ignore[arg-type]
        expected = 5 + len(forged)
        results.append(
            (
                f"A's {expected} refusals were counted (acl_denials {before} → {after})",
                after is not None and after - before >= expected,
            )
        )
    else:
        print("note  publishes to B's topics were sent; set --base-url and ADMIN_TOKEN to confirm they were refused")
    for label, passed in results:
        print(f"{'PASS' if passed else 'FAIL'}  {label}")
    return all(passed for _, passed in results)
