"""deploy/grafana/qris-soundbox.json queries only what a running platform exports at ``GET /metrics``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.ops.helpers import names, scrape
from tests.support import RunningPlatform

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "qris-soundbox.json"

# The PromQL tokens: strings, durations, numbers, identifiers (metric names may hold ':'), operators.
_TOKEN = re.compile(
    r"""\s*(?:(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<duration>\[[0-9smhdwy:]+\])"""
    r"""|(?P<number>[0-9]+(?:\.[0-9]+)?)|(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)"""
    r"""|(?P<op>=~|!~|!=|==|>=|<=|[-+*/%^(){},=<>]))"""
)
_FUNCTIONS = {"rate", "irate", "increase", "sum", "max", "min", "avg", "count", "histogram_quantile", "topk", "abs"}
_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_KEYWORDS = {"bool", "and", "or", "unless", "offset"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads; fails on what this small parser does not know."""
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(expr.rstrip()):
        match = _TOKEN.match(expr, position)
        assert match is not None and match.end() > position, f"cannot parse {expr[position:]!r} in {expr!r}"
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    found: set[str] = set()
    depth = {"(": 0, "{": 0}
    label_list = False  # inside by (...) and friends
    for index, (kind, text) in enumerate(tokens):
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if text in ("(", "{"):
            depth[text] += 1
        elif text in (")", "}"):
            depth["(" if text == ")" else "{"] -= 1
            assert min(depth.values()) >= 0, f"unbalanced {expr!r}"
            label_list = label_list and text != ")"
        elif kind == "ident" and depth["{"] == 0 and not label_list:
            if text in _GROUPING:
                assert following == "(", f"{text} without a label list in {expr!r}"
                label_list = True
            elif text in _FUNCTIONS:  # sum(...), or sum by (...) (...)
                assert following == "(" or following in _GROUPING, f"{text} without arguments in {expr!r}"
            else:
                assert following != "(", f"unknown function {text} in {expr!r}"
                if text not in _KEYWORDS:
                    found.add(text)
    assert depth == {"(": 0, "{": 0}, f"unbalanced {expr!r}"
    return found


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_the_small_parser_finds_metrics_and_skips_labels_and_functions() -> None:
    expr = 'histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{status=~"5..", x="b"}[5m]))) / b_total'
    assert metric_names(expr) == {"a_bucket", "b_total"}
    with pytest.raises(AssertionError):
        metric_names("sum(rate(a_total[5m])")
    with pytest.raises(AssertionError):
        metric_names("made_up_function(a_total)")


def test_the_dashboard_shows_what_the_issue_asks_for() -> None:
    titles = " | ".join(panel["title"] for panel in json.loads(DASHBOARD.read_text())["panels"]).lower()
    for subject in ("fleet online", "payment rate", "announce latency", "outbox", "auth failures", "http errors"):
        assert subject in titles, subject
    queries = " ".join(dashboard_queries())
    assert "histogram_quantile(0.5," in queries and "histogram_quantile(0.99," in queries


async def test_every_metric_the_dashboard_queries_is_exported(running: RunningPlatform) -> None:
    # One request first, so the HTTP series exist (a labelled series appears with its first event).
    assert (await running.http.get("/health")).status_code == 200
    exported = names(await scrape(running))
    queried = {name for expr in dashboard_queries() for name in metric_names(expr)}
    assert queried, "the dashboard queries nothing"
    assert queried <= exported, sorted(queried - exported)
