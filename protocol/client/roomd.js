// roomd JavaScript client: a dependency-free ES module speaking the protocol of
// protocol/README.md. Served by roomd at /client/roomd.js; docs/client.md is its guide.
//
//   import { RoomdClient } from "/client/roomd.js";
//   const client = new RoomdClient();                 // same origin; or { baseUrl }
//   client.on("change", ({ room, users }) => render(room, users));
//   client.on("session:ended", ({ reason }) => showEnded(reason));
//   if (!client.resume()) await client.joinRoom("abcd", "Bob");   // or createRoom("Ana")
//   client.connect();
//
// Reconnection: a dropped socket reconnects with capped, jittered exponential
// backoff using the same token; a refused token (4401/4404) is traded once for
// a fresh one at POST /rooms/:code/rejoin, and if that fails too the session
// ends. Tokens expire (exp = issue + ROOM_TTL_SECONDS) while a busy room lives
// on, so the client also trades its token at half its lifetime. After a page
// reload resume() picks the session up from sessionStorage. The client stops
// for good on leave (1000), kick (4403), replacement (4409) and room closed
// (4410), and says why with a "session:ended" event. Close codes drive every
// decision.

/** Close codes after which reconnecting is pointless: the session is over. */
const STOP = { 1000: "LEFT", 4403: "KICKED", 4409: "REPLACED", 4410: "CLOSED" };
/** Close codes meaning "this token was refused": worth one /rejoin. */
const REJOIN = { 4401: "UNAUTHORIZED", 4404: "NOT_FOUND" };
/** HTTP answers worth retrying later (network down, throttled, server trouble). */
const transient = (status) => status === 0 || status === 408 || status === 429 || status >= 500;
const MAX_TIMER_MS = 2 ** 31 - 1; // setTimeout's limit
const REFRESH_RETRY_MS = 30_000;

export class RoomdError extends Error {
  constructor(code, message, { status, event, id } = {}) {
    super(message || code);
    this.name = "RoomdError";
    this.code = code; // a protocol error code (protocol/codes.json) or NETWORK_ERROR / NOT_CONNECTED / NO_SESSION
    this.status = status; // HTTP status (0: no answer), undefined for WebSocket errors
    this.event = event; // the client event that caused an error:room, if any
    this.id = id; // the correlation id of that event
  }
}

/** The claims of a JWT, decoded but not verified (only the server can), or null. */
export function tokenClaims(token) {
  try {
    const part = String(token).split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part + "=".repeat((4 - (part.length % 4)) % 4)), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === "object" ? claims : null;
  } catch (err) {
    return null;
  }
}

export class RoomdClient {
  /**
   * @param {object} [options]
   * @param {string} [options.baseUrl] roomd's address; defaults to the page's origin
   * @param {Storage|null} [options.storage] where the session survives reloads (sessionStorage; null: nowhere)
   * @param {string} [options.storageKey]
   * @param {{baseMs?: number, capMs?: number}} [options.backoff] reconnection delays
   */
  constructor({ baseUrl, storage, storageKey = "roomd.session", backoff = {} } = {}) {
    this.baseUrl = (baseUrl || globalThis.location?.origin || "").replace(/\/$/, "");
    this.storage = storage === undefined ? globalThis.sessionStorage : storage;
    this.storageKey = storageKey;
    this.backoff = { baseMs: 250, capMs: 10_000, ...backoff };
    this.session = null; // { roomCode, token, userId, refreshAt }
    this.room = null; // the last room object (room:state, kept up to date by later events)
    this.users = []; // the live member list
    this.status = "idle"; // idle | connecting | open | reconnecting | ended
    this._handlers = new Map();
    this._socket = null;
    this._attempt = 0; // reconnection attempts since the last room:state
    this._rejoined = false; // a /rejoin already answered since the last room:state
    this._closedReason = null; // from room:closed, reported when 4410 arrives
    this._epoch = 0; // bumped whenever the socket is replaced, to drop stale callbacks
    this._nextId = 1;
    this._timer = null; // the pending reconnection
    this._refreshTimer = null; // the pending token refresh
    // A phone that wakes up or gets its network back should not sit out the backoff.
    globalThis.addEventListener?.("online", () => this._wake());
    globalThis.document?.addEventListener?.("visibilitychange", () => {
      if (globalThis.document.visibilityState === "visible") this._wake();
    });
  }

