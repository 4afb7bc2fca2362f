"""Quibble's rules (roomd/static/game/rules.js), pure functions run in the browser."""

from __future__ import annotations

from playwright.async_api import Browser

from tests.browser.pages import open_page
from tests.support.processes import RoomdProcess

DEAL = """async () => {
  const rules = await import("/static/game/rules.js");
  const out = {};
  for (let n = 2; n <= 9; n++) {
    const g = rules.newGame();
    const members = Array.from({ length: n }, (_, i) => ({ id: `u${i}`, displayName: `P${i}` }));
    if (!rules.start(g, members, 0)) { out[n] = null; continue; }
    const perPlayer = members.map((m) => g.prompts.filter((p) => p.authors.includes(m.id)).length);
    out[n] = {
      prompts: g.prompts.length,
      distinctAuthors: g.prompts.every((p) => p.authors[0] !== p.authors[1]),
      perPlayer: [...new Set(perPlayer)],
      distinctTexts: new Set(g.prompts.map((p) => p.text)).size,
    };
  }
  return out;
}"""

ROUND = """async () => {
  const rules = await import("/static/game/rules.js");
  const g = rules.newGame({ rounds: 1, revealSeconds: 1 });
  const ids = ["a", "b", "c", "d"];
  rules.start(g, ids.map((id) => ({ id, displayName: id.toUpperCase() })), 0, () => 0.3);
  const here = new Set(ids);
  const log = [];
  const t = (id) => rules.task(g, id);
  // Forged, stale, empty and foreign answers change nothing.
  log.push(rules.recordAnswer(g, "a", { for: "nope", value: "x" }));
  log.push(rules.recordAnswer(g, "a", { for: t("a").id, value: "   " }));
  log.push(rules.recordAnswer(g, "zed", { for: t("a").id, value: "x" }));
  const firstId = t("a").id;
  log.push(rules.recordAnswer(g, "a", { for: firstId, value: "  hello \\n  world " + "!".repeat(200) }));
  log.push(rules.recordAnswer(g, "a", { for: firstId, value: "again" }));  // already answered
  const stored = g.prompts.find((p) => p.id === firstId).answers.a;
  // Everybody answers everything but the prompt shared by c and d, which nobody answers.
  const skipped = g.prompts.find((p) => p.authors.includes("c") && p.authors.includes("d"));
  for (const id of ids) {
    for (let task = t(id); task; task = t(id)) {
      if (task.id === skipped.id) break;  // one input at a time: this player stops here
      rules.recordAnswer(g, id, { for: task.id, value: `${id}:${task.id}` });
    }
  }
  log.push(rules.advance(g, 1, here));  // not everybody is done, the deadline is far
  log.push(g.status);
  rules.advance(g, g.deadline, here, () => 0.9); // time is up: voting starts with what there is
  const duels = [];
  while (g.status === "vote") {
    const prompt = g.prompts[g.matchup];
    const voters = ids.filter((id) => !prompt.authors.includes(id));
    const shown = rules.shownAnswers(g);
    for (const id of voters) {
      const task = t(id);
      const pick = shown[0] === null ? 1 : 0;
      rules.recordAnswer(g, id, { for: task.id, value: pick });
    }
    rules.advance(g, g.deadline - 1, here);  // all voted: revealed before the deadline
    duels.push({ id: prompt.id, shown, result: g.result, authorTasks: prompt.authors.map(t) });
    rules.advance(g, g.deadline, here, () => 0.9);
  }
  const scoresStatus = g.status;
  rules.advance(g, g.deadline, here);
  return {
    log, stored, duels: duels.length, skippedShown: duels.some((d) => d.id === skipped.id),
    results: duels.map((d) => d.result), authorTasks: duels.flatMap((d) => d.authorTasks),
    scoresStatus, end: g.status, board: rules.scoreboard(g),
    prompt: rules.promptFor(g, "a", { vip: true, waiting: 4 }),
    spectator: rules.promptFor({ ...g, status: "answer" }, "zed"),
  };
}"""


async def test_two_prompts_per_player_two_players_per_prompt(browser: Browser, roomd: RoomdProcess) -> None:
    page = await open_page(browser, roomd.http)
    out = await page.evaluate(DEAL)
    assert out["2"] is None and out["9"] is None  # 3 to 8 players
    for n in range(3, 9):
        assert out[str(n)] == {"prompts": n, "distinctAuthors": True, "perPlayer": [2], "distinctTexts": n}


