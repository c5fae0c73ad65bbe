"""SPEC §3 basics through the real HTTP server: request ids and the error envelope."""

from __future__ import annotations

import logging

import msgspec
import pytest
from litestar import post

from qris_soundbox.control_plane.app import create_app
from qris_soundbox.control_plane.deps import JSONBody
from qris_soundbox.core.schemas import Body
from tests.support import RunningPlatform, serve_app

ENVELOPE_KEYS = {"code", "message", "details", "request_id", "timestamp"}


def assert_envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == ENVELOPE_KEYS
    assert body["error"]["code"] == code
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    return body["error"]


async def test_health_answers_ok(running: RunningPlatform) -> None:
    response = await running.http.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_deep_health_checks_database_and_broker(running: RunningPlatform) -> None:
    response = await running.http.get("/health/deep")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["status"] == "ok"
    assert body["broker"]["status"] == "ok"


async def test_load_balancer_probes_are_not_logged_at_info_other_requests_are(
    running: RunningPlatform, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="qris_soundbox.http")
    await running.http.get("/health")
    await running.http.get("/health/deep")
    await running.http.get("/no-such-route")
    logged = [r.path for r in caplog.records if r.name == "qris_soundbox.http" and r.msg == "request"]
    assert logged == ["/no-such-route"]


async def test_request_id_is_echoed_when_given(running: RunningPlatform) -> None:
    response = await running.http.get("/health", headers={"X-Request-Id": "req-42.abc"})
    assert response.headers["x-request-id"] == "req-42.abc"


async def test_request_id_is_generated_when_absent_or_unsafe(running: RunningPlatform) -> None:
    plain = await running.http.get("/health")
    unsafe = await running.http.get("/health", headers={"X-Request-Id": "x" * 300})
    assert len(plain.headers["x-request-id"]) == 32
    assert unsafe.headers["x-request-id"] != "x" * 300


async def test_unknown_route_is_enveloped_not_found(running: RunningPlatform) -> None:
    response = await running.http.get("/no/such/route", headers={"X-Request-Id": "r-404"})
    error = assert_envelope(response, 404, "not_found")
    assert error["request_id"] == "r-404"


async def test_wrong_method_is_enveloped(running: RunningPlatform) -> None:
    assert_envelope(await running.http.delete("/health"), 405, "method_not_allowed")


async def test_openapi_schema_documents_routes(running: RunningPlatform) -> None:
    response = await running.http.get("/schema/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/health" in paths and "/health/deep" in paths


# A JSON route of the real app factory, to prove body handling without waiting
# for a domain module: bad JSON, wrong types and oversized bodies.
class _Echo(Body):
    amount: int


@post("/_test/echo", sync_to_thread=False, opt={"public": True})
def _echo(data: JSONBody[_Echo]) -> dict:
    return {"amount": data.amount}


async def test_body_errors_are_enveloped(running: RunningPlatform) -> None:
    app = create_app(running.platform)
    app.register(_echo)
    async with serve_app(app) as client:
        ok = await client.post("/_test/echo", json={"amount": 5})
        assert ok.status_code == 201 and ok.json() == {"amount": 5}

        bad_json = await client.post("/_test/echo", content=b"{not json", headers={"content-type": "application/json"})
        assert_envelope(bad_json, 400, "validation_error")

        wrong_type = await client.post("/_test/echo", json={"amount": "five"})
        assert_envelope(wrong_type, 400, "validation_error")

        unknown_field = await client.post("/_test/echo", json={"amount": 1, "extra": True})
        assert_envelope(unknown_field, 400, "validation_error")

        limit = running.platform.settings.json_body_limit
        oversized = msgspec.json.encode({"amount": 1, "pad": "x" * (limit + 10)})
        too_big = await client.post("/_test/echo", content=oversized, headers={"content-type": "application/json"})
        assert_envelope(too_big, 413, "payload_too_large")
