"""Driving the lobby page: one browser context per person, as on separate phones."""

from __future__ import annotations

import functools
import re
from typing import Any

from playwright.async_api import Browser, Dialog, Locator, Page, expect

PHONE = {"width": 390, "height": 844}
TV = {"width": 1920, "height": 1080}
CODE = re.compile(r"^[A-Z]{4}$")


async def open_page(browser: Browser, base: str, *, viewport: dict[str, int] | None = None,
                    dialogs: list[str] | None = None) -> Page:  # fmt: skip
    """A fresh context (own sessionStorage) on the lobby; ``dialogs`` collects any alert()."""
    context = await browser.new_context(viewport=viewport or PHONE)
    page = await context.new_page()
    if dialogs is not None:
        page.on("dialog", functools.partial(_dismiss, seen=dialogs))
    await page.goto(base + "/")
    return page


async def _dismiss(dialog: Dialog, seen: list[str]) -> None:
    seen.append(dialog.message)
    await dialog.dismiss()


async def create(page: Page, name: str) -> str:
    """Create a room from the landing page; returns its code once the lobby shows it."""
    await page.fill("#create-name", name)
    await page.click("#create-form button")
    await expect(page.locator("#room-code")).to_have_text(CODE)
    await expect(page.locator("#status")).to_have_text("connected")
    return await page.locator("#room-code").inner_text()


async def join(page: Page, code: str, name: str) -> None:
    await page.fill("#join-code", code)
    await page.fill("#join-name", name)
    await page.click("#join-form button")


def members(page: Page) -> Locator:
    return page.locator("#members li")


def member(page: Page, name: str) -> Locator:
    return page.locator("#members li").filter(has=page.locator(".name", has_text=re.compile(f"^{re.escape(name)}$")))


async def session(page: Page) -> dict[str, Any] | None:
    """The client's saved session (sessionStorage), as the page would resume it."""
    return await page.evaluate("JSON.parse(sessionStorage.getItem('roomd.session'))")
