"""A bounded property-based fuzz of every operation of the OpenAPI schema (schemathesis).

The platform is the real one the harness starts; the schema is the one it
serves at ``/schema/openapi.json``. Every operation gets generated requests
that fit the schema and requests that break it, with the admin token and a
real device's credentials on each, from a fixed seed so a failure replays.
It fails on any 5xx, and on any 4xx that is not the error envelope of SPEC §3.

Hypothesis runs in a worker thread with blocking requests while the test's
event loop keeps serving them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from tests.devices.helpers import provisioned_device
from tests.foundation.test_http_basics import ENVELOPE_KEYS
from tests.support import PlatformFactory, RunningPlatform

SEED = 20261129
# Per operation and generation mode: 82 operations x 2 modes x 6, about 750 distinct requests, under a minute.
MAX_EXAMPLES = 6
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)


@dataclass
class FuzzReport:
    operations: int = 0
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def _problem(response: schemathesis.Response) -> str | None:
    if response.status_code >= 500:
        return "server error"
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        return "4xx without a JSON body"
    if response.request.url and "/v1.0/" in response.request.url:
        # SNAP routes (SPEC §13) answer SNAP's own shape: the 7-digit code opens with the HTTP status.
        code = body.get("responseCode") if isinstance(body, dict) else None
        if set(body) != {"responseCode", "responseMessage"} or not isinstance(code, str):
            return "4xx on a SNAP route that is not SNAP's answer"
        if len(code) != 7 or not code.isdigit() or code[:3] != str(response.status_code):
            return "4xx on a SNAP route whose responseCode does not carry its status"
        return None
    if not isinstance(body, dict) or set(body) != {"error"} or not isinstance(body["error"], dict):
        return "4xx that is not the error envelope"
    error = body["error"]
    if set(error) != ENVELOPE_KEYS or not isinstance(error["code"], str) or not error["code"]:
        return "4xx envelope with missing or extra keys"
    if [error["request_id"]] != response.headers.get("x-request-id"):  # lower-case names, lists of values
        return "4xx envelope whose request_id is not the X-Request-Id header"
    return None


def _fuzz(schema_document: dict[str, Any], base_url: str, headers: dict[str, str]) -> FuzzReport:
    schema = schemathesis.openapi.from_dict(schema_document)
    report = FuzzReport()
    for result in schema.get_all_operations():
        operation = result.ok()
        report.operations += 1
        for mode in MODES:
            try:
                _exercise(operation, mode, base_url, headers, report)()
            except Unsatisfiable:
                continue  # nothing in this operation can be made invalid (no parameters, no body)
    return report


def _exercise(operation: Any, mode: Any, base_url: str, headers: dict[str, str], report: FuzzReport) -> Any:
    """The hypothesis test of one operation in one generation mode; problems go to ``report``."""

    @hypothesis.seed(SEED)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def exercise(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        report.requests += 1
        report.statuses[response.status_code] = report.statuses.get(response.status_code, 0) + 1
        problem = _problem(response)
        if problem is not None:
            # Recorded, not raised: one run lists every failing operation, without shrinking.
            report.failures.append(
                f"{operation.label} ({mode.value}): {problem}: {response.status_code} "
                f"{response.text[:300]!r}\n  replay: {case.as_curl_command()}"
            )

    return exercise


@pytest.fixture(scope="module")
async def fuzz_target(platform_factory: PlatformFactory) -> RunningPlatform:
    # Rate limits off: the fuzz sends more admin writes in a minute than the limit allows,
    # and 429 for everything would hide what the routes behind it answer.
    return await platform_factory.start(rate_limit_enabled=False)


async def test_every_operation_answers_without_5xx_and_4xx_is_the_envelope(fuzz_target: RunningPlatform) -> None:
    document = (await fuzz_target.http.get("/schema/openapi.json")).json()
    device_id, secret = await provisioned_device(fuzz_target)
    headers = fuzz_target.admin_headers | {"X-Device-Id": device_id, "X-Device-Secret": secret}
    started = time.monotonic()
    report = await asyncio.to_thread(_fuzz, document, fuzz_target.http_url, headers)
    elapsed = time.monotonic() - started
    documented = sum(
        1
        for item in document["paths"].values()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    )
    summary = (
        f"{report.operations} operations, {report.requests} requests in {elapsed:.0f} s, "
        f"statuses {dict(sorted(report.statuses.items()))}"
    )
    assert report.operations == documented, summary
    assert report.requests >= report.operations * MAX_EXAMPLES, summary
    assert not report.failures, summary + "\n" + "\n".join(report.failures)