  // -- events -----------------------------------------------------------------

  /**
   * Subscribe to a protocol event by name ("user:connected", "room:state", ...) or to one
   * of the client's own: "change" {event, room, users} after every frame, "status" {status},
   * "error" (a RoomdError, from error:room), "reconnecting" {attempt, delayMs, code},
   * "token" {session} after a refresh, "session:ended" {reason, code}.
   * Returns a function that unsubscribes.
   */
  on(event, handler) {
    if (!this._handlers.has(event)) this._handlers.set(event, new Set());
    this._handlers.get(event).add(handler);
    return () => this.off(event, handler);
  }

  off(event, handler) {
    this._handlers.get(event)?.delete(handler);
  }

  _emit(event, data) {
    for (const handler of [...(this._handlers.get(event) || [])]) {
      try {
        handler(data);
      } catch (err) {
        console.error(`roomd: a "${event}" handler failed`, err);
      }
    }
  }

  // -- HTTP -------------------------------------------------------------------

  async _request(method, path, body, token) {
    const headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
    let response;
    try {
      response = await fetch(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new RoomdError("NETWORK_ERROR", "The server cannot be reached.", { status: 0 });
    }
    const payload = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new RoomdError(payload.code || "HTTP_ERROR", payload.message, { status: response.status });
    }
    return payload;
  }

  /** Room codes are case-insensitive: players may type "abcd". */
  static normalizeCode(code) {
    return String(code).replace(/\s+/g, "").toUpperCase();
  }

  _roomPath(code, suffix = "") {
    return `/rooms/${encodeURIComponent(RoomdClient.normalizeCode(code))}${suffix}`;
  }

  /** Create a room; the caller becomes its host. Resolves to the session. */
  async createRoom(displayName, { maxUsers } = {}) {
    const body = { displayName };
    if (maxUsers !== undefined) body.maxUsers = maxUsers;
    return this._remember(await this._request("POST", "/rooms", body));
  }

  /** Join a room by code. Rejects with a RoomdError: ROOM_NOT_FOUND, ROOM_LOCKED, ROOM_FULL, ... */
  async joinRoom(code, displayName) {
    return this._remember(await this._request("POST", this._roomPath(code, "/join"), { displayName }));
  }

  /** The public room object (GET /rooms/:code), without joining. */
  async getRoom(code) {
    return this._request("GET", this._roomPath(code));
  }

  /** Trade the current (still valid) token for a fresh one: same membership, new expiry. */
  async rejoin() {
    if (!this.session) throw new RoomdError("NO_SESSION", "Nothing to rejoin.");
    const { roomCode, token } = this.session;
    return this._remember(await this._request("POST", this._roomPath(roomCode, "/rejoin"), undefined, token));
  }

  /** The session saved by an earlier page (sessionStorage), or null. */
  resume() {
    try {
      const saved = this.storage && JSON.parse(this.storage.getItem(this.storageKey) || "null");
      if (saved && saved.roomCode && saved.token && saved.userId) {
        this.session = saved;
        this._planRefresh();
      }
    } catch (err) {
      this.session = null;
    }
    return this.session;
  }

  _remember({ roomCode, token, userId }) {
    const claims = tokenClaims(token);
    const lifetimeMs = claims && claims.exp > claims.iat ? (claims.exp - claims.iat) * 1000 : null;
    // Measured on our own clock from now, so a skewed device clock does not matter.
    const refreshAt = lifetimeMs ? Date.now() + lifetimeMs / 2 : null;
    const renewed = this.session?.roomCode === roomCode && this.session?.userId === userId;
    this.session = { roomCode, token, userId, refreshAt };
    if (!renewed) {
      this._attempt = 0;
      this._rejoined = false;
    }
    this.storage?.setItem(this.storageKey, JSON.stringify(this.session));
    this._planRefresh();
    return this.session;
  }

