// The web lobby: create or join a room, then a live member list with host controls.
// Display names are only ever written with textContent (never innerHTML).
import { RoomdClient, RoomdError } from "/client/roomd.js";

const $ = (id) => document.getElementById(id);
const client = new RoomdClient();

const ERRORS = {
  ROOM_FULL: "This room is full.",
  ROOM_LOCKED: "This room is locked: nobody can join right now.",
  ROOM_NOT_FOUND: "No room has this code. Check it and try again.",
  INVALID_DISPLAY_NAME: "Please choose a name of 1 to 32 characters.",
  INVALID_BODY: "Something in the form is not right.",
  RATE_LIMITED: "Too many attempts. Wait a moment and try again.",
  REDIS_UNAVAILABLE: "The server is having trouble. Try again shortly.",
  ROOM_CODE_GENERATION_FAILED: "No free room code right now. Try again.",
  NETWORK_ERROR: "The server cannot be reached.",
  NOT_HOST: "Only the host can do that.",
  CANNOT_KICK_SELF: "You cannot kick yourself.",
  MEMBER_NOT_FOUND: "That player is no longer in the room.",
  NOT_CONNECTED: "Not connected yet. Try again in a moment.",
};
const ENDED = {
  KICKED: ["Removed", "You were removed from the room by the host."],
  HOST_CLOSED: ["Room closed", "The host closed the room."],
  ADMIN_CLOSED: ["Room closed", "The room was closed by an administrator."],
  EXPIRED: ["Room expired", "The room expired after a long time without activity."],
  CLOSED: ["Room closed", "The room was closed."],
  LEFT: ["You left", "You left the room."],
  REPLACED: ["Opened elsewhere", "This room was opened in another tab or device."],
  NOT_FOUND: ["Room gone", "This room no longer exists, or you are no longer in it."],
  UNAUTHORIZED: ["Session expired", "Your session is no longer valid."],
};
const STATUS = { connecting: "connecting…", open: "connected", reconnecting: "reconnecting…", ended: "", idle: "" };

function show(view) {
  for (const id of ["landing", "lobby", "ended"]) $(id).hidden = id !== view;
}

function showMessage(text) {
  $("message").textContent = text;
  $("message").hidden = !text;
}

function explain(err) {
  if (err instanceof RoomdError) return ERRORS[err.code] || err.message || err.code;
  return String(err);
}

function render() {
  const { room, users } = client;
  if (!room) return;
  document.body.classList.toggle("is-host", client.isHost);
  $("room-code").textContent = room.code;
  $("lock-state").textContent = room.isLocked ? "🔒 locked: nobody can join" : "open to join";
  $("lock-toggle").textContent = room.isLocked ? "Unlock room" : "Lock room";
  $("member-count").textContent = `(${users.length}/${room.maxUsers})`;
  const list = $("members");
  list.replaceChildren(
    ...users.map((user) => {
      const li = document.createElement("li");
      li.dataset.userId = user.id;
      li.className = user.isConnected ? "connected" : "disconnected";
      const dot = document.createElement("span");
      dot.className = "dot";
      dot.title = user.isConnected ? "connected" : "disconnected";
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = user.displayName;
      li.append(dot, name);
      if (user.id === room.hostId) li.append(badge("host", "★ host"));
      if (user.id === client.session?.userId) li.append(badge("you", "you"));
      if (!user.isConnected) li.append(badge("offline", "offline"));
      if (client.isHost && user.id !== client.session?.userId) {
        li.append(button("Make host", "make-host", () => act(() => client.transferHost(user.id))));
        li.append(button("Kick", "kick danger", () => act(() => client.kick(user.id))));
      }
      return li;
    }),
  );
}

function badge(kind, text) {
  const span = document.createElement("span");
  span.className = `badge ${kind}`;
  span.textContent = text;
  return span;
}

function button(text, className, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = className;
  b.textContent = text;
  b.addEventListener("click", onClick);
  return b;
}

function act(action) {
  try {
    showMessage("");
    action();
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
    show("lobby");
    client.connect();
  } catch (err) {
    showMessage(explain(err));
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

client.on("change", render);
client.on("status", ({ status }) => ($("status").textContent = STATUS[status] ?? status));
client.on("error", (err) => showMessage(explain(err)));
client.on("session:ended", ({ reason }) => {
  const [title, text] = ENDED[reason] || ["Session ended", reason];
  $("ended-title").textContent = title;
  $("ended-message").textContent = text;
  document.body.classList.remove("is-host");
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
  e.target.value = e.target.value.toUpperCase().replace(/\s+/g, "");
});
$("lock-toggle").addEventListener("click", () => act(() => client.toggleLock()));
$("close-room").addEventListener("click", () => act(() => client.close()));
$("leave").addEventListener("click", () => act(() => client.leave()));
$("restart").addEventListener("click", () => {
  showMessage("");
  show("landing");
});

// A code in the address (/?code=ABCD) pre-fills the join form, for shared links.
const shared = new URLSearchParams(location.search).get("code");
if (shared) $("join-code").value = RoomdClient.normalizeCode(shared);

if (client.resume()) {
  show("lobby");
  client.connect();
} else {
  show("landing");
}
