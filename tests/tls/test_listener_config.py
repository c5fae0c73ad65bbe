"""Which listeners the broker serves, from broker.yaml, the environment and the command line; and what the
connection profile tells a device. No broker runs here: these are the decisions, checked one by one."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from qris_soundbox.broker.config import (
    BrokerConfigError,
    ListenerChoices,
    load_broker_config,
    resolve_listeners,
)
from qris_soundbox.core.devices.credentials import broker_profile
from tests.support import settings_for_tests
from tests.tls.pki import Pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server_files(pki: Pki) -> tuple[Path, Path]:
    return pki.server_files()


def resolve(yaml_listeners: dict | None = None, **choices: object):
    config = load_broker_config()
    if yaml_listeners is not None:
        config = {**config, "listeners": yaml_listeners}
    return resolve_listeners(config, ListenerChoices(**choices))  # type: ignore[arg-type]


def test_without_a_certificate_only_plain_mqtt_is_served() -> None:
    config, served = resolve(host="127.0.0.1", port=1884)
    assert (served.plain, served.tls) == (("127.0.0.1", 1884), None)
    assert set(config["listeners"]) == {"default"}


def test_a_certificate_and_key_add_the_tls_listener_on_8883(server_files: tuple[Path, Path]) -> None:
    cert, key = map(str, server_files)
    config, served = resolve(host="0.0.0.0", tls_certfile=cert, tls_keyfile=key)
    assert served.plain == ("0.0.0.0", 1883) and served.tls == ("0.0.0.0", 8883)
    tls = config["listeners"]["tls"]
    assert (tls["bind"], tls["ssl"], tls["certfile"], tls["cafile"]) == ("0.0.0.0:8883", True, cert, None)


def test_the_tls_port_comes_from_the_command_line_else_broker_yaml(server_files: tuple[Path, Path]) -> None:
    cert, key = map(str, server_files)
    yaml_listeners = {
        "default": {"type": "tcp", "bind": "0.0.0.0:1883"},
        "tls": {"type": "tcp", "bind": "0.0.0.0:9883", "certfile": cert, "keyfile": key},
    }
    assert resolve(yaml_listeners)[1].tls == ("0.0.0.0", 9883)  # broker.yaml alone serves TLS
    assert resolve(yaml_listeners, tls_port=10883)[1].tls == ("0.0.0.0", 10883)


def test_plain_mqtt_off_leaves_the_tls_listener_as_amqtts_default(server_files: tuple[Path, Path]) -> None:
    cert, key = map(str, server_files)
    config, served = resolve(plain_enabled=False, tls_certfile=cert, tls_keyfile=key, tls_port=8884)
    assert served.plain is None and served.tls == ("0.0.0.0", 8884)
    assert list(config["listeners"]) == ["default"] and config["listeners"]["default"]["ssl"] is True
    yaml_off = {"default": {"type": "tcp", "bind": "0.0.0.0:1883", "enabled": False}}
    assert resolve(yaml_off, tls_certfile=cert, tls_keyfile=key)[1].plain is None


@pytest.mark.parametrize(
    ("choices", "message"),
    [
        ({"plain_enabled": False}, "listen nowhere"),
        ({"tls_certfile": "CERT"}, "both a certificate and its key"),
        ({"tls_client_cafile": "CERT"}, "MQTT_TLS_CLIENT_CA_FILE needs MQTT over TLS"),
        ({"tls_certfile": "CERT", "tls_keyfile": "/nonexistent/server.key"}, "/nonexistent/server.key"),
        ({"tls_certfile": "CERT", "tls_keyfile": "OTHER_KEY"}, "cannot use certificate"),
        ({"tls_certfile": "CERT", "tls_keyfile": "KEY", "tls_port": 1883}, "cannot share"),
        ({"tls_certfile": "CERT", "tls_keyfile": "KEY", "tls_client_cafile": "/nonexistent/ca.pem"}, "client CA"),
    ],
)
def test_unusable_tls_settings_stop_start_up_with_a_message_naming_them(
    choices: dict[str, object], message: str, server_files: tuple[Path, Path], tmp_path: Path
) -> None:
    files = {"CERT": str(server_files[0]), "KEY": str(server_files[1])}
    files["OTHER_KEY"] = str(Pki(tmp_path, "other").server_files()[1])
    given = {name: files.get(value, value) if isinstance(value, str) else value for name, value in choices.items()}
    with pytest.raises(BrokerConfigError, match=message):
        resolve(**given)


def test_a_passphrase_protected_key_is_refused_rather_than_prompted_for(
    server_files: tuple[Path, Path], tmp_path: Path
) -> None:
    encrypted = tmp_path / "encrypted.key"
    subprocess.run(
        ["openssl", "pkey", "-in", str(server_files[1]), "-aes256", "-passout", "pass:secret", "-out", str(encrypted)],
        check=True,
        capture_output=True,
    )
    with pytest.raises(BrokerConfigError, match="passphrase"):
        resolve(tls_certfile=str(server_files[0]), tls_keyfile=str(encrypted))


async def test_serve_refuses_to_start_on_an_unusable_certificate(database_url: str, tmp_path: Path) -> None:
    from qris_soundbox.tools.serve import ServeOptions, StartupError, serve

    settings = settings_for_tests(
        database_url, mqtt_tls_cert_file="/nonexistent/server.crt", mqtt_tls_key_file="/nonexistent/server.key"
    )
    with pytest.raises(StartupError, match="/nonexistent/server"):
        await serve(settings, ServeOptions(roles=frozenset({"broker"}), data_dir=tmp_path), asyncio.Event())


def test_the_profile_says_scheme_port_and_ca_and_warns_without_a_public_host(pki: Pki) -> None:
    plain = broker_profile(settings_for_tests("postgresql://unused/db"), ("0.0.0.0", 1883), None)
    assert (plain.scheme, plain.host, plain.port, plain.url) == ("mqtt", "127.0.0.1", 1883, "mqtt://127.0.0.1:1883")
    assert plain.ca_pem is None and "loopback" in plain.warnings[0] and "MQTT_PUBLIC_HOST" in plain.warnings[0]

    tls_settings = {
        "mqtt_tls_cert_file": "server.crt",
        "mqtt_tls_key_file": "server.key",
        "mqtt_tls_server_ca_file": str(pki.ca_file),
        "mqtt_public_host": "mqtt.example.id",
    }
    tls = broker_profile(settings_for_tests("postgresql://unused/db", **tls_settings), None, None)  # --only api
    assert (tls.scheme, tls.host, tls.port, tls.warnings) == ("mqtts", "mqtt.example.id", 8883, [])
    assert tls.ca_pem is not None and tls.ca_pem.strip() == pki.ca_file.read_text().strip()
    openssl = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(pki.ca_file)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert openssl.strip().split("=", 1)[1] == tls.ca_sha256  # what a technician compares it with

    unreadable = broker_profile(
        settings_for_tests("postgresql://unused/db", **(tls_settings | {"mqtt_tls_server_ca_file": "/nonexistent"})),
        None,
        ("0.0.0.0", 8884),
    )
    assert unreadable.ca_pem is None and unreadable.port == 8884
    assert any("MQTT_TLS_SERVER_CA_FILE" in warning for warning in unreadable.warnings)


def test_the_start_banner_lists_both_listeners_and_the_cli_takes_the_tls_port() -> None:
    from qris_soundbox.broker.config import Listeners
    from qris_soundbox.tools.cli import build_parser
    from qris_soundbox.tools.serve import ServeOptions, describe

    urls = describe(ServeOptions(), frozenset({"broker"}), Listeners(plain=("0.0.0.0", 1883), tls=("0.0.0.0", 8883)))
    assert urls == {"mqtt": "mqtt://127.0.0.1:1883", "mqtts": "mqtts://127.0.0.1:8883"}
    assert build_parser().parse_args(["serve", "--mqtt-tls-port", "9883"]).mqtt_tls_port == 9883


def test_the_server_context_refuses_anything_below_tls_1_2(server_files: tuple[Path, Path], pki: Pki) -> None:
    import ssl

    from qris_soundbox.broker.tls import TlsFiles, server_context

    plain = server_context(TlsFiles(str(server_files[0]), str(server_files[1])))
    assert plain.minimum_version == ssl.TLSVersion.TLSv1_2 and plain.verify_mode == ssl.CERT_NONE
    mutual = server_context(TlsFiles(str(server_files[0]), str(server_files[1]), str(pki.ca_file)))
    assert mutual.minimum_version == ssl.TLSVersion.TLSv1_2 and mutual.verify_mode == ssl.CERT_REQUIRED
