"""Quibble with an audience: viewers (not players) follow the game from the watch link the TV
shows, see what the TV shows but never a player's private entries, and vote in the poll the
TV opens for each duel; the audience's favourite answer earns bonus points."""

from __future__ import annotations

import json
import re
from collections import Counter

from playwright.async_api import Browser, expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.game import Phone, answer_prompt, join_phone, open_tv, skip, watch
from tests.browser.pages import PHONE
from tests.support.processes import RoomdProcess

NAMES = ["Ana", "Bob", "Cleo"]


async def vote(viewer: Phone, choice: str) -> None:
    """Tap an answer on the viewer's page once the poll is open; wait for the server's ack."""
    page = viewer.page
    button = page.locator(f"#duel button[data-choice='{choice}']")
    await expect(button).to_be_enabled()
    await button.click()
    await expect(page.locator("#duel-hint")).to_have_text(f"You voted {choice}. Tap the other answer to change it.")
    await expect(button).to_have_class("big choice picked")


def assert_viewer_private(viewer: Phone, players: list[Phone], host_id: str) -> None:
    """On the wire: a viewer got the public stage and nothing of any player's prompt or answer
    slot, nor the host's record, nor the members-only entries; no running tallies (not public);
    and an answer's text only inside the stage, once its duel was on the TV."""
    assert viewer.state_keys() == {"stage"}
    events = Counter(f["event"] for f in viewer.frames)
    assert events["poll:opened"] == 3 and events["poll:tally"] == 0 and events["audience:count"] == 0
    for frame in viewer.frames:
        if frame["event"] == "poll:closed":
            assert set(frame["data"]) == {"pollId"}  # the counts went to the host only
        text = json.dumps(frame)
        if any(f"{p.name} says" in text for p in players):  # an answer: only as a duel of the stage
            data = frame["data"]
            if frame["event"] == "room:state":  # a reload mid-duel
                assert set(data["state"]) == {"stage"}
                stage = data["state"]["stage"]["value"]
            else:
                assert frame["event"] == "state:changed" and data["key"] == "stage"
                stage = data["value"]
            assert stage["status"] == "vote" and any(" says " in str(a) for a in stage["duel"]["answers"])
        if frame["event"] == "state:changed":  # the stage names players, never by id (`by` is the TV's)
            value = json.dumps(frame["data"]["value"])
            assert frame["data"]["by"] == host_id and not any(
                i in value for i in [host_id, *(p.user_id for p in players)]
            )


