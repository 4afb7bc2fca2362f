"""The JavaScript client as a game developer uses it, on a plain page (not the lobby)."""

from __future__ import annotations

import asyncio

from playwright.async_api import Browser

from tests.browser.pages import open_page
from tests.support.clients import Api
from tests.support.processes import RoomdProcess

GAME_PAGE_SCRIPT = """async ([base, token]) => {
  const { RoomdClient, joinRoom } = await import("/client/roomd.js");
  const once = (client, event) => new Promise((resolve) => client.on(event, resolve));
  const host = new RoomdClient({ storage: null });     // a game screen that keeps nothing
  const ready = once(host, "room:state");
  host.connect(token);                                 // a token handed out elsewhere
  await ready;
  const arrived = once(host, "user:connected");
  const player = await joinRoom(base, host.session.roomCode.toLowerCase(), "Bob");
  player.connect();
  const { user } = await arrived;
  const reported = once(host, "error");
  const error = await host.kick(host.session.userId).catch((err) => err);  // rejects with the code
  const event = await reported;                        // and every error:room is also an "error"
  const ended = once(player, "session:ended");
  const kicked = await host.kick(user.id);             // resolves on the ack
  const end = await ended;
  while (host.users.length > 1) await once(host, "change");
  return {
    joined: user.displayName, error: [error.code, error.event, event.id === error.id], end,
    acked: kicked.seq > 0 && kicked.seq <= host.seq,
    users: host.users.map((u) => u.displayName), isHost: host.isHost, playerStatus: player.status,
  };
}"""


async def test_the_client_api_on_a_game_page(browser: Browser, roomd: RoomdProcess, api: Api) -> None:
    """What a game developer writes: connect(token), joinRoom(baseUrl, ...), events, host actions."""
    membership = await api.create("Screen")
    page = await open_page(browser, roomd.http)
    result = await asyncio.wait_for(page.evaluate(GAME_PAGE_SCRIPT, [roomd.http, membership["token"]]), 15)
    assert result == {
        "joined": "Bob",
        "error": ["CANNOT_KICK_SELF", "room:kick", True],  # error:room echoes the frame's id and event
        "end": {"reason": "KICKED", "code": 4403},
        "acked": True,
        "users": ["Screen"],
        "isHost": True,
        "playerStatus": "ended",
    }


async def test_client_module_is_served(browser: Browser, roomd: RoomdProcess) -> None:
    page = await open_page(browser, roomd.http)
    response = await page.request.get(roomd.http + "/client/roomd.js")
    assert response.ok and "javascript" in response.headers["content-type"]
    assert "export class RoomdClient" in await response.text()
