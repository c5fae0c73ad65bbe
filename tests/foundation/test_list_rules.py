"""Every list pages and filters by time one way: the shared ``page`` / ``window`` dependencies
(``control_plane/deps.py``, rules in ``core/paging.py``), so a bad value gets one answer on every list.

The lists are found from the app's routes, as ``test_route_permissions`` finds them: a list added
later is walked without touching this file.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar.handlers import HTTPRouteHandler

from qris_soundbox.core.paging import MAX_LIMIT
from tests.actors import logged_in
from tests.foundation.test_http_basics import assert_envelope
from tests.foundation.test_route_permissions import all_handlers
from tests.onboarding import new_merchant
from tests.support import RunningPlatform

SHARED_QUERY_NAMES = {"limit", "cursor", "from", "to"}
# Any syntactically valid id: the rules are checked before the route looks anything up.
SOME_ID = "xyz_01JAAAAAAAAAAAAAAAAAAAAAAA"


def own_query_names(handler: HTTPRouteHandler) -> set[str]:
    """The query parameters a handler declares itself (not through a dependency)."""
    return {
        (getattr(param.kwarg_definition, "name", None) or name)
        for name, param in handler.parsed_fn_signature.parameters.items()
    }


def routes_taking(app: Any, dependency: str) -> list[str]:
    return sorted(
        {
            path
            for path, handler in all_handlers(app)
            if "GET" in handler.http_methods and dependency in handler.parsed_fn_signature.parameters
        }
    )


@pytest.fixture(scope="module")
async def app(running: RunningPlatform) -> Any:
    from qris_soundbox.control_plane.app import create_app

    return create_app(running.platform)


@pytest.fixture(scope="module")
async def merchant_headers(running: RunningPlatform) -> dict[str, str]:
    merchant = await new_merchant(running, approve=True)
    return (await logged_in(running, "merchant", "owner", merchant["id"])).headers


async def answers(
    running: RunningPlatform, merchant_headers: dict[str, str], path: str, params: dict[str, str]
) -> tuple[int, str, Any]:
    url = re.sub(r"\{[^}]*\}", SOME_ID, path)
    headers = merchant_headers if path.startswith("/merchant/") else running.admin_headers
    response = await running.http.get(url, params=params, headers=headers)
    if response.status_code >= 400:
        error = assert_envelope(response, response.status_code, response.json()["error"]["code"])
        return response.status_code, error["code"], error["details"]
    return response.status_code, "", None


async def not_answering(
    running: RunningPlatform,
    merchant_headers: dict[str, str],
    paths: list[str],
    params: dict[str, str],
    expected: tuple[int, str, Any],
) -> dict[str, Any]:
    """The lists among ``paths`` whose answer to ``params`` is not ``expected``, with what they answered."""
    seen = {path: await answers(running, merchant_headers, path, params) for path in paths}
    return {path: answer for path, answer in seen.items() if answer != expected}


def test_no_route_declares_the_shared_parameters_itself(app: Any) -> None:
    own = [(path, sorted(own_query_names(handler) & SHARED_QUERY_NAMES)) for path, handler in all_handlers(app)]
    assert [(path, names) for path, names in own if names] == []


def test_the_lists_are_found(app: Any) -> None:
    paged, windowed = routes_taking(app, "page"), routes_taking(app, "window")
    # Not an exact list (new lists join by themselves): enough that a walk that finds nothing fails.
    assert {
        "/admin/merchants",
        "/admin/transactions",
        "/admin/devices",
        "/admin/audit-logs",
        "/merchant/settlement-batches",
    } <= set(paged)
    assert {
        "/admin/transactions",
        "/admin/ledger-entries",
        "/admin/audit-logs",
        "/admin/settlement-adjustments/export.csv",
    } <= set(windowed)
    assert len(paged) >= 16 and len(windowed) >= 8


NOT_A_NUMBER = [{"message": "Expected `int | null`, got `str`", "key": "limit", "source": "query"}]


@pytest.mark.parametrize(
    ("dependency", "params", "details"),
    [
        ("page", {"limit": "0"}, {"field": "limit"}),
        ("page", {"limit": str(MAX_LIMIT + 1)}, {"field": "limit"}),
        ("page", {"limit": "many"}, NOT_A_NUMBER),  # the framework's own answer, the same on every list
        ("page", {"cursor": "not-a-cursor"}, {"field": "cursor"}),
        ("page", {"cursor": "mer_" + "A" * 300}, {"field": "cursor"}),
        ("window", {"from": "2026-01-01T00:00:00"}, {"field": "from"}),
        ("window", {"to": "2026-01-01T00:00:00"}, {"field": "to"}),
        ("window", {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00+07:00"}, {"field": "from"}),
    ],
)
async def test_a_bad_value_is_the_same_400_on_every_list(
    running: RunningPlatform,
    app: Any,
    merchant_headers: dict[str, str],
    dependency: str,
    params: dict[str, str],
    details: Any,
) -> None:
    expected = (400, "validation_error", details)
    assert await not_answering(running, merchant_headers, routes_taking(app, dependency), params, expected) == {}


@pytest.mark.parametrize(
    ("dependency", "params"),
    [
        ("page", {"limit": "1"}),
        ("page", {"limit": str(MAX_LIMIT), "cursor": SOME_ID}),
        ("window", {"from": "2026-01-01T00:00:00+07:00", "to": "2026-01-01T00:00:00+07:00"}),
        ("window", {"from": "2026-01-01T00:00:00Z"}),
    ],
)
async def test_a_good_value_is_accepted_on_every_list(
    running: RunningPlatform, app: Any, merchant_headers: dict[str, str], dependency: str, params: dict[str, str]
) -> None:
    for path in routes_taking(app, dependency):
        status, code, _ = await answers(running, merchant_headers, path, params)
        # A made-up id in the path is a 404 (the rules passed); anything else must succeed.
        assert status == 200 or (status == 404 and "{" in path), (path, params, status, code)
