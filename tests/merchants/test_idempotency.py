"""Idempotency-Key on sensitive writes (SPEC §3), through the real HTTP server."""

from __future__ import annotations

import asyncio
import json

import pytest
from litestar import post

from qris_soundbox.control_plane import policies
from qris_soundbox.control_plane.app import create_app
from qris_soundbox.core import idempotency
from tests.merchants.conftest import logged_in, unique
from tests.support import PlatformFactory, RunningPlatform, serve_app


def keyed(headers: dict[str, str], key: str | bytes) -> dict:
    return {**headers, "Idempotency-Key": key}


async def merchants_named(running: RunningPlatform, name: str) -> int:
    return await running.platform.db.pool.fetchval("SELECT count(*) FROM merchants WHERE name = $1", name)


async def test_replay_returns_the_first_response_and_changes_nothing(running: RunningPlatform) -> None:
    name = unique("Idem ")
    key = unique("key-")
    first = await running.http.post(
        "/admin/merchants", json={"name": name, "city": "Medan"}, headers=keyed(running.admin_headers, key)
    )
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    # Same value, other key order and spacing: the same request.
    replay = await running.http.post(
        "/admin/merchants",
        content=json.dumps({"city": "Medan", "name": name}, indent=2),
        headers=keyed(running.admin_headers, key) | {"content-type": "application/json"},
    )
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == first.content  # the exact bytes
    assert replay.headers["content-type"] == first.headers["content-type"]
    assert replay.headers["x-request-id"] != first.headers["x-request-id"]  # each request keeps its own id
    assert await merchants_named(running, name) == 1
    audited = await running.platform.db.pool.fetchval(
        "SELECT count(*) FROM audit_logs WHERE action = 'merchant.create' AND entity_id = $1", first.json()["id"]
    )
    assert audited == 1


async def test_same_key_with_another_body_is_refused(running: RunningPlatform) -> None:
    key = unique("key-")
    name = unique("Idem ")
    first = await running.http.post(
        "/admin/merchants", json={"name": name, "city": "Medan"}, headers=keyed(running.admin_headers, key)
    )
    assert first.status_code == 201
    other = await running.http.post(
        "/admin/merchants", json={"name": name, "city": "Padang"}, headers=keyed(running.admin_headers, key)
    )
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    elsewhere = await running.http.post(
        f"/admin/merchants/{first.json()['id']}/outlets", json={"name": "O"}, headers=keyed(running.admin_headers, key)
    )
    assert elsewhere.status_code == 409 and elsewhere.json()["error"]["code"] == "idempotency_key_reused"
    assert await merchants_named(running, name) == 1


async def test_keys_belong_to_one_caller(running: RunningPlatform) -> None:
    key = unique("shared-")
    ops = await logged_in(running, "admin", "ops")
    names = [unique("Caller "), unique("Caller ")]
    a = await running.http.post(
        "/admin/merchants", json={"name": names[0], "city": "Solo"}, headers=keyed(running.admin_headers, key)
    )
    b = await running.http.post(
        "/admin/merchants", json={"name": names[1], "city": "Solo"}, headers=keyed(ops.headers, key)
    )
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]


