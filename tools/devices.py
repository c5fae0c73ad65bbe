"""Device tools: ``device provision``, ``acl check`` and ``acl smoke``.

- ``device provision`` rotates a device's credential through the admin HTTP
  API and prints its connection profile (the secret is shown this once).
- ``acl check --print-template`` prints the ACL rules as a Mosquitto
  ``acl_file``; ``acl check --file F`` checks a rules file (our YAML or a
  Mosquitto ACL) cannot let one device reach another's topics.
- ``acl smoke`` proves against a running broker, with two real devices, that
  device A cannot reach device B.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import yaml

from qris_soundbox.core.devices.acl import AclRules, AclRulesError, parse_mosquitto_acl
from qris_soundbox.tools.api import BASE_URL_HELP, AdminApi, ApiError, admin_token, default_base_url


def register(subparsers: argparse._SubParsersAction) -> None:
    device = subparsers.add_parser("device", help="device tools")
    device_sub = device.add_subparsers(dest="device_command", required=True)
    provision = device_sub.add_parser("provision", help="issue MQTT credentials and print the connection profile")
    provision.add_argument("--device-id", required=True)
    provision.add_argument("--base-url", default=default_base_url(), help=BASE_URL_HELP)
    provision.add_argument("--admin-token", default=None, help="default: $ADMIN_TOKEN, else prompted")
    provision.add_argument("--json", action="store_true", help="print the profile as JSON")
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
    smoke.add_argument("--broker-url", default=os.environ.get("MQTT_BROKER_URL") or "mqtt://127.0.0.1:1883")
    smoke.add_argument(
        "--base-url",
        default=os.environ.get("BASE_URL"),
        help="control plane, to confirm A's refusals were counted (needs $ADMIN_TOKEN)",
    )
    smoke.set_defaults(handler=_acl_smoke)


def _provision(args: argparse.Namespace) -> None:
    token = admin_token(args.admin_token)

    async def rotate() -> dict:
        async with AdminApi(args.base_url, token) as api:
            return await api.rotate_credential(args.device_id)

    try:
        issued = asyncio.run(rotate())
    except ApiError as exc:
        sys.exit(f"qris-soundbox: rotation failed ({exc.status or 'no answer'} {exc.code}: {exc.message})")
    device_id = issued["device_id"]
    profile = {
        "host": issued["broker"]["host"],
        "port": issued["broker"]["port"],
        "username": issued["mqtt_username"],
        "password": issued["mqtt_password"],
        "client_id": issued.get("mqtt_client_id", device_id),
        "fingerprint": issued["fingerprint"],
        "publish": f"devices/{device_id}/uplink/#",
        "subscribe": f"devices/{device_id}/downlink/#",
        "http_headers": {"X-Device-Id": device_id, "X-Device-Secret": issued["mqtt_password"]},
    }
    if args.json:
        print(json.dumps(profile, indent=2))
        return
    print(f"""Device {device_id} — connection profile (the password is shown only now)
  MQTT host      {profile["host"]}
  MQTT port      {profile["port"]}
  username       {profile["username"]}
  password       {profile["password"]}
  client id      {profile["client_id"]}   (must equal the username)
  fingerprint    {profile["fingerprint"]}
  publish to     {profile["publish"]}   (heartbeat, payment/ack, dynamic-qr/request, config/ack, command/ack)
  subscribe to   {profile["subscribe"]}   (payment, dynamic-qr/response, config, command)
  HTTP headers   X-Device-Id: {device_id}
                 X-Device-Secret: {profile["password"]}""")


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
    ok = asyncio.run(_smoke(args.broker_url, device_a, password_a, device_b, args.base_url))
    sys.exit(0 if ok else 1)


async def _denials(base_url: str, token: str, device_id: str) -> int | None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        response = await client.get(f"/admin/devices/{device_id}", headers={"Authorization": f"Bearer {token}"})
    return response.json().get("acl_denials") if response.status_code == 200 else None


async def _smoke(broker_url: str, device_a: str, password_a: str, device_b: str, base_url: str | None) -> bool:
    from amqtt.client import MQTTClient
    from amqtt.mqtt.constants import QOS_1

    parts = urlsplit(broker_url)
    url = f"mqtt://{parts.hostname or '127.0.0.1'}:{parts.port or 1883}/"  # credentials go in below
    token = os.environ.get("ADMIN_TOKEN") if base_url else None
    before = await _denials(base_url, token, device_a) if base_url and token else None
    client = MQTTClient(client_id=device_a, config={"auto_reconnect": False})
    results: list[tuple[str, bool]] = []
    try:
        await client.connect(f"mqtt://{quote(device_a, safe='')}:{quote(password_a, safe='')}@{url[len('mqtt://') :]}")
    except Exception as exc:
        print(f"FAIL  device A could not connect: {exc}")
        return False
    try:
        own = await client.subscribe([(f"devices/{device_a}/downlink/#", QOS_1)])
        results.append((f"A subscribes to its own downlink (granted {own[0]})", own[0] != 0x80))
        for topic_filter in (
            f"devices/{device_b}/downlink/#",
            f"devices/{device_b}/uplink/#",
            "devices/#",
            "#",
            "devices/+/downlink/#",
        ):
            code = (await client.subscribe([(topic_filter, QOS_1)]))[0]
            results.append((f"A cannot subscribe to {topic_filter}", code == 0x80))
        await client.publish(f"devices/{device_a}/uplink/heartbeat", b"{}", qos=QOS_1)
        results.append(("A publishes its own heartbeat", True))
        forged = [f"devices/{device_b}/uplink/heartbeat", f"devices/{device_b}/downlink/payment"]
        for topic in forged:
            await client.publish(topic, b'{"message_id": "acl-smoke"}', qos=QOS_1)
    finally:
        await client.disconnect()
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
