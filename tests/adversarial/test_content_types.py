"""Content types name their charset once (the adversarial run: ``text/csv; charset=utf-8; charset=utf-8``)."""

from __future__ import annotations

from tests.support import RunningPlatform


def charsets(content_type: str) -> list[str]:
    return [p.strip() for p in content_type.split(";") if p.strip().lower().startswith("charset=")]


async def test_metrics_and_csv_name_utf_8_once(running: RunningPlatform) -> None:
    metrics = await running.http.get("/metrics")
    assert metrics.status_code == 200
    assert charsets(metrics.headers["content-type"]) == ["charset=utf-8"], metrics.headers["content-type"]
    report = await running.http.get("/admin/settlement-adjustments/export.csv", headers=running.admin_headers)
    assert report.status_code == 200, report.text
    assert charsets(report.headers["content-type"]) == ["charset=utf-8"], report.headers["content-type"]