async def test_twenty_concurrent_requests_with_one_key_make_one_merchant(running: RunningPlatform) -> None:
    name = unique("Race ")
    key = unique("race-")

    async def attempt():
        return await running.http.post(
            "/admin/merchants", json={"name": name, "city": "Malang"}, headers=keyed(running.admin_headers, key)
        )

    responses = await asyncio.gather(*(attempt() for _ in range(20)))
    assert [r.status_code for r in responses] == [201] * 20, [r.text for r in responses if r.status_code != 201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(1 for r in responses if r.headers.get("idempotent-replayed") == "true") == 19
    assert await merchants_named(running, name) == 1


async def test_client_errors_are_replayed_too(running: RunningPlatform) -> None:
    key = unique("bad-")
    body = {"name": "x" * 30, "city": "Medan"}
    first = await running.http.post("/admin/merchants", json=body, headers=keyed(running.admin_headers, key))
    again = await running.http.post("/admin/merchants", json=body, headers=keyed(running.admin_headers, key))
    assert first.status_code == again.status_code == 400
    assert again.headers["idempotent-replayed"] == "true" and again.content == first.content


async def test_without_a_key_every_request_runs(running: RunningPlatform) -> None:
    name = unique("NoKey ")
    for _ in range(2):
        response = await running.http.post(
            "/admin/merchants", json={"name": name, "city": "Kediri"}, headers=running.admin_headers
        )
        assert response.status_code == 201
    assert await merchants_named(running, name) == 2


async def test_refused_requests_do_not_claim_the_key(running: RunningPlatform) -> None:
    key = unique("refused-")
    viewer = await logged_in(running, "admin", "viewer")
    body = {"name": unique("Refused "), "city": "Blitar"}
    assert (await running.http.post("/admin/merchants", json=body, headers={"Idempotency-Key": key})).status_code == 401
    refused = await running.http.post("/admin/merchants", json=body, headers=keyed(viewer.headers, key))
    assert refused.status_code == 403
    claimed = await running.platform.db.pool.fetchval("SELECT count(*) FROM idempotency_keys WHERE key = $1", key)
    assert claimed == 0


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "kunci-é".encode("latin-1")])
async def test_malformed_keys_are_refused(running: RunningPlatform, key: str | bytes) -> None:
    response = await running.http.post(
        "/admin/merchants", json={"name": "K", "city": "Bogor"}, headers=keyed(running.admin_headers, key)
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["details"] == {"header": "Idempotency-Key"}


async def test_keys_expire_and_are_purged(platform_factory: PlatformFactory) -> None:
    short = await platform_factory.start(idempotency_key_ttl_seconds=1)
    try:
        key = unique("ttl-")
        first = await short.http.post(
            "/admin/merchants", json={"name": unique("Ttl "), "city": "Batu"}, headers=keyed(short.admin_headers, key)
        )
        await asyncio.sleep(1.2)
        # Expired: the key is free again, even for another body.
        second = await short.http.post(
            "/admin/merchants", json={"name": unique("Ttl "), "city": "Batu"}, headers=keyed(short.admin_headers, key)
        )
        assert first.status_code == second.status_code == 201
        assert "idempotent-replayed" not in second.headers and second.json()["id"] != first.json()["id"]
        await asyncio.sleep(1.2)
        assert await idempotency.purge(short.platform.db) != "DELETE 0"
        left = await short.platform.db.pool.fetchval("SELECT count(*) FROM idempotency_keys WHERE key = $1", key)
        assert left == 0
    finally:
        await platform_factory.stop(short)


# Any route of any domain opts in with opt={"idempotent": True}; a public one scopes keys by its credentials.
_slow_calls = 0


@post("/_test/slow-write", opt={"public": True, "idempotent": True})
async def _slow_write() -> dict:
    global _slow_calls
    _slow_calls += 1
    await asyncio.sleep(0.5)
    return {"call": _slow_calls}


async def test_a_request_arriving_while_the_first_runs_waits_then_gives_up(
    running: RunningPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(running.platform)
    app.register(_slow_write)
    monkeypatch.setattr(policies, "IDEMPOTENCY_WAIT_S", 0.1)
    async with serve_app(app) as client:
        headers = {"Idempotency-Key": unique("slow-"), "X-Device-Id": "dev-1"}
        racing = asyncio.create_task(client.post("/_test/slow-write", headers=headers))
        await asyncio.sleep(0.1)
        busy = await client.post("/_test/slow-write", headers=headers)
        assert busy.status_code == 409
        assert busy.json()["error"]["code"] == "idempotency_in_progress"
        assert busy.headers["retry-after"] == "1"
        done = await racing
        assert done.status_code == 201
        replay = await client.post("/_test/slow-write", headers=headers)
        assert replay.content == done.content and replay.headers["idempotent-replayed"] == "true"
        # Another device's credentials: another caller, so the same key runs again.
        other = await client.post("/_test/slow-write", headers=headers | {"X-Device-Id": "dev-2"})
        assert other.status_code == 201 and "idempotent-replayed" not in other.headers


async def test_oversized_bodies_are_refused_before_a_key_is_claimed(running: RunningPlatform) -> None:
    key = unique("big-")
    limit = running.platform.settings.json_body_limit
    body = json.dumps({"name": "Big", "city": "Jambi", "legal_name": "x" * limit})
    response = await running.http.post(
        "/admin/merchants",
        content=body,
        headers=keyed(running.admin_headers, key) | {"content-type": "application/json"},
    )
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
    claimed = await running.platform.db.pool.fetchval("SELECT count(*) FROM idempotency_keys WHERE key = $1", key)
    assert claimed == 0
