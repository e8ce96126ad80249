"""End-to-end fixtures: the real local stack (Redis, backend serving static/dist,
worker, relay, audit sink) and Debian's headless Chromium under Playwright.

`playwright install` cannot download browsers here, so the browser is the
system's /usr/bin/chromium (.ci/run installs it with apt-get). The app must be
built (`make install` runs `npm run build`); without static/dist the tests fail
with a message saying so rather than testing nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from integration.services.stack import LocalStack, local_stack
from playwright.sync_api import Browser, BrowserType, ConsoleMessage, Page, Playwright, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "static" / "dist"
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS, "headless": True}


# pytest-playwright keeps one Playwright per session, and the sync API leaves its
# event loop marked as running on the main thread until it stops: every asyncio
# test that the same xdist worker runs afterwards would fail ("Runner.run() cannot
# be called from a running event loop"). So Playwright and the browser live for
# this module only and are stopped before the worker moves on.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    pw = sync_playwright().start()
    yield pw
    pw.stop()


@pytest.fixture(scope="module")
def browser_type(playwright: Playwright, browser_name: str) -> BrowserType:
    browser: BrowserType = getattr(playwright, browser_name)
    return browser


@pytest.fixture(scope="module")
def launch_browser(
    browser_type_launch_args: dict[str, Any], browser_type: BrowserType
) -> Callable[..., Browser]:
    def launch(**kwargs: Any) -> Browser:
        return browser_type.launch(**{**browser_type_launch_args, **kwargs})

    return launch


@pytest.fixture(scope="module")
def browser(launch_browser: Callable[..., Browser]) -> Iterator[Browser]:
    browser = launch_browser()
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def browser_context_args() -> dict[str, Any]:
    return {"viewport": {"width": 1280, "height": 900}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    if not (DIST / "index.html").is_file():
        pytest.fail("static/dist is not built: run `make install` (npm ci && npm run build in static/)")
    with local_stack(tmp_path_factory.mktemp("e2e"), ENTAIL_STATIC_DIR=str(DIST)) as s:
        yield s


class ConsoleLog:
    """Every console error and uncaught exception of a page."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def unexpected(self, *allowed: str) -> list[str]:
        return [e for e in self.errors if not any(a in e for a in allowed)]


@pytest.fixture
def console(page: Page) -> ConsoleLog:
    return ConsoleLog(page)


def screenshot(page: Page, name: str, *, full_page: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)
