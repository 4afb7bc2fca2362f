// The web lobby: create or join a room, then a live member list with host controls.
// Display names are only ever written with textContent (never innerHTML).
import { RoomdClient } from "/client/roomd.js";
import { ENDED, explain } from "/static/messages.js";

const $ = (id) => document.getElementById(id);
const client = new RoomdClient();
globalThis.lobby = { client }; // for the browser console (and the browser tests)

const STATUS = { connecting: "connecting…", open: "connected", reconnecting: "reconnecting…", ended: "", idle: "" };

function show(view) {
  for (const id of ["landing", "lobby", "ended"]) $(id).hidden = id !== view;
}

function showMessage(text) {
  $("message").textContent = text;
  $("message").hidden = !text;
}

function render() {
  const { room, users } = client;
  if (!room) return;
  const me = client.session?.userId;
  document.body.classList.toggle("is-host", client.isHost);
  $("room-code").textContent = room.code;
  $("lock-state").textContent = room.isLocked ? "🔒 locked: nobody can join" : "open to join";
  $("lock-toggle").textContent = room.isLocked ? "Unlock room" : "Lock room";
  $("member-count").textContent = `(${users.length}/${room.maxUsers})`;
  $("members").replaceChildren(
    ...users.map((user) => {
      const li = document.createElement("li");
      li.dataset.userId = user.id;
      li.className = user.isConnected ? "connected" : "disconnected";
      const dot = element("span", "dot", "");
      dot.title = user.isConnected ? "connected" : "disconnected";
      li.append(dot, element("span", "name", user.displayName));
      if (user.id === room.hostId) li.append(element("span", "badge host", "★ host"));
      if (user.id === me) li.append(element("span", "badge you", "you"));
      if (!user.isConnected) li.append(element("span", "badge offline", "offline"));
      if (client.isHost && user.id !== me) {
        li.append(button("Make host", "make-host secondary", () => client.transferHost(user.id)));
        li.append(button("Kick", "kick danger", () => client.kick(user.id)));
      }
      return li;
    }),
  );
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text; // never innerHTML: names are whatever people typed
  return node;
}

function button(text, className, action) {
  const node = element("button", className, text);
  node.type = "button";
  node.addEventListener("click", () => act(action));
  return node;
}

/** Run a client action (a Promise settled by the server's ack or error) and explain a failure. */
async function act(action) {
  showMessage("");
  try {
    await action();
  } catch (err) {
    showMessage(explain(err));
  }
}

async function enter(start) {
  const buttons = document.querySelectorAll("#landing button");
  buttons.forEach((b) => (b.disabled = true));
  try {
    showMessage("");
    await start();
    $("room-code").textContent = ""; // nothing left over from an earlier room until room:state
    $("members").replaceChildren();
    show("lobby");
    client.connect();
  } catch (err) {
    showMessage(explain(err));
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

/**
 * A room playing a game served by this roomd says so in a public state entry `app`
 * ({name, url}, e.g. Quibble's host screen sets it): members go to its controller page,
 * which resumes the same session. Only paths of this origin are followed.
 */
function followApp() {
  const url = client.state.app?.value?.url;
  if (client.isHost || typeof url !== "string" || !url.startsWith("/") || url.startsWith("//")) return;
  client.disconnect(); // the controller page connects again with the same session
  location.assign(url);
}

client.on("change", render);
client.on("change", followApp);
client.on("status", ({ status }) => {
  $("status").textContent = STATUS[status] ?? status;
  document.body.dataset.status = status;
  if (status === "open") showMessage(""); // a connection error is over once we are back
});
client.on("error", (err) => showMessage(explain(err)));
client.on("session:ended", ({ reason }) => {
  const [title, text] = ENDED[reason] || ["Session ended", reason];
  $("ended-title").textContent = title;
  $("ended-message").textContent = text;
  document.body.classList.remove("is-host");
  showMessage("");
  show("ended");
});

$("create-form").addEventListener("submit", (e) => {
  e.preventDefault();
  enter(() => client.createRoom($("create-name").value));
});
$("join-form").addEventListener("submit", (e) => {
  e.preventDefault();
  enter(() => client.joinRoom($("join-code").value, $("join-name").value));
});
$("join-code").addEventListener("input", (e) => {
  e.target.value = RoomdClient.normalizeCode(e.target.value); // "abcd" is "ABCD"
});
$("lock-toggle").addEventListener("click", () => act(() => client.toggleLock()));
$("close-room").addEventListener("click", () => act(() => client.closeRoom()));
$("leave").addEventListener("click", () => act(() => client.leave()));
$("restart").addEventListener("click", () => {
  showMessage("");
  show("landing");
});

// A code in the address (/?code=ABCD) pre-fills the join form, for shared links.
const shared = new URLSearchParams(location.search).get("code");
if (shared) {
  $("join-code").value = RoomdClient.normalizeCode(shared);
  $("join-name").focus();
}

if (client.resume()) {
  show("lobby"); // after a reload: same member, same token
  client.connect();
} else {
  show("landing");
}
