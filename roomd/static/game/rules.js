// Quibble's rules: the whole game as plain data and pure functions, no DOM, no network.
// The host screen (host.js) keeps one game record, feeds it the players' answers and the
// clock, and publishes what these functions derive from it: each phone's private prompt
// (promptFor) and the public scoreboard (scoreboard). docs/games.md walks through it.
//
// A round: every player gets two prompts, every prompt goes to two players (prompt j to
// players j and j+1 of a shuffled circle), so each prompt ends up with two answers. Then,
// prompt by prompt, the host screen shows both answers without names and everybody else
// votes on their phone; each vote is worth 100 points times the round number, and an
// answer that takes every vote (two or more) earns the same again as a bonus.
//
// The audience (viewers, who are not players) votes along in a poll the host opens for
// each duel (audiencePoll); the answer with more audience votes earns AUDIENCE_POINTS
// times the round number (recordAudience). What viewers see is the public entry `stage`.

import { PROMPTS } from "/static/game/prompts.js";

export const MIN_PLAYERS = 3;
export const MAX_PLAYERS = 8;
export const MAX_ANSWER_LENGTH = 80;
export const DEFAULTS = { rounds: 3, answerSeconds: 90, voteSeconds: 30, revealSeconds: 6 };
export const AUDIENCE_POINTS = 50; // times the round number, to the audience's favourite answer
export const AUDIENCE_CHOICES = ["A", "B"]; // the poll's choices: the answers in the order shown

/** A fresh game record, waiting in the lobby. It is JSON: the host stores it in a state entry. */
export function newGame(settings = {}) {
  return {
    status: "lobby", // lobby | answer | vote | scores | end
    settings: { ...DEFAULTS, ...settings },
    game: 0, // games played in this room: makes every task id unique
    round: 0,
    players: [], // [{id, name}], fixed when a game starts
    scores: {}, // id -> points
    prompts: [], // this round: [{id, text, authors: [id, id], answers: {id: text}}]
    used: [], // indexes of PROMPTS already played in this room
    matchup: 0, // the prompt being voted on
    flip: false, // whether its answers are shown in the other order
    votes: {}, // voter id -> index into the matchup's authors
    result: null, // {votes: [n, n], points: [n, n], sweep: index | null, audience} once revealed
    // result.audience: null until the audience's poll is counted, then
    // {votes: [n, n], bonus: index | null, points: n} (indexes into the prompt's authors, like votes)
    deadline: null, // when the current phase ends (ms since the epoch, host clock)
  };
}

/** Fisher-Yates, with the random function passed in (tests make it predictable). */
export function shuffle(items, random = Math.random) {
  const copy = items.slice();
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy;
}

/**
 * Start a game with these members ({id, displayName}); false (nothing changed) unless
 * there are MIN_PLAYERS to MAX_PLAYERS of them.
 */
export function start(g, members, now, random = Math.random) {
  if (members.length < MIN_PLAYERS || members.length > MAX_PLAYERS) return false;
  g.game += 1;
  g.players = members.map(({ id, displayName }) => ({ id, name: displayName }));
  g.scores = Object.fromEntries(g.players.map((p) => [p.id, 0]));
  g.round = 0;
  startRound(g, now, random);
  return true;
}

function startRound(g, now, random) {
  g.round += 1;
  const circle = shuffle(g.players.map((p) => p.id), random);
  let fresh = PROMPTS.map((_, i) => i).filter((i) => !g.used.includes(i));
  if (fresh.length < circle.length) {
    g.used = [];
    fresh = PROMPTS.map((_, i) => i);
  }
  const picked = shuffle(fresh, random).slice(0, circle.length);
  g.used.push(...picked);
  g.prompts = picked.map((index, j) => ({
    id: `g${g.game}r${g.round}p${j}`,
    text: PROMPTS[index],
    authors: [circle[j], circle[(j + 1) % circle.length]],
    answers: {},
  }));
  g.status = "answer";
  g.matchup = 0;
  g.votes = {};
  g.result = null;
  g.deadline = now + g.settings.answerSeconds * 1000;
}

/** The answers of a matchup in the order the screen and the phones show them (null: none). */
export function shownAnswers(g, prompt = g.prompts[g.matchup]) {
  return order(g).map((i) => prompt.answers[prompt.authors[i]] ?? null);
}

const order = (g) => (g.flip ? [1, 0] : [0, 1]);

/** The input the game expects from this player now, or null. */
export function task(g, id) {
  if (!g.players.some((p) => p.id === id)) return null;
  if (g.status === "answer") {
    const mine = g.prompts.filter((p) => p.authors.includes(id));
    const index = mine.findIndex((p) => !(id in p.answers));
    if (index < 0) return null;
    return { kind: "text", id: mine[index].id, text: mine[index].text, n: index + 1, of: mine.length };
  }
  if (g.status === "vote" && !g.result) {
    const prompt = g.prompts[g.matchup];
    if (prompt.authors.includes(id) || id in g.votes) return null;
    return { kind: "choice", id: `${prompt.id}v`, text: prompt.text, options: shownAnswers(g, prompt) };
  }
  return null;
}

