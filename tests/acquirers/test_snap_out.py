"""SNAP out against the simulator as a real process: one token for 50 concurrent generates, what is
retried and what is not, the circuit breaker, the acquirer's signature on its answers, masked logs."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from qris_soundbox.core.acquirers.snap_out import (
    AcquirerCallFailed,
    AcquirerCircuitOpen,
    AcquirerRefused,
    CircuitBreaker,
    SnapClient,
)
from qris_soundbox.core.logging import JsonFormatter
from qris_soundbox.core.metrics import Metrics
from qris_soundbox.core.qris import parse_qris
from qris_soundbox.core.snap import wire
from tests.acquirers.simulator import Simulator, simulator_process
from tests.devices.helpers import eventually

SECRET = "s3cret-value"


@pytest.fixture
async def simulator(tmp_path: Path) -> AsyncIterator[Simulator]:
    async with simulator_process(tmp_path / "sim.pem") as sim:
        yield sim


def client_of(sim: Simulator, **kwargs: object) -> SnapClient:
    options: dict = {
        "code": "sim",
        "base_url": sim.url,
        "client_key": "platform",
        "client_secret": SECRET,
        "private_key_pem": wire.generate_private_key_pem(),
        "public_key_pem": sim.public_key_pem,
    } | kwargs
    return SnapClient(**options)


async def generate(client: SnapClient, reference: str = "txn-1", amount: int = 1000) -> dict:
    return await client.generate(
        partner_reference=reference, amount=amount, merchant_id="M1", terminal_id="T1", validity_s=600
    )


async def test_fifty_concurrent_generates_take_one_token(simulator: Simulator) -> None:
    import asyncio

    client = client_of(simulator)
    try:
        answers = await asyncio.gather(*(generate(client, f"txn-{i}", 1000 + i) for i in range(50)))
    finally:
        await client.aclose()
    assert {a["responseCode"] for a in answers} == {"2004700"}
    assert [parse_qris(a["qrContent"]).amount for a in answers] == [1000 + i for i in range(50)]
    stats = await simulator.stats()
    assert stats["token"] == 1 and stats["generate"] == 50


async def test_the_simulators_answer_signature_is_what_the_client_checks(simulator: Simulator) -> None:
    """Computed here with ``cryptography``: the answer's X-SIGNATURE is SHA256withRSA over
    POST:path:sha256hex(body):X-TIMESTAMP under the simulator's public key."""
    import httpx

    async with httpx.AsyncClient(base_url=simulator.url) as http:
        answer = await http.post("/v1.0/access-token/b2b", content=b'{"grantType":"client_credentials"}')
    message = ":".join(
        ["POST", "/v1.0/access-token/b2b", hashlib.sha256(answer.content).hexdigest(), answer.headers["x-timestamp"]]
    )
    key = serialization.load_pem_public_key(simulator.public_key_pem.encode())
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(base64.b64decode(answer.headers["x-signature"]), message.encode(), padding.PKCS1v15(), hashes.SHA256())


async def test_a_bad_answer_signature_is_refused(simulator: Simulator) -> None:
    await simulator.config(fault="bad_signature")
    client = client_of(simulator)
    try:
        with pytest.raises(AcquirerCallFailed, match="signature") as caught:
            await generate(client)
    finally:
        await client.aclose()
    assert caught.value.details["reason"] == "bad_signature"
    # Another acquirer's key verifies nothing either.
    await simulator.config(fault=None)
    other = client_of(
        simulator, public_key_pem=wire.public_key_pem(wire.load_private_key(wire.generate_private_key_pem()))
    )
    try:
        with pytest.raises(AcquirerCallFailed, match="signature"):
            await generate(other)
    finally:
        await other.aclose()


async def test_a_5xx_generate_is_not_retried_a_query_is(simulator: Simulator) -> None:
    client = client_of(simulator)
    try:
        await client.token()
        await simulator.config(fault="5xx")
        with pytest.raises(AcquirerCallFailed, match="503"):
            await generate(client)
        assert (await simulator.stats())["fault"] == 1  # sent once: it may have been issued there
        with pytest.raises(AcquirerCallFailed, match="503"):
            await client.query(original_reference="whatever")
        assert (await simulator.stats())["fault"] == 1 + 3  # read-only: tried three times
    finally:
        await client.aclose()