async def test_a_round_with_an_audience(browser: Browser, roomd: RoomdProcess) -> None:
    tv, code = await open_tv(browser, roomd.http)
    host_id = await tv.evaluate("quibble.client.session.userId")
    link = tv.locator("#watch-url")
    await expect(link).to_have_text(f"{roomd.http}/static/game/watch.html?code={code}")
    await expect(tv.locator("#audience")).to_have_text("0 watching")
    zoe = await watch(browser, await link.inner_text(), "Zoe")
    yan = await watch(browser, await link.inner_text(), "Yan")
    await expect(tv.locator("#audience")).to_have_text("2 watching")  # audience:count, at most 1/s
    assert await zoe.page.evaluate("[quibble.client.role, quibble.client.me, quibble.client.you.role]") == [
        "viewer", None, "viewer",
    ]  # fmt: skip

    phones = [await join_phone(browser, roomd.http, code, name) for name in NAMES]
    await expect(tv.locator("#players li")).to_have_count(3)  # viewers are not players
    await tv.screenshot(path=str(ARTIFACTS / "game-lobby-audience-tv.png"))
    for viewer in (zoe, yan):
        await expect(viewer.page.locator("#players li")).to_have_text(NAMES)
    assert await phones[0].page.evaluate("quibble.client.users.length") == 4  # three players and the TV
    await phones[0].page.click("#start")
    await expect(zoe.page.locator("#answered")).to_have_text("0 of 3 players done")

    dealt: Counter[str] = Counter()
    for n in (1, 2):
        for phone in phones:
            await expect(phone.page.locator("#text-title")).to_contain_text(f"answer {n} of 2")
            dealt[await answer_prompt(phone, f"says {n}")] += 1
    assert sorted(dealt.values()) == [2, 2, 2]

    # Duel 0: both viewers pick A (Yan changes his mind), the voter picks A: +100 and +50.
    # Duel 1: both viewers pick A, the voter picks B: B +100, A +50. Duel 2: a tie, no bonus.
    expected: Counter[str] = Counter()
    for duel in range(3):
        await expect(tv.locator("#vote")).to_be_visible()
        await expect(tv.locator("#vote-hint")).to_contain_text("0 of 1 votes in")
        prompt = await tv.locator("#vote-prompt").inner_text()
        answers = await tv.locator("#vote .answer").all_inner_texts()
        authors = [a.split()[0] for a in answers]
        for viewer in (zoe, yan):  # the audience sees what the TV shows, names hidden
            await expect(viewer.page.locator("#duel-prompt")).to_have_text(prompt)
            await expect(viewer.page.locator("#duel .answer")).to_have_text(answers)
            await expect(viewer.page.locator("#duel .caption")).to_have_count(0)
        picks = {"zoe": "A", "yan": "A"} if duel < 2 else {"zoe": "A", "yan": "B"}
        await vote(zoe, picks["zoe"])
        if duel == 0:
            await vote(yan, "B")
            await yan.page.reload()  # a reloaded viewer is the same viewer, its vote remembered
            await expect(yan.page.locator("#duel-hint")).to_contain_text("You voted B.")
            await expect(yan.page.locator("#duel-prompt")).to_have_text(prompt)
            assert await yan.page.evaluate("quibble.client.session.userId") == yan.user_id
            await yan.page.screenshot(path=str(ARTIFACTS / "game-vote-viewer.png"))
        await vote(yan, picks["yan"])
        await expect(tv.locator("#audience-hint")).to_contain_text("· 2 votes")  # the host's running tally
        if duel == 1:  # a reloaded TV finds the open poll and its counts in room:state, and carries on
            await tv.reload()
            await expect(tv.locator("#vote-prompt")).to_have_text(prompt)
            await expect(tv.locator("#audience-hint")).to_contain_text("· 2 votes")

        (voter,) = [p for p in phones if p.name not in authors]
        side = 0 if duel == 0 else 1
        await voter.page.locator("#choices button").nth(side).click()
        expected[authors[side]] += 100
        captions = tv.locator("#vote figcaption")
        if duel < 2:
            expected[authors[0]] += 50
            await expect(tv.locator("#audience-hint")).to_have_text(f"Audience: 2 to 0 · favourite: {authors[0]} +50")
            favourite = " · audience +50"
            if duel == 0:
                await expect(captions.nth(0)).to_have_text(f"{authors[0]} · 1 vote · +100{favourite}")
            else:
                await expect(captions.nth(0)).to_have_text(f"{authors[0]} · 0 votes · +0{favourite}")
                await expect(captions.nth(1)).to_have_text(f"{authors[1]} · 1 vote · +100")
            for viewer in (zoe, yan):
                await expect(viewer.page.locator("#duel-audience")).to_have_text(
                    f"Audience: 2 to 0 · favourite: {authors[0]} +50"
                )
                await expect(viewer.page.locator("#duel .caption").nth(0)).to_have_text(
                    await captions.nth(0).inner_text()
                )
        else:
            await expect(tv.locator("#audience-hint")).to_have_text("Audience: 1 to 1, no favourite")
            await expect(captions.nth(1)).to_have_text(f"{authors[1]} · 1 vote · +100")
            await expect(zoe.page.locator("#duel-audience")).to_have_text("Audience: 1 to 1, no favourite")
        if duel == 0:
            await tv.screenshot(path=str(ARTIFACTS / "game-reveal-audience-tv.png"))
            await zoe.page.screenshot(path=str(ARTIFACTS / "game-reveal-viewer.png"))
        await expect(zoe.page.locator("#duel button").first).to_be_disabled()  # the poll is closed
        await expect(zoe.page.locator(f"#duel button[data-choice='{picks['zoe']}']")).to_have_class(
            re.compile(r"\bpicked\b")
        )  # her vote is still shown
        await skip(tv)

    await expect(tv.locator("#audience")).to_have_text("2 watching")  # the reloaded viewer counts once
    await expect(tv.locator("#scores-title")).to_have_text("Scores")
    await skip(tv)
    await expect(tv.locator("#scores-title")).to_have_text("Final scores")
    names = await tv.locator("#scoreboard .name").all_inner_texts()
    points = await tv.locator("#scoreboard .points").all_inner_texts()
    board = {name: int(n) for name, n in zip(names, points, strict=True)}
    assert board == {name: expected[name] for name in NAMES} and sum(board.values()) == 400
    for viewer in (zoe, yan):  # the audience gets the final scores too
        await expect(viewer.page.locator("#scores-title")).to_have_text("Final scores")
        await expect(viewer.page.locator("#scoreboard .name")).to_have_text(names)
        await expect(viewer.page.locator("#scoreboard .points")).to_have_text(points)
    for viewer in (zoe, yan):
        assert_viewer_private(viewer, phones, host_id)
    assert "room=" in zoe.urls[-1] and "room=" in phones[0].urls[-1]  # room affinity for a proxy


async def test_a_room_without_an_audience(browser: Browser, roomd: RoomdProcess) -> None:
    """?audience=0: no watch link, no audience count, and the watch page says why it cannot join."""
    tv, code = await open_tv(browser, roomd.http, "rounds=1&audience=0")
    await expect(tv.locator("#lobby-hint")).to_have_text("Waiting for players: 0 of at least 3.")
    await expect(tv.locator("#watch")).to_be_hidden()
    await expect(tv.locator("#audience")).to_be_hidden()
    page = await (await browser.new_context(viewport=PHONE)).new_page()
    await page.goto(f"{roomd.http}/static/game/watch.html?code={code.lower()}")
    await expect(page.locator("#join-code")).to_have_value(code)
    await page.click("#join button")
    refused = "This room does not take an audience: only its players can join."
    await expect(page.locator("#message")).to_have_text(refused)


async def test_the_host_can_lock_and_kick_the_audience(browser: Browser, roomd: RoomdProcess) -> None:
    """From the client API: a locked audience refuses new viewers; a kicked viewer's page ends."""
    tv, _ = await open_tv(browser, roomd.http)
    link = await tv.locator("#watch-url").inner_text()
    zoe = await watch(browser, link, "Zoe")
    await tv.evaluate("quibble.client.lockAudience(true)")
    late = await (await browser.new_context(viewport=PHONE)).new_page()
    await late.goto(link)
    await late.click("#join button")
    await expect(late.locator("#message")).to_have_text("The host is not letting more viewers in right now.")
    await tv.evaluate(f"quibble.client.kick({json.dumps(zoe.user_id)})")
    await expect(zoe.page.locator("#ended-title")).to_have_text("Removed from the room")
    await expect(tv.locator("#audience")).to_have_text("0 watching")
