"""A watched browser page on the console, and the steps every console test repeats."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from playwright.async_api import Browser, ConsoleMessage, Page, Request, Response

from tests.actors import PASSWORD, create_user
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
