"""End-to-end fixtures: the real local stack (Redis, backend serving static/dist,
worker, relay, audit sink) and Debian's headless Chromium under Playwright.

The browser is the one `scripts/ensure_browser.sh` (run by `make test`) found or
got and recorded in .tools/browser: a system Chromium, Playwright's own download
where its host is reachable, or Debian's package. $ENTAIL_CHROMIUM overrides it.
The app must be
built (`make install` runs `npm run build`); without static/dist the tests fail
with a message saying so rather than testing nothing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from integration.services.stack import LocalStack, local_stack
from playwright.sync_api import Browser, BrowserType, ConsoleMessage, Page, Playwright, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "static" / "dist"
SCREENSHOTS = ROOT / "docs" / "screenshots"
BROWSER_RECORD = ROOT / ".tools" / "browser"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_executable() -> str | None:
    """The browser to launch: a path, or None for Playwright's own download."""
    override = os.environ.get("ENTAIL_CHROMIUM")
    if override:
        return override
    if BROWSER_RECORD.exists():
        recorded = BROWSER_RECORD.read_text().strip()
        return None if recorded == "playwright" else recorded
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    executable = chromium_executable()
    args = {**browser_type_launch_args, "args": CHROMIUM_ARGS, "headless": True}
    if executable is None and not BROWSER_RECORD.exists():
        pytest.fail(
            "no Chromium found: run scripts/ensure_browser.sh (make test does) or set ENTAIL_CHROMIUM"
        )
    if executable is not None:
        if not Path(executable).exists():
            pytest.fail(f"{executable} is missing: run scripts/ensure_browser.sh (make test does)")
        args["executable_path"] = executable
    return args


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
