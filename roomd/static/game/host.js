// Quibble's host screen (the TV): it runs the whole game on the public roomd client.
// roomd only relays and stores; the rules are in rules.js. What this page publishes:
//
//   app            public            {name, url}: the lobby sends joining phones to the controller
//   scores         public            the scoreboard (rules.scoreboard)
//   prompt:<id>    visible to <id>   that phone's current prompt (rules.promptFor): private
//   answer:<id>    visible to <id>,  the phone's reply {for: promptId, value}; only the host
//                  written by <id>   and that phone ever see it
//   host:game      host only         the game record itself, so a reloaded screen carries on
//   stage          audience          what the screen shows (rules.stage), for viewers watching
//                                    from elsewhere (watch.html); members read it too
//
// and it listens to: "state" (a phone wrote its answer slot), "message" (the VIP's phone
// sends "start"), and the member events. Every change goes through tick(): advance the
// rules, publish what changed, open or close the audience's poll, re-arm the timer, redraw.
// The room admits an audience (viewers, not players; ?audience=0 turns it off): during each
// duel the screen runs a poll (rules.audiencePoll) and its final count (poll:closed) gives
// the audience's favourite answer bonus points (rules.recordAudience). docs/games.md walks
// through it.
import { RoomdClient } from "/client/roomd.js";
import { ENDED, explain } from "/static/messages.js";
import * as rules from "/static/game/rules.js";

const $ = (id) => document.getElementById(id);
const APP = { name: "Quibble", url: "/static/game/play.html" };
const STATUS = { connecting: "connecting…", open: "", reconnecting: "reconnecting…", ended: "", idle: "" };

// Phase lengths can be set in the address, e.g. host.html?rounds=1&answer=60&vote=20&reveal=4.
const params = new URLSearchParams(location.search);
const AUDIENCE = params.get("audience") !== "0"; // viewers may watch and vote (the default)
const settings = {};
for (const [param, name] of [["rounds", "rounds"], ["answer", "answerSeconds"], ["vote", "voteSeconds"], ["reveal", "revealSeconds"]]) {
  const value = Number(params.get(param));
  if (params.has(param) && value > 0) settings[name] = value;
}

// The screen keeps its own session key: the lobby's (a player's) must not be resumed here.
const client = new RoomdClient({ storageKey: "quibble.screen" });
let game = null; // the game record (rules.newGame), loaded from host:game after a reload
let written = new Map(); // key -> JSON of the value last sent, so tick() only sends changes
let timer;
let polling = false; // a poll:open or poll:close in flight
globalThis.quibble = { client, game: () => game }; // for the browser console (and the tests)

// -- the game loop --------------------------------------------------------------

/** Players who would take part if the game started now: connected members but the screen. */
const candidates = () => client.users.filter((u) => u.id !== client.session?.userId && u.isConnected);
/** The member who may start the game from their phone: the longest-standing player. */
const vip = () => client.users.find((u) => u.id !== client.session?.userId)?.id ?? null;

function tick() {
  if (!game || !client.isHost || client.status !== "open") return render();
  const present = new Set(client.users.map((u) => u.id));
  rules.advance(game, Date.now(), present);
  publish();
  syncPoll();
  clearTimeout(timer);
  if (game.deadline !== null) timer = setTimeout(tick, Math.max(0, game.deadline - Date.now()) + 20);
  render();
}

function startGame() {
  if (rules.start(game, candidates(), Date.now())) tick();
}

/** Send every entry whose value differs from what we last sent (one setState per change). */
function publish() {
  write("app", APP);
  write("host:game", game, { visibleTo: "host" });
  write("scores", rules.scoreboard(game));
  if (client.room?.audience) write("stage", rules.stage(game), { visibleTo: "audience" });
  const waiting = candidates().length;
  for (const user of client.users) {
    if (user.id === client.session.userId) continue;
    const slot = `answer:${user.id}`;
    if (!(slot in client.state) && !written.has(slot)) {
      // Created once, empty, writable by that phone alone. ifVersion 0: "only if absent",
      // so a slot the phone already filled is never wiped.
      write(slot, null, { visibleTo: [user.id], writableBy: [user.id], ifVersion: 0 });
    }
    const prompt = rules.promptFor(game, user.id, { vip: user.id === vip(), waiting });
    write(`prompt:${user.id}`, prompt, { visibleTo: [user.id] });
  }
}

function write(key, value, options = {}) {
  const json = JSON.stringify(value);
  if (written.get(key) === json) return;
  written.set(key, json);
  client.setState(key, value, options).catch((err) => {
    if (written.get(key) === json) written.delete(key); // so the next tick sends it again
    if (err.code === "VERSION_CONFLICT") return; // the answer slot existed already: fine
    if (err.code === "MEMBER_NOT_FOUND") return; // written for a player who just left
    showMessage(explain(err));
    setTimeout(tick, 1000); // e.g. RATE_LIMITED or a dropped connection: try again
  });
}