  /** Drop the session (here and in storage) without telling the server. */
  forget() {
    clearTimeout(this._refreshTimer);
    this.session = null;
    this.storage?.removeItem(this.storageKey);
  }

  _planRefresh() {
    clearTimeout(this._refreshTimer);
    const due = this.session?.refreshAt;
    if (!due) return;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, due - Date.now()));
    this._refreshTimer = setTimeout(() => this._refresh(), delay);
  }

  async _refresh() {
    const session = this.session;
    if (!session || this.status === "ended") return;
    try {
      await this.rejoin();
      this._emit("token", { session: this.session });
    } catch (err) {
      // A refused token is the socket's business (its close code ends the session);
      // an unreachable server is worth another try.
      if (this.session === session && transient(err.status)) {
        this._refreshTimer = setTimeout(() => this._refresh(), REFRESH_RETRY_MS);
      }
    }
  }

  // -- WebSocket --------------------------------------------------------------

  /**
   * Open the socket. With a token (e.g. handed out by your game's backend), adopt it
   * first; otherwise use the session of createRoom/joinRoom/resume.
   */
  connect(token) {
    if (token) this._adopt(token);
    if (!this.session) throw new RoomdError("NO_SESSION", "Create or join a room first.");
    this._detach();
    const epoch = this._epoch;
    this._closedReason = null;
    this._setStatus(this._attempt ? "reconnecting" : "connecting");
    const url = new URL(this.baseUrl + "/ws", globalThis.location?.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("token", this.session.token); // browsers cannot set headers on WebSockets
    const socket = new WebSocket(url);
    this._socket = socket;
    socket.onmessage = (message) => {
      if (this._epoch === epoch) this._onFrame(message.data);
    };
    socket.onclose = (event) => {
      if (this._epoch !== epoch) return;
      this._socket = null;
      this._onClose(event.code);
    };
  }

  _adopt(token) {
    const claims = tokenClaims(token);
    if (!claims || typeof claims.roomCode !== "string" || typeof claims.userId !== "string") {
      throw new RoomdError("UNAUTHORIZED", "This is not a roomd token.");
    }
    this._remember({ roomCode: claims.roomCode, token, userId: claims.userId });
  }

  /** Close the socket without leaving the room: the user stays a member (shown disconnected). */
  disconnect() {
    this._detach();
    this._setStatus("idle");
  }

  _detach() {
    clearTimeout(this._timer);
    this._timer = null;
    this._epoch += 1; // callbacks of the old socket are ignored from now on
    const socket = this._socket;
    this._socket = null;
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000);
  }

  _send(event, data) {
    if (!this._socket || this._socket.readyState !== WebSocket.OPEN) {
      throw new RoomdError("NOT_CONNECTED", "Not connected.", { event });
    }
    const id = this._nextId++;
    const frame = { event, id };
    if (data !== undefined) frame.data = data;
    this._socket.send(JSON.stringify(frame));
    return id; // echoed by the error:room this frame may cause
  }

  /** Leave for good: the server closes with 1000 and "session:ended" {reason: "LEFT"} follows. */
  leave() {
    return this._send("room:leave");
  }

  /** Host only: close the room for everyone (room:closed HOST_CLOSED, then 4410). */
  close() {
    return this._send("room:close");
  }

  /** Host only: lock (nobody can join) or unlock the room. */
  toggleLock() {
    return this._send("room:toggle_lock");
  }

  /** Host only: remove a member (they get 4403). */
  kick(userId) {
    return this._send("room:kick", { kickUserId: userId });
  }

  /** Host only: hand the host role to another member. */
  transferHost(userId) {
    return this._send("room:transfer_host", { newHostId: userId });
  }

  get me() {
    return this.users.find((u) => u.id === this.session?.userId) || null;
  }

  get isHost() {
    return !!this.room && this.room.hostId === this.session?.userId;
  }

  _onFrame(raw) {
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch (err) {
      return;
    }
    if (!frame || typeof frame.event !== "string") return;
    const { event } = frame;
    const data = frame.data || {};
    this._apply(event, data);
    this._emit(event, data);
    this._emit("change", { event, room: this.room, users: this.users });
  }

  // Keep room and users in step with the events, so apps can simply re-render.
  _apply(event, data) {
    const upsert = (user) => {
      const i = this.users.findIndex((u) => u.id === user.id);
      if (i >= 0) this.users[i] = { ...this.users[i], ...user };
      else this.users.push(user);
    };
    switch (event) {
      case "room:state":
        this.room = data.room;
        this.users = data.users.slice();
        this._attempt = 0;
        this._rejoined = false;
        this._setStatus("open");
        break;
      case "user:joined":
      case "user:connected":
      case "user:disconnected":
        upsert(data.user);
        break;
      case "user:left":
        this.users = this.users.filter((u) => u.id !== data.userId);
        break;
      case "room:lock_toggled":
        if (this.room) this.room = { ...this.room, isLocked: data.isLocked };
        break;
      case "room:host_updated":
        if (this.room) this.room = { ...this.room, hostId: data.hostId };
        this.users = this.users.map((u) => ({ ...u, isHost: u.id === data.hostId }));
        break;
      case "room:closed":
        this._closedReason = data.reason;
        break;
      case "error:room":
        this._emit("error", new RoomdError(data.code, data.message, { event: data.event, id: data.id }));
        break;
    }
    if (this.room && "memberCount" in this.room) this.room.memberCount = this.users.length;
  }

  async _onClose(code) {
    if (STOP[code]) {
      const reason = code === 4410 && this._closedReason ? this._closedReason : STOP[code];
      return this._end(reason, code);
    }
    if (REJOIN[code]) {
      if (this._rejoined) return this._end(REJOIN[code], code);
      const epoch = this._epoch;
      try {
        await this.rejoin();
      } catch (err) {
        if (this._epoch !== epoch || this.status === "ended") return;
        if (!transient(err.status)) return this._end(REJOIN[code], code);
        return this._schedule(code); // could not ask: ask again after a pause
      }
      if (this._epoch !== epoch || this.status === "ended") return;
      this._rejoined = true;
      return this._schedule(code, 0);
    }
    this._schedule(code); // 1001 going away, 1006 network, 1011, 4408 slow consumer, 4429 rate limited, ...
  }

  _schedule(code, delay) {
    const { baseMs, capMs } = this.backoff;
    const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(this._attempt, 30));
    const wait = delay ?? ceiling / 2 + Math.random() * (ceiling / 2); // "equal jitter": spread, never zero
    this._attempt += 1;
    this._setStatus("reconnecting");
    this._emit("reconnecting", { attempt: this._attempt, delayMs: Math.round(wait), code });
    clearTimeout(this._timer);
    this._timer = setTimeout(() => {
      this._timer = null;
      if (this.session && this.status === "reconnecting") this.connect();
    }, wait);
  }

  /** Reconnect now instead of waiting out the backoff (network back, tab visible again). */
  _wake() {
    if (this._timer && this.status === "reconnecting" && this.session) this.connect();
  }

  _end(reason, code) {
    this._detach();
    this.forget();
    this._setStatus("ended");
    this._emit("session:ended", { reason, code });
  }

  _setStatus(status) {
    if (this.status !== status) {
      this.status = status;
      this._emit("status", { status });
    }
  }
}

/** Create a room on the roomd at baseUrl; resolves to a client holding the session (then call connect()). */
export async function createRoom(baseUrl, displayName, options = {}) {
  const client = new RoomdClient({ baseUrl });
  await client.createRoom(displayName, options);
  return client;
}

/** Join a room on the roomd at baseUrl; resolves to a client holding the session (then call connect()). */
export async function joinRoom(baseUrl, code, displayName) {
  const client = new RoomdClient({ baseUrl });
  await client.joinRoom(code, displayName);
  return client;
}
