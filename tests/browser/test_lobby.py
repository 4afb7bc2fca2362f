"""The web lobby and the JavaScript client in a real browser (headless chromium)."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.async_api import Page, expect

from tests.support.processes import RoomdProcess, free_port

XSS_NAME = "<img src=x onerror=alert(1)>"


PHONE = {"width": 390, "height": 844}
TV = {"width": 1920, "height": 1080}


async def open_page(browser, base: str, dialogs: list[str] | None = None, viewport: dict | None = None) -> Page:
    context = await browser.new_context(viewport=viewport or PHONE)
    page = await context.new_page()
    if dialogs is not None:
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    await page.goto(base + "/")
    return page


async def create(page: Page, name: str) -> str:
    await page.fill("#create-name", name)
    await page.click("#create-form button")
    await expect(page.locator("#room-code")).to_have_text(re.compile(r"^[A-Z]{4}$"))
    return await page.locator("#room-code").inner_text()


async def join(page: Page, code: str, name: str) -> None:
    await page.fill("#join-code", code)
    await page.fill("#join-name", name)
    await page.click("#join-form button")


def members(page: Page):
    return page.locator("#members li")


async def test_create_join_lock_kick_and_names_as_text(browser, roomd: RoomdProcess, artifacts: Path) -> None:
    dialogs: list[str] = []
    host = await open_page(browser, roomd.http, dialogs)
    code = await create(host, "Ana")
    player = await open_page(browser, roomd.http, dialogs)
    await join(player, code.lower(), XSS_NAME)  # players type codes in lower case
    for page in (host, player):
        await expect(members(page)).to_have_count(2)
        await expect(page.locator("#members li.connected")).to_have_count(2)
    xss = player.locator("#members li .name").nth(1)
    await expect(xss).to_have_text(XSS_NAME)  # shown as text...
    assert await player.locator("#members img").count() == 0  # ...never as HTML
    await expect(host.locator("#members li").first.locator(".badge.host")).to_be_visible()
    await host.screenshot(path=str(artifacts / "lobby-host.png"), full_page=True)

    await host.click("#lock-toggle")
    await expect(player.locator("#lock-state")).to_contain_text("locked")
    late = await open_page(browser, roomd.http)
    await join(late, code, "Late")
    await expect(late.locator("#message")).to_contain_text("locked")
    await late.screenshot(path=str(artifacts / "join-locked.png"))

    await host.locator(f"#members li:has(.name:text-is('{XSS_NAME}')) button.kick").click()
    await expect(player.locator("#ended-message")).to_contain_text("removed")
    await expect(members(host)).to_have_count(1)
    await player.screenshot(path=str(artifacts / "kicked.png"))
    assert dialogs == []  # the onerror payload never ran


async def test_reload_and_server_restart_keep_the_session(browser, spawn_roomd, artifacts: Path) -> None:
    port = str(free_port())
    server: RoomdProcess = spawn_roomd(PORT=port)
    host = await open_page(browser, server.http)
    code = await create(host, "Ana")
    player = await open_page(browser, server.http)
    await join(player, code, "Bob")
    await expect(members(host)).to_have_count(2)

    await player.reload()  # resumes from sessionStorage: same member, no duplicate
    await expect(player.locator("#room-code")).to_have_text(code)
    await expect(members(player)).to_have_count(2)
    await expect(host.locator("#members li.connected")).to_have_count(2)

    server.stop()  # roomd goes away under connected pages (close 1001)...
    await expect(host.locator("#status")).to_have_text("reconnecting…")
    spawn_roomd(PORT=port)  # ...and comes back on the same port
    for page in (host, player):
        await expect(page.locator("#status")).to_have_text("connected", timeout=20_000)
        await expect(page.locator("#members li.connected")).to_have_count(2)
    await host.screenshot(path=str(artifacts / "after-restart.png"))


async def test_host_closes_the_room(browser, roomd: RoomdProcess, artifacts: Path) -> None:
    host = await open_page(browser, roomd.http, viewport=TV)  # the shared screen of a party game
    code = await create(host, "Ana")
    player = await open_page(browser, roomd.http)
    await join(player, code, "Bob")
    await expect(members(player)).to_have_count(2)
    await expect(members(host)).to_have_count(2)
    box = await host.locator("#room-code").bounding_box()
    assert box is not None and box["height"] > 100  # readable across a living room
    await host.screenshot(path=str(artifacts / "lobby-tv.png"))
    await host.click("#close-room")
    for page in (host, player):
        await expect(page.locator("#ended-message")).to_contain_text("host closed the room")
    await player.screenshot(path=str(artifacts / "closed.png"))


async def test_join_errors_are_explained(browser, roomd: RoomdProcess) -> None:
    page = await open_page(browser, roomd.http)
    await join(page, "zzzz", "Bob")
    await expect(page.locator("#message")).to_contain_text("No room has this code")


async def test_client_module_is_served(browser, roomd: RoomdProcess) -> None:
    page = await open_page(browser, roomd.http)
    response = await page.request.get(roomd.http + "/client/roomd.js")
    assert response.ok and "export class RoomdClient" in await response.text()
