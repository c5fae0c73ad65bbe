"""The OpenAPI document works as a console: Swagger's Authorize offers the real credentials of each
route, and every route documents the real error envelope."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import RunningPlatform

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
async def schema(running: RunningPlatform) -> dict[str, Any]:
    answer = await running.http.get("/schema/openapi.json")
    assert answer.status_code == 200
    return answer.json()


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_the_security_schemes_are_declared(schema: dict[str, Any]) -> None:
    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer", "description": schemes["bearer"]["description"]}
    headers = {name: (s["type"], s["in"], s["name"]) for name, s in schemes.items() if name != "bearer"}
    assert headers == {
        "deviceId": ("apiKey", "header", "X-Device-Id"),
        "deviceSecret": ("apiKey", "header", "X-Device-Secret"),
        "callbackSignature": ("apiKey", "header", "X-Callback-Signature"),
        "callbackTimestamp": ("apiKey", "header", "X-Callback-Timestamp"),
    }


def test_each_route_says_how_it_is_reached(schema: dict[str, Any]) -> None:
    by_route = {(method, path): operation.get("security") for method, path, operation in operations(schema)}
    assert by_route[("GET", "/admin/merchants")] == [{"bearer": []}]
    assert by_route[("GET", "/merchant/profile")] == [{"bearer": []}]
    assert by_route[("POST", "/device/heartbeat")] == [{"deviceId": [], "deviceSecret": []}]
    assert by_route[("POST", "/integrations/qris/callback")] == [{"callbackSignature": [], "callbackTimestamp": []}]
    assert by_route[("GET", "/metrics")] == [{}, {"bearer": []}]
    assert by_route[("GET", "/health")] is None and by_route[("POST", "/admin/login")] is None
    # Every admin and merchant route takes the bearer token, every device route the device headers.
    for (method, path), security in by_route.items():
        if path.startswith(("/admin/", "/merchant/")) and not path.endswith("/login"):
            assert security == [{"bearer": []}], (method, path)
        if path.startswith("/device/"):
            assert security == [{"deviceId": [], "deviceSecret": []}], (method, path)


def test_every_route_documents_the_error_envelope(schema: dict[str, Any]) -> None:
    envelope = schema["components"]["schemas"]["ErrorEnvelope"]
    assert envelope["required"] == ["error"]
    detail = schema["components"]["schemas"]["ErrorDetail"]
    assert set(detail["required"]) == {"code", "message", "request_id", "timestamp"}
    for method, path, operation in operations(schema):
        errors = {status: answer for status, answer in operation["responses"].items() if status[0] in "45"}
        assert {"400", "500", "503"} <= set(errors), (method, path)
        for status, answer in errors.items():
            reference = answer["content"]["application/json"]["schema"]["$ref"]
            assert reference == "#/components/schemas/ErrorEnvelope", (method, path, status)
        if operation.get("security"):
            assert "401" in errors, (method, path)


async def test_a_documented_error_is_the_one_the_api_gives(running: RunningPlatform, schema: dict[str, Any]) -> None:
    required = set(schema["components"]["schemas"]["ErrorDetail"]["required"])
    answer = await running.http.get("/admin/merchants")
    assert answer.status_code == 401
    assert set(answer.json()) == {"error"} and required <= set(answer.json()["error"])
