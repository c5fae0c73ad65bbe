"""A watched browser page on the console, and the steps every console test repeats."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from playwright.async_api import Browser, ConsoleMessage, Locator, Page, Request, Response, expect

from tests.actors import PASSWORD, create_user
from tests.qr_images import qr_text
from tests.support import RunningPlatform

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
# Where `CONSOLE_SCREENSHOTS=docs/console` makes tests/console/test_pages.py save each page.
SCREENSHOTS = os.environ.get("CONSOLE_SCREENSHOTS")


@dataclass
class Watched:
    """What a page did that a console must never do: leave its origin, log errors, get API errors."""

    origin: str
    foreign_requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    api_failures: list[tuple[str, str, int]] = field(default_factory=list)
    expected: set[tuple[str, str, int]] = field(default_factory=set)

    def on_request(self, request: Request) -> None:
        if not request.url.startswith((self.origin + "/", "data:", "blob:")):
            self.foreign_requests.append(request.url)

    def on_response(self, response: Response) -> None:
        if response.status >= 400:
            self.api_failures.append((response.request.method, urlsplit(response.url).path, response.status))

    def on_console(self, message: ConsoleMessage) -> None:
        # Chromium logs every 4xx/5xx fetch as a console error too: those are judged as API failures.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.console_errors.append(message.text)

    def expect(self, method: str, path: str, status: int) -> None:
        """An API error this test provokes on purpose (a wrong password, another merchant's batch)."""
        self.expected.add((method, path, status))

    def assert_clean(self) -> None:
        assert self.foreign_requests == []
        assert self.console_errors == []
        assert [failure for failure in self.api_failures if failure not in self.expected] == []


@asynccontextmanager
async def console_page(browser: Browser, running: RunningPlatform) -> AsyncIterator[tuple[Page, Watched]]:
    """A fresh browser context (its own sessionStorage) on the console; clean when it closes."""
    context = await browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    watched = Watched(origin=running.http_url)
    page.on("request", watched.on_request)
    page.on("response", watched.on_response)
    page.on("console", watched.on_console)
    page.on("pageerror", lambda error: watched.console_errors.append(str(error)))
    try:
        yield page, watched
        watched.assert_clean()
    finally:
        await context.close()


async def log_in(page: Page, running: RunningPlatform, kind: str, email: str, password: str = PASSWORD) -> None:
    """Log in through the console's own form and wait for the landing page."""
    await page.goto(f"{running.http_url}/ui/{kind}-login")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    landing = "admin-dashboard-overview" if kind == "admin" else "merchant-today"
    await page.wait_for_url(f"**/ui/{landing}")


async def user_logged_in(
    page: Page, running: RunningPlatform, kind: str, role: str, merchant_id: str | None = None
) -> str:
    """A new user of this role, logged in through the form; its email."""
    email, _ = await create_user(running, kind, role, merchant_id)
    await log_in(page, running, kind, email)
    return email


async def open_page(page: Page, running: RunningPlatform, path: str) -> None:
    """Open a console page and wait until its content has rendered (no more "loading")."""
    await page.goto(f"{running.http_url}/ui/{path}")
    await page.wait_for_selector("body[data-ready]", state="attached")


async def click_and_reload(page: Page, selector: str) -> None:
    """Click what reloads or leaves the page, and wait until the next page has rendered.

    ``body[data-ready]`` is already on the page being left, so waiting on it alone can return before the
    navigation starts, and reading the page then fails with "page is navigating"."""
    async with page.expect_navigation():
        await page.click(selector)
    await page.wait_for_selector("body[data-ready]", state="attached")


async def shown_qr(image: Locator) -> str:
    """The text of the QR code an ``img.qr`` shows, read from a screenshot once the image is on screen.

    The console creates the ``<img>`` first and sets its ``src`` when the fetch returns, and an ``<img>``
    without a ``src`` counts as ``complete``: wait for the blob URL, for the image to be decoded, and for
    two frames (painted), then screenshot at the device's scale."""
    await expect(image).to_have_attribute("src", re.compile("^blob:"))
    await image.evaluate("img => img.decode()")
    await image.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    return qr_text(await image.screenshot(scale="device", animations="disabled"))


async def submit_dialog(page: Page, opener: str, **fields: str) -> None:
    """Open a form dialog with the button ``opener``, fill its fields (a select by value) and save."""
    await page.click(opener)
    for name, value in fields.items():
        field = page.locator(f"dialog [name={name}]")
        if await field.evaluate("node => node.tagName") == "SELECT":
            await field.select_option(value)
        else:
            await field.fill(value)
    await page.click("dialog button[type=submit]")
