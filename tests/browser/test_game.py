"""Quibble, the example party game, played in headless chromium: one TV page hosts (all the
game logic runs there, on the public JS client), three phone pages play."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.game import CODE, Phone, answer_prompt, join_phone, open_tv, skip
from tests.browser.pages import TV, open_page
from tests.support.processes import RoomdProcess

NAMES = ["Ana", "Bob", "Cleo"]


def assert_private(phone: Phone, others: list[Phone]) -> None:
    """On the wire: this phone got its own prompt and answer slot, nobody else's, never the host's record."""
    keys = phone.state_keys()
    assert {f"prompt:{phone.user_id}", f"answer:{phone.user_id}", "scores", "app"} <= keys
    forbidden = {"host:game"} | {f"{kind}:{o.user_id}" for o in others for kind in ("prompt", "answer")}
    assert not keys & forbidden


def is_vote_prompt(frame: dict[str, Any]) -> bool:
    value = frame["data"].get("value") if frame["event"] == "state:changed" else None
    return isinstance(value, dict) and value.get("kind") == "choice"


async def until(condition: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def start(browser: Browser, base: str) -> tuple[Page, list[Phone]]:
    tv, code = await open_tv(browser, base)
    phones = []
    for i, name in enumerate(NAMES):
        phones.append(await join_phone(browser, base, code.lower() if i == 1 else code, name))
    await expect(tv.locator("#players li")).to_have_count(3)
    await expect(tv.locator("#players li").first.locator(".badge")).to_have_text("VIP")
    ARTIFACTS.mkdir(exist_ok=True)
    await tv.screenshot(path=str(ARTIFACTS / "game-lobby-tv.png"))
    vip = phones[0].page
    await expect(vip.locator("#start")).to_be_enabled()
    for phone in phones[1:]:
        await expect(phone.page.locator("#start")).to_be_hidden()  # only the VIP may start
    await vip.click("#start")  # a game:send to the host, who starts the round
    await expect(tv.locator("#answer")).to_be_visible()
    return tv, phones


async def test_a_full_round(browser: Browser, roomd: RoomdProcess, artifacts: Path) -> None:
    tv, phones = await start(browser, roomd.http)
    await tv.screenshot(path=str(artifacts / "game-answer-tv.png"))
    await phones[0].page.screenshot(path=str(artifacts / "game-prompt-phone.png"))

    # Each phone answers its two prompts, one at a time; every prompt goes to exactly two phones.
    dealt: Counter[str] = Counter()
    for n in (1, 2):
        for phone in phones:
            await expect(phone.page.locator("#text-title")).to_contain_text(f"answer {n} of 2")
            dealt[await answer_prompt(phone, f"says {n}")] += 1
    assert sorted(dealt.values()) == [2, 2, 2]

    # Three duels: the TV shows the prompt and both answers without names, the one phone
    # that wrote neither votes, the authors wait; then the names and points appear.
    expected: Counter[str] = Counter()
    for duel in range(3):
        await expect(tv.locator("#vote")).to_be_visible()
        await expect(tv.locator("#vote-hint")).to_contain_text("0 of 1 votes in")
        prompt = await tv.locator("#vote-prompt").inner_text()
        answers = await tv.locator("#vote .answer").all_inner_texts()
        assert await tv.locator("#vote figcaption").all_inner_texts() == ["", ""]  # no names yet
        authors = {a.split()[0] for a in answers}
        assert len(authors) == 2 and dealt[prompt] == 2
        (voter,) = [p for p in phones if p.name not in authors]
        await expect(voter.page.locator("#choice-prompt")).to_have_text(prompt)
        await expect(voter.page.locator("#choices button")).to_have_text(answers)
        for phone in phones:
            if phone is not voter:
                await expect(phone.page.locator("#wait-title")).to_have_text("Your answer is up!")
        if duel == 0:
            await tv.screenshot(path=str(artifacts / "game-vote-tv.png"))
            await voter.page.screenshot(path=str(artifacts / "game-vote-phone.png"))
        await voter.page.locator("#choices button").nth(duel % 2).click()
        winner = answers[duel % 2].split()[0]
        expected[winner] += 100
        await expect(tv.locator("#vote figcaption").nth(duel % 2)).to_have_text(f"{winner} · 1 vote · +100")
        await expect(voter.page.locator("#wait-title")).to_have_text("Results!")
        if duel == 0:
            await tv.screenshot(path=str(artifacts / "game-reveal-tv.png"))
        await skip(tv)

    # Scores, then the end of this one-round game.
    await expect(tv.locator("#scores-title")).to_have_text("Scores")
    await skip(tv)
    await expect(tv.locator("#scores-title")).to_have_text("Final scores")
    names = await tv.locator("#scoreboard .name").all_inner_texts()
    points = await tv.locator("#scoreboard .points").all_inner_texts()
    board = {name: int(n) for name, n in zip(names, points, strict=True)}
    assert board == {name: expected[name] for name in NAMES}
    assert sum(board.values()) == 300
    await expect(tv.locator("#again")).to_be_visible()
    await tv.screenshot(path=str(artifacts / "game-final-tv.png"))
    for phone in phones:  # the public scoreboard entry reaches every phone
        await expect(phone.page.locator("#score")).to_contain_text(f"{board[phone.name]} points · #")
    await expect(phones[0].page.locator("#wait-title")).to_have_text("Game over!")
    await expect(phones[0].page.locator("#start")).to_be_enabled()  # the VIP may start another game
    await phones[0].page.screenshot(path=str(artifacts / "game-final-phone.png"))
    for phone in phones:
        assert_private(phone, [p for p in phones if p is not phone])


async def test_reloads_mid_round(browser: Browser, roomd: RoomdProcess) -> None:
    """A phone reloaded mid-round is back on its current prompt; so is a reloaded TV."""
    tv, (ana, bob, cleo) = await start(browser, roomd.http)
    first = await answer_prompt(ana, "says 1")
    await expect(ana.page.locator("#text-title")).to_contain_text("answer 2 of 2")
    second = await ana.page.locator("#text-prompt").inner_text()
    bob_first = await bob.page.locator("#text-prompt").inner_text()

    await ana.page.reload()  # after one answer: the second prompt, not the first again
    await expect(ana.page.locator("#text-prompt")).to_have_text(second)
    await expect(ana.page.locator("#text-title")).to_contain_text("answer 2 of 2")
    assert second != first
    await bob.page.reload()  # before answering: the same first prompt
    await expect(bob.page.locator("#text-prompt")).to_have_text(bob_first)

    await answer_prompt(ana, "says 2")
    await expect(ana.page.locator("#wait-title")).to_have_text("All done!")
    await ana.page.reload()  # both answered: still done, nothing to redo
    await expect(ana.page.locator("#wait-title")).to_have_text("All done!")

    await tv.reload()  # the host screen carries on from its stored record
    await expect(tv.locator("#answer")).to_be_visible()
    await expect(tv.locator("#progress li.done")).to_have_text(["Ana✓"])
    for phone in (bob, cleo):
        for n in (1, 2):
            await answer_prompt(phone, f"says {n}")
    await expect(tv.locator("#vote")).to_be_visible()  # the reloaded TV moved the game on
    answers = await tv.locator("#vote .answer").all_inner_texts()
    assert all(" says " in a for a in answers)

    for phone in (ana, bob, cleo):
        assert_private(phone, [p for p in (ana, bob, cleo) if p is not phone])
        sockets = {f["event"] for f in phone.frames}
        assert "room:state" in sockets


async def test_a_phone_never_receives_another_players_entry(browser: Browser, roomd: RoomdProcess) -> None:
    """Checked on the wire, through a dropped socket and its replay: another player's answer
    reaches a phone only as an anonymous option of its own vote prompt, or anonymously in the
    public `stage` (what the TV shows, for the audience) once its duel is on screen."""
    tv, phones = await start(browser, roomd.http)
    ana = phones[0]
    await ana.page.evaluate("quibble.client._socket.close()")  # a dropped socket...
    sockets = len(ana.urls)  # the lobby's, then the controller's
    await until(lambda: len(ana.urls) == sockets + 1 and any(f["event"] == "room:resumed" for f in ana.frames))
    assert "since=" in ana.urls[-1] and "since=" not in ana.urls[-2]  # ...back with ?since=, replayed
    for phone in phones:
        for n in (1, 2):
            await answer_prompt(phone, f"secret {n}")
    await expect(tv.locator("#vote")).to_be_visible()
    await until(lambda: any(is_vote_prompt(f) for p in phones for f in p.frames))  # the first voter's prompt
    for phone in phones:
        assert_private(phone, [p for p in phones if p is not phone])
        for frame in phone.frames:
            text = json.dumps(frame)
            for other in phones:
                if other is not phone and f"{other.name} secret" in text:
                    assert frame["event"] == "state:changed" and other.user_id not in text
                    if frame["data"]["key"] == "stage":  # the duel on the TV, names not revealed yet
                        duel = frame["data"]["value"]["duel"]
                        assert duel["result"] is None and f"{other.name} secret" in " ".join(map(str, duel["answers"]))
                        continue
                    assert frame["data"]["key"] == f"prompt:{phone.user_id}"
                    assert frame["data"]["value"]["kind"] == "choice"


async def test_reachable_from_the_lobby(browser: Browser, roomd: RoomdProcess) -> None:
    page = await open_page(browser, roomd.http, viewport=TV)
    await page.click("#host-game")
    await expect(page.locator("#create")).to_be_visible()
    await page.click("#create")  # the screen opens a room and shows its code, large
    await expect(page.locator("#room-code")).to_have_text(CODE)
    box = await page.locator("#room-code").bounding_box()
    assert box is not None and box["height"] > 150
    await expect(page.locator("#lobby-hint")).to_have_text("Waiting for players: 0 of at least 3.")