/**
 * A player's answer slot changed to `value` ({for: taskId, value}): record it if it
 * answers the task this player has now. Anything else (a stale or repeated answer, a
 * forged one) is ignored. Returns whether the game changed.
 */
export function recordAnswer(g, id, value) {
  const expected = task(g, id);
  if (!expected || !value || typeof value !== "object" || value.for !== expected.id) return false;
  if (expected.kind === "text") {
    const text = String(value.value ?? "").replace(/\s+/g, " ").trim().slice(0, MAX_ANSWER_LENGTH);
    if (!text) return false;
    g.prompts.find((p) => p.id === expected.id).answers[id] = text;
    return true;
  }
  if (value.value !== 0 && value.value !== 1) return false;
  if (expected.options[value.value] === null) return false; // nobody wrote that one
  g.votes[id] = order(g)[value.value];
  return true;
}

/**
 * Move the game on as far as it can go now: a phase ends when its deadline has passed
 * or when every player still here (`present`, a Set of ids) has given their input.
 * Safe to call any number of times. Returns whether the game changed.
 */
export function advance(g, now, present, random = Math.random) {
  let changed = false;
  for (;;) {
    const due = g.deadline !== null && now >= g.deadline;
    const here = g.players.filter((p) => present.has(p.id));
    if (g.status === "answer" && (due || here.every((p) => task(g, p.id) === null))) {
      beginVoting(g, 0, now, random);
    } else if (g.status === "vote" && !g.result && (due || here.every((p) => task(g, p.id) === null))) {
      reveal(g, now);
    } else if (g.status === "vote" && g.result && due) {
      beginVoting(g, g.matchup + 1, now, random);
    } else if (g.status === "scores" && due) {
      if (g.round < g.settings.rounds) startRound(g, now, random);
      else Object.assign(g, { status: "end", deadline: null });
    } else {
      return changed;
    }
    changed = true;
  }
}

function beginVoting(g, from, now, random) {
  const next = g.prompts.findIndex((p, i) => i >= from && Object.keys(p.answers).length > 0);
  if (next < 0) {
    Object.assign(g, { status: "scores", deadline: now + g.settings.revealSeconds * 1500, result: null });
    return;
  }
  Object.assign(g, {
    status: "vote",
    matchup: next,
    flip: random() < 0.5,
    votes: {},
    result: null,
    deadline: now + g.settings.voteSeconds * 1000,
  });
}

function reveal(g, now) {
  const prompt = g.prompts[g.matchup];
  const votes = [0, 0];
  for (const choice of Object.values(g.votes)) votes[choice] += 1;
  const worth = 100 * g.round;
  const total = votes[0] + votes[1];
  const sweep = total >= 2 ? votes.findIndex((n) => n === total) : -1;
  const points = votes.map((n, i) => n * worth + (i === sweep ? worth : 0));
  prompt.authors.forEach((id, i) => {
    if (id in g.scores) g.scores[id] += points[i];
  });
  g.result = { votes, points, sweep: sweep >= 0 ? sweep : null, audience: null };
  g.deadline = now + g.settings.revealSeconds * 1000;
}

/** The poll id of the audience's vote on a prompt (never the same as a player's task id). */
const pollIdOf = (prompt) => `${prompt.id}a`;

/**
 * The audience poll that should be open now: {pollId, choices, prompt} while the players
 * vote on a duel, else null. The host opens it, and closes any other.
 */
export function audiencePoll(g) {
  if (g.status !== "vote" || g.result) return null;
  const prompt = g.prompts[g.matchup];
  return { pollId: pollIdOf(prompt), choices: AUDIENCE_CHOICES, prompt: prompt.text.slice(0, 200) };
}

/**
 * The final counts of an audience poll ({choice: n}), once the duel is revealed: the answer
 * with more audience votes (at least one) earns AUDIENCE_POINTS x round. Counted once, for
 * the duel on screen only; votes for a missing answer count for nothing. Returns whether the
 * game changed.
 */
