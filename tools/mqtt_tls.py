"""The TLS options every MQTT tool takes (``simulate``, ``smoke``, ``acl smoke``, ``device provision``),
and the one place their SSL context and broker address are decided.

``--tls`` connects with TLS (mqtts), trusting the CA the connection profile
hands out (``broker.ca_pem``) or, without one, the system's CAs; ``--cafile``
names the CA file instead. ``--certfile``/``--keyfile`` present a client
certificate (mutual TLS). ``--insecure`` skips verifying the broker's
certificate and name: for a test bench only, and it says so on stderr every
time. ``--cafile``, ``--certfile``, ``--insecure``, an ``mqtts://`` URL and a
profile whose scheme is ``mqtts`` all mean TLS.
"""

from __future__ import annotations

import argparse
import ssl
import sys
from dataclasses import dataclass
from typing import Any

import aiomqtt

from qris_soundbox.tools.api import DeviceCredential

DEFAULT_MQTT_PORT, DEFAULT_MQTTS_PORT = 1883, 8883
INSECURE_WARNING = (
    "WARNING: --insecure: the broker's certificate is NOT verified. Anyone between this machine and the"
    " broker can read this session, device secret included, and speak for the broker. Test benches only."
)


def add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("MQTT over TLS")
    group.add_argument(
        "--tls", action="store_true", help="connect with TLS (mqtts); implied by the options below and by mqtts"
    )
    group.add_argument(
        "--cafile", help="PEM file of the CA of the broker's certificate (default: the profile's CA, else system CAs)"
    )
    group.add_argument("--certfile", help="client certificate (PEM) for mutual TLS; may hold the key too")
    group.add_argument("--keyfile", help="the client certificate's key (PEM), if not in --certfile")
    group.add_argument(
        "--insecure",
        action="store_true",
        help="INSECURE, testing only: do not verify the broker's certificate or name (prints a warning)",
    )


@dataclass(frozen=True)
class TlsOptions:
    tls: bool = False
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    insecure: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TlsOptions:
        """The options given; exits with a message if a file cannot be used (checked now, not mid-run)."""
        options = cls(args.tls, args.cafile, args.certfile, args.keyfile, args.insecure)
        if options.keyfile and not options.certfile:
            sys.exit("qris-soundbox: --keyfile needs --certfile")
        if options.insecure:
            print(INSECURE_WARNING, file=sys.stderr, flush=True)
        options.context("mqtts")
        return options

    def wanted(self, scheme: str | None = None) -> bool:
        return bool(self.tls or self.cafile or self.certfile or self.insecure or scheme == "mqtts")

    def context(self, scheme: str | None = None, ca_pem: str | None = None) -> ssl.SSLContext | None:
        """The client context for a broker of ``scheme`` (None: plain MQTT), trusting ``--cafile``, else
        ``ca_pem`` (the profile's CA), else the system's CAs."""
        if not self.wanted(scheme):
            return None
        try:
            if self.cafile:
                context = ssl.create_default_context(cafile=self.cafile)
            else:
                context = ssl.create_default_context(cadata=ca_pem)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            if self.certfile:
                context.load_cert_chain(self.certfile, self.keyfile)
        except (OSError, ssl.SSLError) as exc:
            sys.exit(f"qris-soundbox: cannot use the TLS files given: {exc}")
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


@dataclass(frozen=True)
class MqttTarget:
    host: str
    port: int
    tls: ssl.SSLContext | None

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def client(self, device_id: str, secret: str, **options: Any) -> aiomqtt.Client:
        """A device's session here: username = client id = device id (SPEC §5)."""
        return aiomqtt.Client(
            self.host,
            self.port,
            username=device_id,
            password=secret,
            identifier=device_id,
            tls_context=self.tls,
            **options,
        )


def mqtt_target(
    options: TlsOptions, host: str | None, port: int | None, credential: DeviceCredential | None = None
) -> MqttTarget:
    """Where to connect: ``--mqtt-host``/``--mqtt-port`` over what the credential's profile says. TLS asked for
    against a plain profile, with no port given, means the TLS port (8883), not the plain one."""
    profile = credential or DeviceCredential(device_id="", secret="")
    context = options.context(profile.broker_scheme, profile.broker_ca_pem)
    if port is None:
        port = profile.broker_port
        if context is not None and profile.broker_scheme != "mqtts":
            port = DEFAULT_MQTTS_PORT
    return MqttTarget(host or profile.broker_host, port, context)
