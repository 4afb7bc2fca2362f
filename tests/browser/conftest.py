"""Browser fixtures: Debian's chromium driven by Playwright (headless, no browser download).

Without chromium the browser tests are skipped, except in CI (``CI=true``), where a
skipped browser test would hide a broken lobby: there they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from playwright.async_api import Browser, async_playwright

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# Without the background-networking flags chromium keeps trying hosts this machine cannot reach.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required in CI (.ci/run installs it with apt-get)")
        pytest.skip(f"no chromium at {CHROMIUM}: apt-get install chromium, or set CHROMIUM_PATH")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def artifacts() -> Path:
    """Where screenshots of the key screens go (gitignored; CI can keep them)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(autouse=True)
async def leave_redis_clean(redis_client: aioredis.Redis) -> AsyncIterator[None]:
    """Start and end each browser test with an empty private Redis.

    Pages make many requests from 127.0.0.1; the throttle counters they leave in Redis
    would otherwise be charged to whichever test runs next.
    """
    yield
    await redis_client.flushdb()
