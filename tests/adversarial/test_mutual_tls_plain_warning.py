"""With mutual TLS configured, plain MQTT still takes a device secret alone: start-up says so (the adversarial
run found nothing told the operator)."""

from __future__ import annotations

import logging

import pytest

from qris_soundbox.broker.config import ListenerChoices, load_broker_config, resolve_listeners
from tests.tls.pki import Pki


def test_plain_mqtt_beside_mutual_tls_is_warned_about(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    pki = Pki(tmp_path)
    cert, key = pki.server_files()
    tls = {"tls_certfile": str(cert), "tls_keyfile": str(key), "tls_port": 18883}
    with caplog.at_level(logging.WARNING, logger="qris_soundbox.broker.config"):
        resolve_listeners(load_broker_config(), ListenerChoices(**tls, tls_client_cafile=str(pki.ca_file)))
    warned = [r for r in caplog.records if "plain MQTT" in r.getMessage()]
    assert len(warned) == 1 and "MQTT_PLAIN_ENABLED=false" in warned[0].getMessage()

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="qris_soundbox.broker.config"):
        resolve_listeners(
            load_broker_config(), ListenerChoices(**tls, tls_client_cafile=str(pki.ca_file), plain_enabled=False)
        )
        resolve_listeners(load_broker_config(), ListenerChoices(**tls))  # no client CA: a secret is the identity
    assert not [r for r in caplog.records if "plain MQTT" in r.getMessage()]