/**
 * Keep the room's poll in step with the game: the poll of the duel being voted on is open,
 * any other is closed (its final count arrives as poll:closed). One request at a time; the
 * next tick() carries on after a failure.
 */
function syncPoll() {
  if (!client.room?.audience || polling || client.status !== "open") return;
  const want = rules.audiencePoll(game);
  const poll = client.poll;
  let request = null;
  if (poll?.open && poll.pollId !== want?.pollId) request = client.closePoll(poll.pollId);
  else if (want && poll?.pollId !== want.pollId) request = client.openPoll({ ...want, publicTallies: false });
  if (!request) return;
  polling = true;
  request
    .then(() => {
      polling = false;
      syncPoll();
    })
    .catch((err) => {
      polling = false;
      console.warn("quibble: audience poll", err.code); // the game goes on without it
    });
}

/** A phone wrote its answer slot. */
function onAnswer(id, value) {
  if (game && rules.recordAnswer(game, id, value)) tick();
}

client.on("room:state", () => {
  if (!client.isHost) return render();
  // A reloaded screen carries on from the stored record; a fresh one starts in the lobby.
  game ??= client.state["host:game"]?.value ?? rules.newGame(settings);
  written = new Map(Object.entries(client.state).map(([key, entry]) => [key, JSON.stringify(entry.value)]));
  // Answers written while this screen was away arrive in the snapshot, not as events.
  for (const [key, entry] of Object.entries(client.state)) {
    if (key.startsWith("answer:")) rules.recordAnswer(game, key.slice("answer:".length), entry.value);
  }
  tick();
});
client.on("state", ({ key, value, deleted }) => {
  if (!deleted && key.startsWith("answer:")) onAnswer(key.slice("answer:".length), value);
});
client.on("poll:closed", ({ pollId, counts }) => {
  // The exact final count of a duel's audience poll: the favourite answer's bonus.
  if (game && client.isHost && rules.recordAudience(game, pollId, counts)) tick();
});
client.on("poll", () => render());
client.on("audience:count", () => renderAudience());
client.on("message", ({ from, type }) => {
  if (type === "start" && from === vip() && (game?.status === "lobby" || game?.status === "end")) startGame();
});
client.on("user:left", ({ userId }) => {
  // Tidy up: a departed member's entries are of no use to anyone.
  for (const key of [`prompt:${userId}`, `answer:${userId}`]) {
    written.delete(key);
    if (key in client.state) client.deleteState(key).catch(() => {});
  }
});
for (const event of ["user:joined", "user:connected", "user:disconnected", "user:left", "room:resumed", "room:host_updated"]) {
  client.on(event, () => tick());
}

// -- the screen -----------------------------------------------------------------

function show(view) {
  for (const section of document.querySelectorAll("main > .view")) section.hidden = section.id !== view;
}

function showMessage(text) {
  $("message").textContent = text;
  $("message").hidden = !text;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text; // never innerHTML: names and answers are whatever people typed
  return node;
}

function renderAudience() {
  const room = client.room;
  $("audience").hidden = !room?.audience;
  $("audience").textContent = `${client.audienceCount} watching`;
}