async def test_a_slow_acquirer_times_out_and_garbage_is_no_answer(simulator: Simulator) -> None:
    client = client_of(simulator, timeout_s=1)
    try:
        await client.token()
        await simulator.config(fault="slow", slow_s=5)
        with pytest.raises(AcquirerCallFailed, match="in time") as caught:
            await generate(client)
        assert caught.value.details["reason"] == "timeout"
        await simulator.config(fault="garbage")
        with pytest.raises(AcquirerCallFailed, match="not JSON"):
            await generate(client)
    finally:
        await client.aclose()


async def test_a_refusal_is_not_a_failure_of_the_link(simulator: Simulator) -> None:
    client = client_of(simulator, breaker=CircuitBreaker(failures_to_open=1, open_s=60))
    try:
        for _ in range(3):
            with pytest.raises(AcquirerRefused, match="4045101"):
                await client.query(original_reference="never-generated")
        assert client.breaker.state == "closed"
    finally:
        await client.aclose()


async def test_the_breaker_opens_then_a_probe_closes_it(simulator: Simulator) -> None:
    metrics = Metrics()
    client = client_of(simulator, breaker=CircuitBreaker(failures_to_open=3, open_s=1), metrics=metrics)
    try:
        await client.token()
        await simulator.config(fault="5xx")
        for _ in range(3):
            with pytest.raises(AcquirerCallFailed):
                await generate(client)
        assert client.breaker.state == "open"
        with pytest.raises(AcquirerCircuitOpen):
            await generate(client)
        assert (await simulator.stats())["fault"] == 3  # the open circuit did not call
        assert metrics.registry.get_sample_value("qris_acquirer_circuit_open", {"acquirer": "sim"}) == 1
        assert (
            metrics.registry.get_sample_value(
                "qris_acquirer_calls_total", {"acquirer": "sim", "operation": "generate", "outcome": "circuit_open"}
            )
            == 1
        )
        await simulator.config(fault=None)

        async def probed() -> bool:
            try:
                await generate(client)
            except AcquirerCircuitOpen:
                return False
            return True

        assert await eventually(probed, timeout=15, interval=0.2)
        assert client.breaker.state == "closed"
        assert metrics.registry.get_sample_value("qris_acquirer_circuit_open", {"acquirer": "sim"}) == 0
        assert (
            metrics.registry.get_sample_value("qris_acquirer_errors_total", {"acquirer": "sim", "reason": "http_5xx"})
            == 3
        )
    finally:
        await client.aclose()


async def test_a_failed_half_open_probe_opens_again() -> None:
    breaker = CircuitBreaker(failures_to_open=2, open_s=0)
    breaker.failed()
    breaker.failed()
    assert breaker.allow() is True and breaker.state == "half_open"
    assert breaker.allow() is False  # one probe at a time
    breaker.failed()
    assert breaker.state == "open"


async def test_every_call_is_logged_with_signature_and_token_masked(
    simulator: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    client = client_of(simulator)
    try:
        with caplog.at_level(logging.INFO, logger="qris_soundbox.core.acquirers.snap_out"):
            await generate(client)
        token = await client.token()
    finally:
        await client.aclose()
    lines = [JsonFormatter().format(record) for record in caplog.records if record.getMessage() == "acquirer call"]
    assert [line.count('"operation":"token"') + line.count('"operation":"generate"') for line in lines] == [1, 1]
    for line in lines:
        assert token not in line and SECRET not in line
        assert '"X-SIGNATURE":"********"' in line
    assert '"Authorization":"********"' in lines[1]


async def test_unreachable_acquirer_is_a_clear_error() -> None:
    client = SnapClient(
        code="gone",
        base_url="http://127.0.0.1:9",
        client_key="k",
        client_secret="s",
        private_key_pem=wire.generate_private_key_pem(),
        timeout_s=2,
    )
    try:
        with pytest.raises(AcquirerCallFailed, match="gone") as caught:
            await client.generate(partner_reference="x", amount=1, merchant_id="M", terminal_id="T", validity_s=60)
    finally:
        await client.aclose()
    assert caught.value.details["reason"] == "connect"
