// Quibble's phone controller. It knows nothing of the rules: it shows the private entry
// prompt:<me> that the host screen keeps up to date (one input at a time), writes the
// reply into its answer slot answer:<me>, and shows its line of the public scoreboard.
// After a reload (or a lost connection) the first room:state brings the current prompt
// back, and the slot tells whether it was answered already.
import { RoomdClient } from "/client/roomd.js";
import { ENDED, explain } from "/static/messages.js";

const $ = (id) => document.getElementById(id);
const STATUS = { connecting: "connecting…", open: "", reconnecting: "reconnecting…", ended: "", idle: "" };

// The lobby's session key: a player who joined in the lobby lands here already in the room.
const client = new RoomdClient();
globalThis.quibble = { client }; // for the browser console (and the tests)
let shown = null; // the id of the prompt on screen, so a redraw never wipes what is being typed
let sentFor = null; // the prompt this page answered last (its slot's change may still be on its way)
let sending = false;

function show(view) {
  for (const section of document.querySelectorAll("main > .view")) section.hidden = section.id !== view;
}

function showMessage(text) {
  $("message").textContent = text;
  $("message").hidden = !text;
}

const mine = (prefix) => client.state[`${prefix}:${client.session?.userId}`]?.value ?? null;

function render() {
  if (!client.room || !client.session) return;
  $("me").textContent = client.me?.displayName ?? "";
  const board = client.state.scores?.value;
  const line = board?.players.find((p) => p.id === client.session.userId);
  const rank = line ? 1 + board.players.filter((p) => p.score > line.score).length : 0; // ties share a place
  $("score").textContent = line ? `${line.score} points · #${rank} of ${board.players.length}` : "";

  const prompt = mine("prompt");
  const answer = mine("answer");
  if (!prompt) {
    shown = null;
    $("wait-title").textContent = "You're in!";
    $("wait-text").textContent = "Waiting for the screen…";
    $("start").hidden = true;
    return show("wait");
  }
  if (prompt.kind !== "wait" && (answer?.for === prompt.id || sentFor === prompt.id)) {
    shown = prompt.id;
    return show("sent"); // answered already (this page, or before a reload): nothing to redo
  }
  if (prompt.kind === "text" && prompt.id === shown && !$("text").hidden) return; // leave the typing alone
  shown = prompt.id;
  if (prompt.kind === "text") {
    $("text-title").textContent = prompt.title;
    $("text-prompt").textContent = prompt.text;
    if ($("text-answer").dataset.for !== prompt.id) $("text-answer").value = ""; // keep it after a failed send
    $("text-answer").dataset.for = prompt.id;
    $("text-answer").maxLength = prompt.maxLength ?? 80;
    $("text").querySelector("button").disabled = false;
    show("text");
    $("text-answer").focus();
  } else if (prompt.kind === "choice") {
    $("choice-title").textContent = prompt.title;
    $("choice-prompt").textContent = prompt.text;
    $("choices").replaceChildren(
      ...prompt.options.map((option, index) => {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "big choice";
        button.textContent = option ?? "(no answer)"; // never innerHTML: answers are typed by people
        button.disabled = option === null;
        button.addEventListener("click", () => reply(prompt.id, index));
        return button;
      }),
    );
    show("choice");
  } else {
    $("wait-title").textContent = prompt.title;
    $("wait-text").textContent = prompt.text;
    $("start").hidden = !prompt.start;
    if (prompt.start) {
      $("start").disabled = !prompt.start.ready;
      $("start").textContent = prompt.start.ready ? "Everybody's in: start!" : `Waiting for players (${prompt.start.players})`;
    }
    show("wait");
  }
}

/** Write the reply into this phone's slot; the host picks it up from there. */
async function reply(promptId, value) {
  if (sending) return;
  sending = true;
  document.querySelectorAll("main button").forEach((b) => (b.disabled = true));
  try {
    showMessage("");
    await client.setState(`answer:${client.session.userId}`, { for: promptId, value });
    sentFor = promptId;
  } catch (err) {
    showMessage(explain(err)); // e.g. not connected: the prompt is drawn again, to retry
  } finally {
    sending = false;
    shown = null;
    render();
  }
}

$("text").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("text-answer").value.trim();
  if (text) reply(shown, text);
});
$("start").addEventListener("click", async () => {
  try {
    await client.send("start"); // a game message to the host, who checks it comes from the VIP
  } catch (err) {
    showMessage(explain(err));
  }
});
$("join").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    showMessage("");
    await client.joinRoom($("join-code").value, $("join-name").value);
    show("wait");
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
  show("ended");
});

if (client.resume()) {
  client.connect(); // joined in the lobby, or reloaded mid-game: the first room:state has the prompt
} else {
  const code = new URLSearchParams(location.search).get("code");
  if (code) $("join-code").value = RoomdClient.normalizeCode(code);
  show("join");
}
