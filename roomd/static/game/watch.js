// Quibble for the audience: viewers who watch the game from elsewhere (a stream, another
// room) and vote for their favourite answers. A viewer is not a player: roomd admits it
// with POST /rooms/:code/audience (client.watchRoom), it is not in the member list, and
// it reads only the entries the host made visible to "audience" — here `stage`, what the
// TV shows (rules.stage) — never a player's prompt or answer slot. During each duel the
// host opens a poll; a viewer's tap is client.vote(pollId, "A" | "B"), changeable while
// the poll is open, and the audience's favourite answer earns bonus points.
import { RoomdClient } from "/client/roomd.js";
import { ENDED, explain } from "/static/messages.js";

const $ = (id) => document.getElementById(id);
const STATUS = { connecting: "connecting…", open: "", reconnecting: "reconnecting…", ended: "", idle: "" };

// Its own session key: a tab that also holds a player's session keeps both apart.
const client = new RoomdClient({ storageKey: "quibble.viewer" });
globalThis.quibble = { client }; // for the browser console (and the tests)
let voting = false;

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

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

function render() {
  if (!client.room || !client.session) return;
  $("footer-code").textContent = `Room ${client.room.code}`;
  $("you").textContent = client.you?.displayName ?? "";
  const stage = client.state.stage?.value;
  $("round").textContent = stage && stage.status !== "lobby" ? `Round ${stage.round} of ${stage.rounds}` : "";
  if (!stage || stage.status === "lobby") {
    const players = client.users.filter((u) => !u.isHost);
    $("players").replaceChildren(...players.map((u) => element("li", "player", u.displayName)));
    return show("lobby");
  }
  if (stage.status === "answer") {
    const { done, of } = stage.answered ?? { done: 0, of: 0 };
    $("answered").textContent = `${done} of ${of} players done`;
    return show("answer");
  }
  if (stage.status === "vote" && stage.duel) return renderDuel(stage.duel);
  $("scores-title").textContent = stage.status === "end" ? "Final scores" : "Scores";
  $("scoreboard").replaceChildren(
    ...stage.players.map((p) => {
      const li = element("li", "", "");
      li.append(element("span", "name", p.name), element("span", "points", String(p.score)));
      return li;
    }),
  );
  show("scores");
}

function renderDuel(duel) {
  const poll = client.poll?.pollId === duel.poll ? client.poll : null;
  const open = !!poll?.open && !duel.result;
  const { result } = duel;
  $("duel-title").textContent = `Prompt ${duel.n} of ${duel.of}`;
  $("duel-prompt").textContent = duel.text;
  const choices = client.poll?.choices ?? ["A", "B"];
  $("duel").replaceChildren(
    ...duel.answers.map((answer, i) => {
      const button = element("button", "big choice", "");
      button.type = "button";
      button.dataset.choice = choices[i];
      button.append(element("span", "answer", answer ?? "(no answer)"));
      if (result) {
        const sweep = result.sweep === i ? " · QUIBBLE!" : "";
        const favourite = result.audience?.bonus === i ? ` · audience +${result.audience.points}` : "";
        const caption = `${result.names[i]} · ${plural(result.votes[i], "vote")} · +${result.points[i]}${sweep}${favourite}`;
        button.append(element("small", "caption", caption));
      }
      button.classList.toggle("picked", !!poll && poll.vote === choices[i]);
      button.classList.toggle("revealed", !!result); // results stay readable on disabled buttons
      button.classList.toggle("favourite", result?.audience?.bonus === i);
      button.disabled = !open || answer === null || voting;
      button.addEventListener("click", () => vote(duel.poll, choices[i]));
      return button;
    }),
  );
  if (result) $("duel-hint").textContent = "The results are in!";
  else if (!poll) $("duel-hint").textContent = "Waiting for the vote to open…";
  else if (!open) $("duel-hint").textContent = "Voting is closed.";
  else if (poll.vote) $("duel-hint").textContent = `You voted ${poll.vote}. Tap the other answer to change it.`;
  else $("duel-hint").textContent = "Vote for your favourite!";
  const audience = result?.audience;
  $("duel-audience").textContent = audience
    ? audience.bonus === null
      ? `Audience: ${audience.votes[0]} to ${audience.votes[1]}, no favourite`
      : `Audience: ${audience.votes[0]} to ${audience.votes[1]} · favourite: ${result.names[audience.bonus]} +${audience.points}`
    : result
      ? "Audience: counting…"
      : "";
  show("vote");
}

async function vote(pollId, choice) {
  if (voting || !pollId) return;
  voting = true;
  try {
    showMessage("");
    await client.vote(pollId, choice); // resolves on the ack, with client.poll.vote set
  } catch (err) {
    showMessage(explain(err));
  } finally {
    voting = false;
    render();
  }
}

$("join").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    showMessage("");
    const name = $("join-name").value.trim();
    await client.watchRoom($("join-code").value, { displayName: name || undefined });
    show("lobby");
    client.connect();
  } catch (err) {
    showMessage(explain(err));
  }
});
$("join-code").addEventListener("input", (e) => {
  e.target.value = RoomdClient.normalizeCode(e.target.value);
});

client.on("change", render);
client.on("status", ({ status }) => {
  $("status").textContent = STATUS[status] ?? status;
  document.body.dataset.status = status;
  if (status === "open") showMessage("");
});
client.on("session:ended", ({ reason }) => {
  const [title, text] = ENDED[reason] || ["Session ended", reason];
  $("ended-title").textContent = title;
  $("ended-message").textContent = text;
  $("round").textContent = "";
  show("ended");
});

if (client.resume()) {
  client.connect(); // a reloaded page: the same viewer, and the first room:state has the stage
} else {
  const code = new URLSearchParams(location.search).get("code");
  if (code) $("join-code").value = RoomdClient.normalizeCode(code);
  show("join");
}
