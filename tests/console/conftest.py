"""The console's browser tests: Debian's Chromium driven by Playwright against the real platform.

``make install-test`` installs Chromium when it is missing; these tests never skip. Every
page a test opens is watched (``Watched``): a request that leaves the platform's origin, an
error in the browser console, or an API answer of 4xx/5xx the test did not expect fails it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright

from tests.console.browser import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()
