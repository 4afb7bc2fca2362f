"""The web lobby in a real browser (headless chromium): what players and hosts see and do."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.async_api import Browser, expect

from roomd.domain.store import RoomStore
from roomd.protocol import protocol_dir
from tests.browser.pages import TV, create, join, member, members, open_page, session
from tests.support.clients import Api
from tests.support.processes import RoomdProcess

XSS_NAME = "<img src=x onerror=alert(1)>"


async def test_create_join_lock_kick_and_names_as_text(browser: Browser, roomd: RoomdProcess, artifacts: Path) -> None:
    dialogs: list[str] = []
    host = await open_page(browser, roomd.http, dialogs=dialogs)
    code = await create(host, "Ana")
    player = await open_page(browser, roomd.http, dialogs=dialogs)
    await join(player, code.lower(), XSS_NAME)  # players type codes in lower case
    for page in (host, player):
        await expect(members(page)).to_have_count(2)
        await expect(page.locator("#members li.connected")).to_have_count(2)
        await expect(member(page, "Ana").locator(".badge.host")).to_be_visible()
        await expect(member(page, XSS_NAME)).to_have_count(1)  # the name shows as text...
        assert await page.locator("img").count() == 0  # ...and never becomes an element
    await expect(member(player, XSS_NAME).locator(".badge.you")).to_be_visible()
    await expect(player.locator("#lock-toggle")).to_be_hidden()  # host controls are the host's
    await host.screenshot(path=str(artifacts / "lobby-phone.png"), full_page=True)

    await host.click("#lock-toggle")
    await expect(player.locator("#lock-state")).to_contain_text("locked")
    late = await open_page(browser, roomd.http)
    await join(late, code, "Late")
    await expect(late.locator("#message")).to_contain_text("locked")
    await expect(late.locator("#landing")).to_be_visible()
    await late.screenshot(path=str(artifacts / "join-locked.png"))

    await member(host, XSS_NAME).locator("button.kick").click()
    await expect(player.locator("#ended-title")).to_have_text("Removed from the room")
    await expect(player.locator("#ended-message")).to_contain_text("removed")
    await expect(members(host)).to_have_count(1)
    assert await session(player) is None  # the dead token is forgotten: a reload starts afresh
    await player.screenshot(path=str(artifacts / "kicked.png"))
    assert dialogs == []  # the onerror payload never ran


async def test_reload_keeps_the_member(browser: Browser, roomd: RoomdProcess, store: RoomStore) -> None:
    host = await open_page(browser, roomd.http)
    code = await create(host, "Ana")
    player = await open_page(browser, roomd.http)
    await join(player, code, "Bob")
    await expect(members(host)).to_have_count(2)
    before = await session(player)

    await player.reload()  # resumes from sessionStorage: same member, same token, no duplicate
    await expect(player.locator("#room-code")).to_have_text(code)
    await expect(player.locator("#status")).to_have_text("connected")
    assert await session(player) == before
    await expect(member(player, "Bob").locator(".badge.you")).to_be_visible()
    for page in (host, player):
        await expect(members(page)).to_have_count(2)
        await expect(page.locator("#members li.connected")).to_have_count(2)
    assert [m["displayName"] for m in await store.get_members(code)] == ["Ana", "Bob"]


async def test_leave_make_host_and_close(browser: Browser, roomd: RoomdProcess, artifacts: Path) -> None:
    host = await open_page(browser, roomd.http, viewport=TV)  # the shared screen of a party game
    code = await create(host, "Ana")
    bob = await open_page(browser, roomd.http)
    await join(bob, code, "Bob")
    cleo = await open_page(browser, roomd.http)
    await join(cleo, code, "Cleo")
    await expect(members(host)).to_have_count(3)
    await expect(host.locator("#members li.connected")).to_have_count(3)
    box = await host.locator("#room-code").bounding_box()
    assert box is not None and box["height"] > 100  # readable across a living room
    await host.screenshot(path=str(artifacts / "lobby-tv.png"))

    await cleo.click("#leave")
    await expect(cleo.locator("#ended-title")).to_have_text("You left")
    for page in (host, bob):
        await expect(members(page)).to_have_count(2)

    await member(host, "Bob").locator("button.make-host").click()
    await expect(member(bob, "Bob").locator(".badge.host")).to_be_visible()
    await expect(bob.locator("#close-room")).to_be_visible()
    await expect(host.locator("#close-room")).to_be_hidden()

    await bob.click("#close-room")
    for page in (host, bob):
        await expect(page.locator("#ended-title")).to_have_text("Room closed")
        await expect(page.locator("#ended-message")).to_have_text("The host closed the room.")
    await host.screenshot(path=str(artifacts / "closed-tv.png"))
    await host.click("#restart")
    await expect(host.locator("#landing")).to_be_visible()
    assert await create(host, "Ana") != code  # the same page hosts the next room
    await expect(members(host)).to_have_count(1)


async def test_join_errors_are_explained(browser: Browser, roomd: RoomdProcess, api: Api, artifacts: Path) -> None:
    full = await api.create("Host", maxUsers=1)
    page = await open_page(browser, roomd.http)
    await page.screenshot(path=str(artifacts / "landing.png"))
    cases = [
        ("zzzz", "Bob", "No room has this code"),
        (full["roomCode"].lower(), "Bob", "This room is full"),
        (full["roomCode"], "   ", "Please choose another name"),
    ]
    for code, name, message in cases:
        await join(page, code, name)
        await expect(page.locator("#message")).to_contain_text(message)
        await expect(page.locator("#landing")).to_be_visible()
    assert await session(page) is None


async def test_every_error_code_and_end_reason_has_a_message(browser: Browser, roomd: RoomdProcess) -> None:
    page = await open_page(browser, roomd.http)
    errors, ended = await page.evaluate(
        "import('/static/messages.js').then(m => [Object.keys(m.ERRORS), Object.keys(m.ENDED)])"
    )
    codes = json.loads((protocol_dir() / "codes.json").read_text())
    assert set(codes["errors"]) <= set(errors)
    reasons = {"LEFT", "KICKED", "REPLACED", "CLOSED", "NOT_FOUND", "UNAUTHORIZED", *codes["closedReasons"]}
    assert reasons <= set(ended)