function render() {
  const room = client.room;
  if (!room) return;
  renderAudience();
  $("footer-code").textContent = `Room ${room.code}`;
  $("close-room").hidden = !client.isHost;
  if (!client.isHost) {
    $("ended-title").textContent = "Not the host any more";
    $("ended-message").textContent = "Another member hosts this room now.";
    return show("ended");
  }
  if (!game) return;
  const players = new Map(game.players.map((p) => [p.id, p.name]));
  $("round").textContent = game.round && game.status !== "lobby" ? `Round ${game.round} of ${game.settings.rounds}` : "";
  if (game.status === "lobby") {
    const waiting = candidates();
    $("join-url").textContent = location.host;
    $("room-code").textContent = room.code;
    const watch = `${location.origin}/static/game/watch.html?code=${room.code}`;
    $("watch").hidden = !room.audience;
    $("watch-url").textContent = watch;
    $("watch-url").href = watch;
    $("players").replaceChildren(
      ...waiting.map((u) => {
        const li = element("li", "player", u.displayName);
        li.dataset.userId = u.id;
        if (u.id === vip()) li.append(element("span", "badge", "VIP"));
        return li;
      }),
    );
    const ready = waiting.length >= rules.MIN_PLAYERS && waiting.length <= rules.MAX_PLAYERS;
    $("start").disabled = !ready;
    $("lobby-hint").textContent =
      waiting.length > rules.MAX_PLAYERS
        ? `Too many players: ${rules.MAX_PLAYERS} at most.`
        : ready
          ? "Start here, or from the VIP's phone."
          : `Waiting for players: ${waiting.length} of at least ${rules.MIN_PLAYERS}.`;
    show("lobby");
  } else if (game.status === "answer") {
    $("progress").replaceChildren(
      ...game.players.map((p) => {
        const done = rules.task(game, p.id) === null;
        const li = element("li", done ? "player done" : "player", p.name);
        li.append(element("span", "badge", done ? "✓" : "…"));
        return li;
      }),
    );
    show("answer");
  } else if (game.status === "vote") {
    const prompt = game.prompts[game.matchup];
    const answers = rules.shownAnswers(game);
    const authors = game.flip ? [prompt.authors[1], prompt.authors[0]] : prompt.authors;
    const sides = game.flip ? [1, 0] : [0, 1];
    $("vote-prompt").textContent = prompt.text;
    document.querySelectorAll("#vote .card").forEach((card, i) => {
      card.querySelector(".answer").textContent = answers[i] ?? "(no answer)";
      card.classList.toggle("missing", answers[i] === null);
      const caption = card.querySelector("figcaption");
      if (game.result) {
        const side = sides[i];
        const votes = game.result.votes[side];
        const sweep = game.result.sweep === side ? " · QUIBBLE!" : "";
        const favourite = game.result.audience?.bonus === side ? ` · audience +${game.result.audience.points}` : "";
        caption.textContent = `${players.get(authors[i]) ?? "?"} · ${votes} vote${votes === 1 ? "" : "s"} · +${game.result.points[side]}${sweep}${favourite}`;
        card.classList.toggle("winner", votes > game.result.votes[1 - side]);
      } else {
        caption.textContent = "";
        card.classList.remove("winner");
      }
    });
    const voters = game.players.filter((p) => !prompt.authors.includes(p.id)).length;
    $("vote-hint").textContent = game.result
      ? `Prompt ${game.matchup + 1} of ${game.prompts.length}`
      : `Vote on your phone! ${Object.keys(game.votes).length} of ${voters} votes in`;
    $("audience-hint").hidden = !room.audience;
    $("audience-hint").textContent = audienceLine(prompt, sides, players, authors);
    show("vote");
  } else {
    const final = game.status === "end";
    $("scores-title").textContent = final ? "Final scores" : "Scores";
    $("scoreboard").replaceChildren(
      ...rules.scoreboard(game).players.map((p) => {
        const li = element("li", "", "");
        li.append(element("span", "name", p.name), element("span", "points", String(p.score)));
        return li;
      }),
    );
    $("again").hidden = !final;
    show("scores");
  }
  renderTimer();
}

/** The audience's part of a duel: running votes while it is open, then the favourite. */
function audienceLine(prompt, sides, players, authors) {
  const audience = game.result?.audience;
  if (audience) {
    const [left, right] = sides.map((side) => audience.votes[side]);
    if (audience.bonus === null) return `Audience: ${left} to ${right}, no favourite`;
    const name = players.get(prompt.authors[audience.bonus]) ?? "?";
    return `Audience: ${left} to ${right} · favourite: ${name} +${audience.points}`;
  }
  if (game.result) return "Audience: counting…";
  const poll = client.poll;
  const votes = poll?.open && poll.pollId === rules.audiencePoll(game)?.pollId ? (poll.votes ?? 0) : 0;
  return `Audience: vote at ${location.host}/static/game/watch.html · ${votes} vote${votes === 1 ? "" : "s"}`;
}

function renderTimer() {
  const left = game?.deadline ? Math.max(0, Math.ceil((game.deadline - Date.now()) / 1000)) : null;
  const counting = left !== null && (game.status === "answer" || (game.status === "vote" && !game.result));
  $("timer").textContent = counting ? String(left) : "";
}
setInterval(renderTimer, 250);

client.on("status", ({ status }) => {
  $("status").textContent = STATUS[status] ?? status;
  document.body.dataset.status = status;
  if (status === "open") showMessage("");
});
client.on("session:ended", ({ reason }) => {
  const [title, text] = ENDED[reason] || ["Session ended", reason];
  clearTimeout(timer);
  game = null;
  $("ended-title").textContent = title;
  $("ended-message").textContent = text;
  $("round").textContent = "";
  $("close-room").hidden = true;
  show("ended");
});

async function openRoom() {
  $("create").disabled = true;
  $("restart").disabled = true;
  try {
    showMessage("");
    game = null;
    // One screen and up to 8 players; the screen stays host even if its Wi-Fi blinks.
    await client.createRoom("Screen", { maxUsers: rules.MAX_PLAYERS + 1, hostMigration: "leave", audience: AUDIENCE });
    client.connect();
  } catch (err) {
    showMessage(explain(err));
    show("landing");
  } finally {
    $("create").disabled = false;
    $("restart").disabled = false;
  }
}

$("create").addEventListener("click", openRoom);
$("restart").addEventListener("click", openRoom);
$("start").addEventListener("click", startGame);
$("again").addEventListener("click", startGame);
$("close-room").addEventListener("click", () => client.closeRoom().catch((err) => showMessage(explain(err))));

if (client.resume()) client.connect(); // a reloaded screen: same room, same game
else show("landing");
