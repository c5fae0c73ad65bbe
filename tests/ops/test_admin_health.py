"""The seed's remaining endpoints: ``GET /admin/health``, ``GET /admin/health/deep``, ``POST /admin/sample-idempotent``."""

from __future__ import annotations

import sys

from tests.support import RunningPlatform


async def test_admin_health_needs_a_valid_token(running: RunningPlatform) -> None:
    assert (await running.http.get("/admin/health")).status_code == 401
    assert (await running.http.get("/admin/health", headers={"Authorization": "Bearer wrong-token"})).status_code == 401
    answer = await running.http.get("/admin/health", headers=running.admin_headers)
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "principal": "admin:admin"}


async def test_admin_deep_health_names_versions_roles_and_every_process(running: RunningPlatform) -> None:
    assert (await running.http.get("/admin/health/deep")).status_code == 401
    answer = await running.http.get("/admin/health/deep", headers=running.admin_headers)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["status"] == "ok" and report["database"]["status"] == "ok" and report["broker"]["status"] == "ok"
    assert report["instance_id"] == running.platform.instance_id
    assert report["roles"] == ["api", "broker", "worker"]
    versions = report["versions"]
    assert versions["platform"]
    # The server's own count, the same spelling a backup's manifest uses (it once read 18.0 here, 18.6 there).
    version_num = int(await running.platform.db.pool.fetchval("SHOW server_version_num"))
    assert versions["postgresql"] == f"{version_num // 10000}.{version_num % 10000}"
    assert versions["python"] == ".".join(map(str, sys.version_info[:3]))
    assert versions["libraries"]["litestar"] and versions["libraries"]["amqtt"] == "0.12.1"
    mine = [instance for instance in report["instances"] if instance["id"] == running.platform.instance_id]
    assert len(mine) == 1 and mine[0]["alive"] is True and mine[0]["roles"] == ["api", "broker", "worker"]


async def test_sample_idempotent_replays_the_first_answer_for_the_same_key(running: RunningPlatform) -> None:
    headers = {**running.admin_headers, "Idempotency-Key": "probe-1"}
    first = await running.http.post("/admin/sample-idempotent", json={"n": 1}, headers=headers)
    assert first.status_code == 201, first.text
    assert first.json()["received"] == {"n": 1} and first.json()["id"].startswith("smp_")
    again = await running.http.post("/admin/sample-idempotent", json={"n": 1}, headers=headers)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    reused = await running.http.post("/admin/sample-idempotent", json={"n": 2}, headers=headers)
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "idempotency_key_reused"
    fresh = await running.http.post("/admin/sample-idempotent", json={"n": 1}, headers=running.admin_headers)
    assert fresh.status_code == 201 and fresh.json()["id"] != first.json()["id"]
    not_an_object = await running.http.post("/admin/sample-idempotent", json=[1], headers=running.admin_headers)
    assert not_an_object.status_code == 400 and not_an_object.json()["error"]["code"] == "validation_error"
    unauthenticated = await running.http.post("/admin/sample-idempotent", json={"n": 1})
    assert unauthenticated.status_code == 401
