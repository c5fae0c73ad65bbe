"""Scraping a running platform's ``GET /metrics`` the way Prometheus does, and reading samples from it."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from qris_soundbox.core.context import PlatformContext
from tests.support import RunningPlatform

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(running: RunningPlatform, headers: dict[str, str] | None = None) -> Samples:
    """Every sample of one scrape of the platform's HTTP port, by (sample name, labels)."""
    return await scrape_url(running.http, "/metrics", running.platform, headers)


async def scrape_url(
    http: httpx.AsyncClient, url: str, platform: PlatformContext, headers: dict[str, str] | None = None
) -> Samples:
    """One scrape of ``url``, served by ``platform``; fresh database gauges (no cache)."""
    platform.metrics.database_cache_s = 0
    response = await http.get(url, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value; 0 for a labelled series that has not appeared yet."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}