export function recordAudience(g, pollId, counts) {
  if (g.status !== "vote" || !g.result || g.result.audience) return false;
  const prompt = g.prompts[g.matchup];
  if (pollId !== pollIdOf(prompt) || !counts || typeof counts !== "object") return false;
  const shown = shownAnswers(g, prompt);
  const votes = [0, 0];
  order(g).forEach((side, i) => {
    const n = Number(counts[AUDIENCE_CHOICES[i]]);
    if (shown[i] !== null && Number.isInteger(n) && n > 0) votes[side] = n;
  });
  const bonus = votes[0] === votes[1] ? null : votes[0] > votes[1] ? 0 : 1;
  const points = AUDIENCE_POINTS * g.round;
  if (bonus !== null && prompt.authors[bonus] in g.scores) g.scores[prompt.authors[bonus]] += points;
  g.result.audience = { votes, bonus, points: bonus === null ? 0 : points };
  return true;
}

/**
 * The public entry `stage`: what the screen shows, for the audience (who cannot see the TV
 * in the room). Names and scores but no user ids; answers only once their duel is on
 * screen, without names until it is revealed. Players' prompts and answer slots stay private.
 */
export function stage(g) {
  const board = scoreboard(g).players.map(({ name, score }) => ({ name, score }));
  const out = { status: g.status, game: g.game, round: g.round, rounds: g.settings.rounds, players: board, duel: null, answered: null };
  if (g.status === "answer") {
    out.answered = { done: g.players.filter((p) => task(g, p.id) === null).length, of: g.players.length };
  }
  if (g.status === "vote") {
    const prompt = g.prompts[g.matchup];
    const sides = order(g);
    const duel = { id: prompt.id, n: g.matchup + 1, of: g.prompts.length, text: prompt.text, answers: shownAnswers(g, prompt) };
    duel.poll = pollIdOf(prompt); // the audience's poll of this duel (open while the players vote)
    if (g.result) {
      const names = new Map(g.players.map((p) => [p.id, p.name]));
      const { votes, points, sweep, audience } = g.result;
      duel.result = {
        names: sides.map((side) => names.get(prompt.authors[side]) ?? "?"),
        votes: sides.map((side) => votes[side]),
        points: sides.map((side) => points[side]),
        sweep: sweep === null ? null : sides.indexOf(sweep),
        audience: audience && {
          votes: sides.map((side) => audience.votes[side]),
          bonus: audience.bonus === null ? null : sides.indexOf(audience.bonus),
          points: audience.points,
        },
      };
    } else {
      duel.result = null;
    }
    out.duel = duel;
  }
  return out;
}

/**
 * What a member's phone shows now: the value of its private entry prompt:<id>. `vip` is
 * the member who may start the game from their phone; `waiting` the players in the room.
 */
export function promptFor(g, id, { vip = false, waiting = 0 } = {}) {
  const startButton = vip ? { ready: waiting >= MIN_PLAYERS && waiting <= MAX_PLAYERS, players: waiting } : null;
  if (g.status === "lobby" || g.status === "end") {
    const over = g.status === "end";
    return {
      kind: "wait",
      id: over ? `g${g.game}end` : "lobby",
      title: over ? "Game over!" : "You're in!",
      text: vip
        ? `You're the VIP: start the ${over ? "next game" : "game"} when everybody's in (${MIN_PLAYERS}-${MAX_PLAYERS} players).`
        : over
          ? "The VIP can start another game."
          : "Waiting for the VIP to start the game…",
      start: startButton,
    };
  }
  if (!g.players.some((p) => p.id === id)) {
    return { kind: "wait", id: `g${g.game}watch`, title: "Game in progress", text: "You'll play in the next game. Watch the screen!" };
  }
  const mine = task(g, id);
  if (mine?.kind === "text") {
    return { ...mine, title: `Round ${g.round} · answer ${mine.n} of ${mine.of}`, maxLength: MAX_ANSWER_LENGTH };
  }
  if (mine?.kind === "choice") return { ...mine, title: "Vote for your favourite" };
  const base = `g${g.game}r${g.round}`;
  if (g.status === "answer") return { kind: "wait", id: `${base}done`, title: "All done!", text: "Waiting for the others…" };
  if (g.status === "vote") {
    const prompt = g.prompts[g.matchup];
    if (g.result) return { kind: "wait", id: `${prompt.id}result`, title: "Results!", text: "Look at the screen." };
    if (prompt.authors.includes(id)) {
      return { kind: "wait", id: `${prompt.id}up`, title: "Your answer is up!", text: "Fingers crossed…" };
    }
    return { kind: "wait", id: `${prompt.id}voted`, title: "Vote counted", text: "Look at the screen." };
  }
  return { kind: "wait", id: `${base}scores`, title: "Scores!", text: "Look at the screen." };
}

/** The public scoreboard entry: every player's points, best first. */
export function scoreboard(g) {
  const players = g.players
    .map((p) => ({ id: p.id, name: p.name, score: g.scores[p.id] ?? 0 }))
    .sort((a, b) => b.score - a.score || a.name.localeCompare(b.name));
  return { status: g.status, round: g.round, rounds: g.settings.rounds, players };
}
