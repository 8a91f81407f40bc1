"""The real headless browser of the web tests: Debian's /usr/bin/chromium driven by playwright (no download)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"  # gitignored; screenshots kept from a run


def browser_or_skip() -> None:
    """Skip when playwright or chromium is missing, except on CI (CI=true), where that is a failure."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("playwright is niet geïnstalleerd")
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true maar /usr/bin/chromium ontbreekt (apt-get install -y chromium)")
        pytest.skip("geen browser: /usr/bin/chromium ontbreekt (apt-get install -y chromium)")


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A launched headless chromium (playwright ``Browser``), closed afterwards."""
    browser_or_skip()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()
