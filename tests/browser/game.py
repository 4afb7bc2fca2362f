"""Driving Quibble, the example game: a TV page (the host) and phone pages, each in its own
browser context, with every WebSocket frame a phone receives recorded from the wire."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import Browser, Page, WebSocket, expect

from tests.browser.pages import PHONE, TV, join

# Phases end when everybody has answered or voted; results and scores stay up until the
# test moves the TV's (fake) clock on, so nothing depends on how fast this machine is.
SLOW = "rounds=1&answer=600&vote=600&reveal=600"
CODE = re.compile(r"^[A-Z]{4}$")


@dataclass
class Phone:
    """One player: the page, their name and user id, and the frames their sockets received."""

    page: Page
    name: str
    frames: list[dict[str, Any]] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)  # of its WebSockets, in order
    user_id: str = ""

    def record(self, socket: WebSocket) -> None:
        if "/ws?" in socket.url:
            self.urls.append(socket.url)
        socket.on("framereceived", lambda payload: self.frames.append(json.loads(payload)))

    def state_keys(self) -> set[str]:
        """Every state key this phone was ever sent, in snapshots and in changes."""
        keys: set[str] = set()
        for frame in self.frames:
            if frame["event"] == "room:state":
                keys |= set(frame["data"].get("state", {}))
            elif frame["event"] in ("state:changed", "state:deleted"):
                keys.add(frame["data"]["key"])
        return keys


async def open_tv(browser: Browser, base: str, query: str = SLOW) -> tuple[Page, str]:
    """The host screen on a TV-sized page with a controllable clock; returns it and the room code."""
    context = await browser.new_context(viewport=TV)
    await context.clock.install()  # time flows, but the test can jump it forward
    page = await context.new_page()
    await page.goto(f"{base}/static/game/host.html?{query}")
    await page.click("#create")
    await expect(page.locator("#room-code")).to_have_text(CODE)
    return page, await page.locator("#room-code").inner_text()


async def join_phone(browser: Browser, base: str, code: str, name: str) -> Phone:
    """A player joins from roomd's lobby, which sends them on to the game's controller."""
    context = await browser.new_context(viewport=PHONE)
    page = await context.new_page()
    phone = Phone(page, name)
    page.on("websocket", phone.record)
    await page.goto(base + "/")
    await join(page, code, name)
    await page.wait_for_url("**/static/game/play.html")
    await expect(page.locator("#me")).to_have_text(name)
    phone.user_id = await page.evaluate("quibble.client.session.userId")
    return phone


async def answer_prompt(phone: Phone, suffix: str) -> str:
    """Answer the prompt the phone shows; returns the prompt. The answer names its author."""
    page = phone.page
    await expect(page.locator("#text")).to_be_visible()
    prompt = await page.locator("#text-prompt").inner_text()
    await page.fill("#text-answer", f"{phone.name} {suffix}")
    await page.click("#text button")
    return prompt


async def skip(tv: Page, minutes: int = 16) -> None:
    """Jump the TV's clock past the current results or scores screen."""
    await tv.clock.fast_forward(f"{minutes}:00")


async def watch(browser: Browser, url: str, name: str) -> Phone:
    """A viewer opens the watch link the TV shows and joins the audience under ``name``."""
    context = await browser.new_context(viewport=PHONE)
    page = await context.new_page()
    viewer = Phone(page, name)
    page.on("websocket", viewer.record)
    await page.goto(url)
    await page.fill("#join-name", name)
    await page.click("#join button")
    await expect(page.locator("#you")).to_have_text(name)
    viewer.user_id = await page.evaluate("quibble.client.session.userId")  # its audienceId
    return viewer
