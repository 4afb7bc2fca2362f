"""The JavaScript client's reconnection in a real browser: close codes drive every decision."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, expect

from roomd.domain.store import RoomStore
from tests.browser.pages import PHONE, create, join, member, members, open_page, session
from tests.support.processes import RoomdProcess, free_port

OTHER_SECRET = "another-secret-so-every-earlier-token-is-refused-0123456789"


def count_rejoins(page: Page) -> list[str]:
    """Record the page's POST /rooms/:code/rejoin requests."""
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if r.method == "POST" and r.url.endswith("/rejoin") else None)
    return seen


def claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


async def test_restart_resumes_live_rooms_and_ends_a_room_closed_meanwhile(
    browser: Browser, spawn_roomd: Callable[..., RoomdProcess], store: RoomStore, artifacts: Path
) -> None:
    port = str(free_port())
    server = spawn_roomd(PORT=port)
    host = await open_page(browser, server.http)
    code = await create(host, "Ana")
    player = await open_page(browser, server.http)
    await join(player, code, "Bob")
    await expect(host.locator("#members li.connected")).to_have_count(2)
    other = await open_page(browser, server.http)
    other_code = await create(other, "Zoe")
    rejoins = count_rejoins(other)

    server.stop()  # roomd goes away under connected pages (1001 while draining)...
    for page in (host, player, other):
        await expect(page.locator("#status")).to_have_text("reconnecting…")
    await store.close_room(other_code, None)  # ...an administrator closes a room meanwhile...
    spawn_roomd(PORT=port)  # ...and roomd comes back on the same port
    for page in (host, player):  # each on its own backoff: the second may come back seconds later
        await expect(page.locator("#status")).to_have_text("connected", timeout=20_000)
    for page in (host, player):
        await expect(page.locator("#members li.connected")).to_have_count(2)
    await expect(member(player, "Ana").locator(".badge.host")).to_be_visible()
    await host.screenshot(path=str(artifacts / "after-restart.png"))
    # The closed room's page is refused (4404), tries /rejoin once (404), and stops.
    await expect(other.locator("#ended-title")).to_have_text("Room gone", timeout=20_000)
    assert len(rejoins) == 1
    assert await session(other) is None


async def test_a_refused_token_is_traded_once_then_the_session_ends(
    browser: Browser, spawn_roomd: Callable[..., RoomdProcess]
) -> None:
    port = str(free_port())
    server = spawn_roomd(PORT=port)
    page = await open_page(browser, server.http)
    await create(page, "Ana")
    rejoins = count_rejoins(page)

    server.stop()
    spawn_roomd(PORT=port, JWT_SECRET=OTHER_SECRET)  # every token signed before is now refused
    await expect(page.locator("#ended-title")).to_have_text("Session expired", timeout=20_000)
    assert len(rejoins) == 1  # 4401, one /rejoin (401), then no more attempts
    assert await page.evaluate("lobby.client.status") == "ended"
    assert await session(page) is None


async def test_a_newer_tab_of_the_same_player_replaces_the_older(browser: Browser, roomd: RoomdProcess) -> None:
    host = await open_page(browser, roomd.http)
    code = await create(host, "Ana")
    old = await open_page(browser, roomd.http)
    await join(old, code, "Bob")
    await expect(old.locator("#status")).to_have_text("connected")
    saved = await session(old)

    context = await browser.new_context(viewport=PHONE)  # e.g. a duplicated tab: sessionStorage is copied
    await context.add_init_script(f"sessionStorage.setItem('roomd.session', {json.dumps(json.dumps(saved))})")
    new = await context.new_page()
    await new.goto(roomd.http + "/")
    await expect(member(new, "Bob").locator(".badge.you")).to_be_visible()
    await expect(old.locator("#ended-title")).to_have_text("Opened elsewhere")  # 4409: no reconnection fight
    await expect(members(host)).to_have_count(2)
    await expect(host.locator("#members li.connected")).to_have_count(2)
    await expect(new.locator("#status")).to_have_text("connected")


async def test_a_rate_limited_socket_reconnects(browser: Browser, roomd: RoomdProcess) -> None:
    page = await open_page(browser, roomd.http)
    await create(page, "Ana")
    # A function body: evaluate() would call on()'s returned unsubscribe function.
    await page.evaluate("() => { window.codes = []; lobby.client.on('reconnecting', (e) => codes.push(e.code)) }")
    flood = "() => { for (let i = 0; i < 200; i++) lobby.client._send('test:flood').catch(() => {}); }"
    await page.evaluate(flood)  # closed with 4429 (the unanswered frames reject with CONNECTION_LOST)
    await page.wait_for_function("codes.includes(4429)")
    await expect(page.locator("#status")).to_have_text("connected")
    await expect(page.locator("#members li.connected")).to_have_count(1)


async def test_the_token_is_refreshed_before_it_expires(browser: Browser, roomd: RoomdProcess) -> None:
    context = await browser.new_context(viewport=PHONE)
    await context.clock.install()
    page = await context.new_page()
    await page.goto(roomd.http + "/")
    code = await create(page, "Ana")
    before = await session(page)
    assert before is not None
    await page.evaluate("() => { window.refreshed = new Promise((resolve) => lobby.client.on('token', resolve)); }")

    await page.clock.fast_forward("01:00:01")  # half the token's lifetime (ROOM_TTL_SECONDS = 7200)
    await asyncio.wait_for(page.evaluate("window.refreshed"), 10)
    after = await session(page)
    assert after is not None and after["token"] != before["token"]
    old, new = claims(before["token"]), claims(after["token"])
    assert (new["roomCode"], new["userId"]) == (old["roomCode"], old["userId"])
    assert new["exp"] >= old["exp"] and new["jti"] != old["jti"]

    await page.reload()  # the fresh token is the one resumed
    await expect(page.locator("#room-code")).to_have_text(code)
    await expect(page.locator("#status")).to_have_text("connected")
    assert (await session(page) or {}).get("token") == after["token"]