async def test_a_round_by_the_rules(browser: Browser, roomd: RoomdProcess) -> None:
    page = await open_page(browser, roomd.http)
    out = await page.evaluate(ROUND)
    assert out["log"] == [False, False, False, True, False, False, "answer"]
    assert out["stored"] == "hello world " + "!" * 68  # whitespace folded, 80 characters at most
    assert out["duels"] == 3 and not out["skippedShown"]  # a prompt nobody answered is skipped
    assert out["authorTasks"] == [None] * 6  # authors never vote on their own prompt
    for result in out["results"]:  # two voters each, both for the same answer: a sweep
        assert sorted(result["votes"]) == [0, 2] and result["sweep"] == result["votes"].index(2)
        assert result["points"][result["sweep"]] == 300  # 2 votes x 100 x round 1, plus the bonus
    assert (out["scoresStatus"], out["end"]) == ("scores", "end")
    assert sum(p["score"] for p in out["board"]["players"]) == 900
    assert out["board"]["players"] == sorted(out["board"]["players"], key=lambda p: (-p["score"], p["name"]))
    assert out["prompt"]["start"] == {"ready": True, "players": 4} and out["prompt"]["title"] == "Game over!"
    assert out["spectator"]["title"] == "Game in progress"


AUDIENCE = """async () => {
  const rules = await import("/static/game/rules.js");
  const g = rules.newGame({ rounds: 1 });
  const ids = ["a", "b", "c"];
  rules.start(g, ids.map((id) => ({ id, displayName: id.toUpperCase() })), 0, () => 0.3);
  const here = new Set(ids);
  const out = { answerPoll: rules.audiencePoll(g), answerStage: rules.stage(g) };
  for (const id of ids) {
    for (let task = rules.task(g, id); task; task = rules.task(g, id)) {
      rules.recordAnswer(g, id, { for: task.id, value: `${id} on ${task.id}` });
    }
  }
  rules.advance(g, 1, here, () => 0.9);  // voting on the first duel, answers in their authors' order
  const prompt = g.prompts[g.matchup];
  const poll = rules.audiencePoll(g);
  out.poll = poll;
  out.authorsFirst = rules.shownAnswers(g)[0].startsWith(prompt.authors[0]);
  out.voting = rules.stage(g).duel;
  out.early = rules.recordAudience(g, poll.pollId, { A: 3, B: 1 });  // not revealed yet
  const [voter] = ids.filter((id) => !prompt.authors.includes(id));
  rules.recordAnswer(g, voter, { for: rules.task(g, voter).id, value: 1 });
  rules.advance(g, 2, here);
  out.pollAfterReveal = rules.audiencePoll(g);
  out.wrongPoll = rules.recordAudience(g, "nope", { A: 3 });
  out.counted = rules.recordAudience(g, poll.pollId, { A: 3, B: 1 });
  out.again = rules.recordAudience(g, poll.pollId, { A: 0, B: 9 });  // counted once
  out.audience = g.result.audience;
  out.points = prompt.authors.map((id) => g.scores[id]);
  out.revealed = rules.stage(g).duel.result;
  out.stageKeys = Object.keys(rules.stage(g)).sort();
  out.playerKeys = Object.keys(rules.stage(g).players[0]).sort();
  out.names = prompt.authors.map((id) => id.toUpperCase());
  return out;
}"""


async def test_the_audiences_favourite(browser: Browser, roomd: RoomdProcess) -> None:
    """One poll per duel while the players vote; its final count gives the favourite 50 x round,
    once; the public stage shows names only once revealed, and never a user id."""
    page = await open_page(browser, roomd.http)
    out = await page.evaluate(AUDIENCE)
    assert out["answerPoll"] is None and out["answerStage"]["duel"] is None
    assert out["answerStage"]["answered"] == {"done": 0, "of": 3}
    assert out["poll"]["choices"] == ["A", "B"] and out["poll"]["pollId"].endswith("a")
    assert out["authorsFirst"] is True
    assert out["voting"]["poll"] == out["poll"]["pollId"] and out["voting"]["result"] is None
    assert out["voting"]["text"] == out["poll"]["prompt"] and len(out["voting"]["answers"]) == 2
    assert (out["early"], out["pollAfterReveal"], out["wrongPoll"], out["counted"], out["again"]) == (
        False, None, False, True, False,
    )  # fmt: skip
    assert out["audience"] == {"votes": [3, 1], "bonus": 0, "points": 50}
    assert out["points"] == [50, 100]  # the players' vote went to B, the audience's favourite was A
    assert out["revealed"] == {
        "names": out["names"],
        "votes": [0, 1],
        "points": [0, 100],
        "sweep": None,
        "audience": {"votes": [3, 1], "bonus": 0, "points": 50},
    }
    assert out["stageKeys"] == ["answered", "duel", "game", "players", "round", "rounds", "status"]
    assert out["playerKeys"] == ["name", "score"]
