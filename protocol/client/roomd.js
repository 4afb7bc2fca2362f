// roomd JavaScript client: a dependency-free ES module speaking the protocol of
// protocol/README.md. Served by roomd at /client/roomd.js.
//
//   import { RoomdClient } from "/client/roomd.js";
//   const client = new RoomdClient();                 // same origin; or { baseUrl }
//   client.on("room:state", ({ room, users }) => render(room, users));
//   client.on("session:ended", ({ reason }) => showEnded(reason));
//   await client.createRoom("Ana");                   // or joinRoom("abcd", "Bob")
//   client.connect();
//
// Reconnection: a dropped socket reconnects with capped, jittered exponential
// backoff using the same token; a refused token (4401/4404) is traded once for
// a fresh one at POST /rooms/:code/rejoin; after a page reload resume() picks
// the session up from sessionStorage. The client stops for good on leave
// (1000), kick (4403), replacement (4409) and room closed (4410), and says why
// with a "session:ended" event. Close codes drive every decision.

const STOP = { 1000: "LEFT", 4403: "KICKED", 4409: "REPLACED", 4410: "CLOSED" };
const REJOIN = new Set([4401, 4404]);

export class RoomdError extends Error {
  constructor(code, message, status) {
    super(message || code);
    this.name = "RoomdError";
    this.code = code;
    this.status = status;
  }
}

export class RoomdClient {
  constructor({ baseUrl, storage, storageKey = "roomd.session", backoff = {} } = {}) {
    this.baseUrl = (baseUrl || globalThis.location?.origin || "").replace(/\/$/, "");
    this.storage = storage === undefined ? globalThis.sessionStorage : storage;
    this.storageKey = storageKey;
    this.backoff = { baseMs: 250, capMs: 10000, ...backoff };
    this.session = null; // { roomCode, token, userId }
    this.room = null;
    this.users = [];
    this.status = "idle"; // idle | connecting | open | reconnecting | ended
    this._handlers = new Map();
    this._socket = null;
    this._attempt = 0;
    this._timer = null;
    this._rejoined = false;
    this._closedReason = null;
  }

  // -- events -----------------------------------------------------------------

  on(event, handler) {
    if (!this._handlers.has(event)) this._handlers.set(event, new Set());
    this._handlers.get(event).add(handler);
    return () => this.off(event, handler);
  }

  off(event, handler) {
    this._handlers.get(event)?.delete(handler);
  }

  _emit(event, data) {
    for (const handler of this._handlers.get(event) || []) {
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
      throw new RoomdError("NETWORK_ERROR", "The server cannot be reached.", 0);
    }
    const payload = await response.json().catch(() => ({}));
    if (!response.ok) throw new RoomdError(payload.code || "HTTP_ERROR", payload.message, response.status);
    return payload;
  }

  static normalizeCode(code) {
    return String(code).trim().toUpperCase();
  }

  async createRoom(displayName, { maxUsers } = {}) {
    const body = { displayName };
    if (maxUsers !== undefined) body.maxUsers = maxUsers;
    return this._remember(await this._request("POST", "/rooms", body));
  }

  async joinRoom(code, displayName) {
    const path = `/rooms/${encodeURIComponent(RoomdClient.normalizeCode(code))}/join`;
    return this._remember(await this._request("POST", path, { displayName }));
  }

  async getRoom(code) {
    return this._request("GET", `/rooms/${encodeURIComponent(RoomdClient.normalizeCode(code))}`);
  }

  /** Trade the current token for a fresh one (same membership). */
  async rejoin() {
    if (!this.session) throw new RoomdError("NO_SESSION", "Nothing to rejoin.");
    const path = `/rooms/${encodeURIComponent(this.session.roomCode)}/rejoin`;
    return this._remember(await this._request("POST", path, undefined, this.session.token));
  }

  /** The session saved by an earlier page (sessionStorage), or null. */
  resume() {
    try {
      const saved = this.storage && JSON.parse(this.storage.getItem(this.storageKey) || "null");
      if (saved && saved.roomCode && saved.token && saved.userId) this.session = saved;
    } catch (err) {
      this.session = null;
    }
    return this.session;
  }

  _remember(membership) {
    this.session = { roomCode: membership.roomCode, token: membership.token, userId: membership.userId };
    this.storage?.setItem(this.storageKey, JSON.stringify(this.session));
    return this.session;
  }

  forget() {
    this.session = null;
    this.storage?.removeItem(this.storageKey);
  }

  // -- WebSocket --------------------------------------------------------------

  connect() {
    if (!this.session) throw new RoomdError("NO_SESSION", "Create or join a room first.");
    clearTimeout(this._timer);
    this._closedReason = null;
    this._setStatus(this._attempt ? "reconnecting" : "connecting");
    const url = new URL(this.baseUrl + "/ws");
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("token", this.session.token); // browsers cannot set headers on WebSockets
    const socket = new WebSocket(url);
    this._socket = socket;
    socket.onmessage = (message) => this._onFrame(message.data);
    socket.onclose = (event) => {
      if (this._socket === socket) this._onClose(event.code);
    };
  }

  /** Close the socket locally without leaving the room (the user stays a member). */
  disconnect() {
    clearTimeout(this._timer);
    const socket = this._socket;
    this._socket = null;
    socket?.close(1000);
    this._setStatus("idle");
  }

  _send(event, data, id) {
    if (!this._socket || this._socket.readyState !== WebSocket.OPEN) {
      throw new RoomdError("NOT_CONNECTED", "Not connected.");
    }
    const frame = { event };
    if (data !== undefined) frame.data = data;
    if (id !== undefined) frame.id = id;
    this._socket.send(JSON.stringify(frame));
  }

  leave() { this._send("room:leave"); }
  close() { this._send("room:close"); }
  toggleLock() { this._send("room:toggle_lock"); }
  kick(userId) { this._send("room:kick", { kickUserId: userId }); }
  transferHost(userId) { this._send("room:transfer_host", { newHostId: userId }); }

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
    const { event, data } = frame;
    this._apply(event, data || {});
    this._emit(event, data || {});
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
        this._emit("error", new RoomdError(data.code, data.message));
        break;
    }
  }

  async _onClose(code) {
    this._socket = null;
    if (STOP[code]) {
      const reason = code === 4410 && this._closedReason ? this._closedReason : STOP[code];
      return this._end(reason, code);
    }
    if (REJOIN.has(code)) {
      if (this._rejoined) return this._end(code === 4401 ? "UNAUTHORIZED" : "NOT_FOUND", code);
      this._rejoined = true;
      try {
        await this.rejoin();
      } catch (err) {
        const gone = err.status === 404 || err.status === 401;
        if (gone) return this._end(err.status === 401 ? "UNAUTHORIZED" : "NOT_FOUND", code);
      }
      return this._schedule(0);
    }
    this._schedule(); // 1001 going away, 1006 network, 1011, 4408 slow, 4429 rate limited, ...
  }

  _schedule(delay) {
    const { baseMs, capMs } = this.backoff;
    const ceiling = Math.min(capMs, baseMs * 2 ** this._attempt);
    const wait = delay ?? ceiling / 2 + Math.random() * (ceiling / 2); // "equal jitter"
    this._attempt += 1;
    this._setStatus("reconnecting");
    this._emit("reconnecting", { attempt: this._attempt, delayMs: Math.round(wait) });
    this._timer = setTimeout(() => this.connect(), wait);
  }

  _end(reason, code) {
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
