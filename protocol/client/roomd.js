// roomd JavaScript client: a dependency-free ES module speaking the protocol of
// protocol/README.md. Served by roomd at /client/roomd.js, with its TypeScript
// declarations at /client/roomd.d.ts; docs/client.md is its guide, docs/games.md
// shows how to build a game on it.
//
//   import { RoomdClient } from "/client/roomd.js";
//   const client = new RoomdClient();                 // same origin; or { baseUrl }
//   client.on("change", ({ room, users, state }) => render(room, users, state));
//   client.on("message", ({ from, type, data }) => handle(from, type, data));
//   client.on("session:ended", ({ reason }) => showEnded(reason));
//   if (!client.resume()) await client.joinRoom("abcd", "Bob");   // or createRoom("Ana")
//   client.connect();
//   await client.setState("answer:" + client.session.userId, "42"); // resolves on the server's ack
//
// Viewers (the audience of a room created with {audience: true}) are not members:
//
//   const viewer = await watchRoom(baseUrl, "abcd", { displayName: "Zoe" });  // POST /rooms/:code/audience
//   viewer.connect();                          // role "viewer": room, users, the "audience" entries, poll
//   viewer.on("change", () => render(viewer.state, viewer.poll));
//   await viewer.vote(viewer.poll.pollId, "A"); // a viewer's only action
//
// Actions (send, setState, deleteState, kick, toggleLock, transferHost, closeRoom,
// leave, and the audience's openPoll, closePoll, lockAudience, vote) send a frame with an id and return a Promise: it resolves with {seq} when
// roomd acknowledges the frame ("ack"), and rejects with a RoomdError carrying the
// error code of the error:room that answered it (or NOT_CONNECTED when no socket is
// open, CONNECTION_LOST when the socket dropped before the answer: the action may or
// may not have happened).
//
// Recovery: the client remembers the highest room sequence number (seq) it applied.
// A dropped socket reconnects with capped, jittered exponential backoff using the
// same token and ?since=<seq>: roomd then replays exactly the events missed
// (room:resumed, then the events), or sends a fresh room:state when its history no
// longer reaches back that far. Either way room, users and state end up as if the
// socket had never dropped. A refused token (4401/4404) is traded once for a fresh
// one at POST /rooms/:code/rejoin, and if that fails too the session ends. Tokens
// expire (exp = issue + ROOM_TTL_SECONDS) while a busy room lives on, so the client
// also trades its token at half its lifetime. After a page reload resume() picks
// the session up from sessionStorage (and the first room:state brings everything
// back). The client stops for good on leave (1000), kick (4403), replacement (4409)
// and room closed (4410), and says why with a "session:ended" event. Close codes
// drive every decision.

/** Close codes after which reconnecting is pointless: the session is over. */
const STOP = /** @type {Record<number, string>} */ ({ 1000: "LEFT", 4403: "KICKED", 4409: "REPLACED", 4410: "CLOSED" });
/** Close codes meaning "this token was refused": worth one /rejoin. */
const REJOIN = /** @type {Record<number, string>} */ ({ 4401: "UNAUTHORIZED", 4404: "NOT_FOUND" });
/** HTTP answers worth retrying later (network down, throttled, server trouble). */
const transient = (/** @type {number | undefined} */ status) =>
  status === 0 || status === 408 || status === 429 || (status !== undefined && status >= 500);
const MAX_TIMER_MS = 2 ** 31 - 1; // setTimeout's limit
const REFRESH_RETRY_MS = 30_000;

/**
 * @typedef {import("./roomd.js").Session} Session
 * @typedef {import("./roomd.js").Room} Room
 * @typedef {import("./roomd.js").User} User
 * @typedef {import("./roomd.js").RoomState} RoomState
 * @typedef {import("./roomd.js").Ack} Ack
 * @typedef {import("./roomd.js").Status} Status
 * @typedef {import("./roomd.js").ClientOptions} ClientOptions
 * @typedef {import("./roomd.js").CreateRoomOptions} CreateRoomOptions
 * @typedef {import("./roomd.js").SendOptions} SendOptions
 * @typedef {import("./roomd.js").SetStateOptions} SetStateOptions
 * @typedef {import("./roomd.js").WatchOptions} WatchOptions
 * @typedef {import("./roomd.js").OpenPollOptions} OpenPollOptions
 * @typedef {import("./roomd.js").Poll} Poll
 * @typedef {import("./roomd.js").Viewer} Viewer
 * @typedef {import("./roomd.js").Role} Role
 * @typedef {import("./roomd.js").DeleteStateOptions} DeleteStateOptions
 * @typedef {import("./roomd.js").RoomdErrorDetails} RoomdErrorDetails
 * @typedef {import("./roomd.js").RoomdClient} RoomdClientDeclaration
 * @typedef {import("./roomd.js").RoomdError} RoomdErrorDeclaration
 * @typedef {{event: string, resolve: (ack: Ack) => void, reject: (err: RoomdError) => void}} Pending
 * @typedef {{event: string, data?: any, seq?: number}} Frame
 */

/** @implements {RoomdErrorDeclaration} */
export class RoomdError extends Error {
  /**
   * @param {string} code
   * @param {string} [message]
   * @param {RoomdErrorDetails} [details]
   */
  constructor(code, message, { status, event, id, version } = {}) {
    super(message || code);
    this.name = "RoomdError";
    this.code = code; // a protocol error code (protocol/codes.json) or NETWORK_ERROR / NOT_CONNECTED / CONNECTION_LOST / NO_SESSION
    this.status = status; // HTTP status (0: no answer), undefined for WebSocket errors
    this.event = event; // the client event that caused an error:room, if any
    this.id = id; // the correlation id of that event
    this.version = version; // VERSION_CONFLICT: the entry's current version (0: absent)
  }
}

/**
 * A poll as the client keeps it, from the data of room:state or a poll:* event.
 * @param {any} data
 * @param {Partial<Poll>} overrides
 * @returns {Poll}
 */
const poll = (data, overrides) => ({
  pollId: data.pollId,
  choices: data.choices ?? [],
  prompt: data.prompt ?? null,
  publicTallies: !!data.publicTallies,
  open: true,
  vote: data.vote ?? null,
  counts: data.counts ?? null,
  votes: data.votes ?? (data.counts ? Object.values(data.counts).reduce((a, b) => a + b, 0) : null),
  ...overrides,
});

/**
 * What a token's holder is: a viewer's token says so (claim role "viewer"), a member's may not.
 * @param {string} token
 * @returns {Role}
 */
const roleOf = (token) => (tokenClaims(token)?.role === "viewer" ? "viewer" : "member");

/**
 * The claims of a JWT, decoded but not verified (only the server can), or null.
 * @type {typeof import("./roomd.js").tokenClaims}
 */
export const tokenClaims = (token) => {
  try {
    const part = String(token).split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part + "=".repeat((4 - (part.length % 4)) % 4)), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === "object" ? claims : null;
  } catch (err) {
    return null;
  }
};

/** @implements {RoomdClientDeclaration} */
export class RoomdClient {
  /** @param {ClientOptions} [options] */
  constructor({ baseUrl, storage, storageKey = "roomd.session", backoff = {} } = {}) {
    this.baseUrl = (baseUrl || globalThis.location?.origin || "").replace(/\/$/, "");
    /** @type {Storage | null} */
    this.storage = storage === undefined ? globalThis.sessionStorage ?? null : storage;
    this.storageKey = storageKey;
    this.backoff = { baseMs: 250, capMs: 10_000, ...backoff };
    /** @type {Session | null} */
    this.session = null;
    /** @type {Room | null} the room object of room:state, kept up to date by later events */
    this.room = null;
    /** @type {User[]} the live member list */
    this.users = [];
    /** @type {RoomState} the state entries this member may read, kept up to date */
    this.state = {};
    /** @type {number | null} the highest room sequence number applied (null: no room:state yet) */
    this.seq = null;
    /** @type {Poll | null} the room's current (or last closed) audience poll as this client sees it */
    this.poll = null;
    /** @type {Viewer | null} a viewer's own record, from its room:state (members: null; see `me`) */
    this.you = null;
    /** @type {number} viewers connected: from room:state, then audience:count (sent to the host) */
    this.audienceCount = 0;
    /** @type {Status} */
    this.status = "idle";
    /** @type {Map<string, Set<(data: any) => void>>} */
    this._handlers = new Map();
    /** @type {WebSocket | null} */
    this._socket = null;
    /** @type {Map<number, Pending>} actions sent and not answered yet, by frame id */
    this._pending = new Map();
    this._attempt = 0; // reconnection attempts since the last room:state / room:resumed
    this._rejoined = false; // a /rejoin already answered since the last room:state
    /** @type {string | null} from room:closed, reported when 4410 arrives */
    this._closedReason = null;
    this._epoch = 0; // bumped whenever the socket is replaced, to drop stale callbacks
    this._nextId = 1;
    /** @type {ReturnType<typeof setTimeout> | undefined} the pending reconnection */
    this._timer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} the pending token refresh */
    this._refreshTimer = undefined;
    this._warnedClose = false;
    // A phone that wakes up or gets its network back should not sit out the backoff.
    globalThis.addEventListener?.("online", () => this._wake());
    globalThis.document?.addEventListener?.("visibilitychange", () => {
      if (globalThis.document.visibilityState === "visible") this._wake();
    });
  }

  // -- events -----------------------------------------------------------------

  /**
   * Subscribe to a protocol event by name ("user:connected", "game:message", ...) or to one
   * of the client's own: "change" {event, room, users, state} after every room frame,
   * "message" {from, type, data, seq} for game:message, "state" {key, value, version, by,
   * deleted, seq} for state:changed / state:deleted, "poll" {event, poll} after every poll:*
   * event and after this viewer's vote was acknowledged, "status" {status}, "error" (a
   * RoomdError, from every error:room), "reconnecting" {attempt, delayMs, code}, "token"
   * {session} after a refresh, "session:ended" {reason, code}. Returns an unsubscribe function.
   * @param {string} event
   * @param {(data: any) => void} handler
   * @returns {() => void}
   */
  on(event, handler) {
    let handlers = this._handlers.get(event);
    if (!handlers) this._handlers.set(event, (handlers = new Set()));
    handlers.add(handler);
    return () => this.off(event, handler);
  }

  /**
   * @param {string} event
   * @param {(data: any) => void} handler
   */
  off(event, handler) {
    this._handlers.get(event)?.delete(handler);
  }

  /**
   * @param {string} event
   * @param {any} data
   */
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

  /**
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   * @param {string} [token]
   * @returns {Promise<any>}
   */
  async _request(method, path, body, token) {
    /** @type {Record<string, string>} */
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

  /**
   * Room codes are case-insensitive: players may type "abcd".
   * @param {string} code
   */
  static normalizeCode(code) {
    return String(code).replace(/\s+/g, "").toUpperCase();
  }

  /**
   * @param {string} code
   * @param {string} [suffix]
   */
  _roomPath(code, suffix = "") {
    return `/rooms/${encodeURIComponent(RoomdClient.normalizeCode(code))}${suffix}`;
  }

  /**
   * Create a room; the caller becomes its host. Resolves to the session.
   * @param {string} displayName
   * @param {CreateRoomOptions} [options] maxUsers, playerMessages ("host" | "all"), hostMigration ("leave" | "disconnect"), audience (true: viewers may watch)
   */
  async createRoom(displayName, options = {}) {
    /** @type {Record<string, unknown>} */
    const body = { displayName };
    for (const [name, value] of Object.entries(options)) if (value !== undefined) body[name] = value;
    return this._remember(await this._request("POST", "/rooms", body));
  }

  /**
   * Join a room by code. Rejects with a RoomdError: ROOM_NOT_FOUND, ROOM_LOCKED, ROOM_FULL, ...
   * @param {string} code
   * @param {string} displayName
   */
  async joinRoom(code, displayName) {
    return this._remember(await this._request("POST", this._roomPath(code, "/join"), { displayName }));
  }

  /**
   * Watch a room as a viewer (its audience): not a member, not in `users`, no host controls;
   * sees the room, the members and the entries visible to "audience", and votes in polls.
   * Rejects with a RoomdError: ROOM_NOT_FOUND, AUDIENCE_DISABLED, AUDIENCE_LOCKED, AUDIENCE_FULL, ...
   * @param {string} code
   * @param {WatchOptions} [options] displayName (default "Viewer", chosen by the server)
   */
  async watchRoom(code, { displayName } = {}) {
    const body = displayName === undefined ? {} : { displayName };
    return this._remember(await this._request("POST", this._roomPath(code, "/audience"), body));
  }

  /**
   * The public room object (GET /rooms/:code), without joining.
   * @param {string} code
   * @returns {Promise<Room>}
   */
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
        saved.role ??= roleOf(saved.token);
        this._reset(saved);
        this.session = saved;
        this._planRefresh();
      }
    } catch (err) {
      this.session = null;
    }
    return this.session;
  }

  /**
   * A membership (userId) or a viewer's admission (audienceId), from HTTP or a token.
   * @param {{roomCode: string, token: string, userId?: string, audienceId?: string}} membership
   * @returns {Session}
   */
  _remember({ roomCode, token, userId, audienceId }) {
    const claims = tokenClaims(token);
    const lifetimeMs = claims && claims.exp > claims.iat ? (claims.exp - claims.iat) * 1000 : null;
    // Measured on our own clock from now, so a skewed device clock does not matter.
    const refreshAt = lifetimeMs ? Date.now() + lifetimeMs / 2 : null;
    const id = userId ?? audienceId ?? (typeof claims?.userId === "string" ? claims.userId : "");
    /** @type {Session} */
    const session = { roomCode, token, userId: id, role: roleOf(token), refreshAt };
    this._reset(session);
    this.session = session;
    this.storage?.setItem(this.storageKey, JSON.stringify(this.session));
    this._planRefresh();
    return this.session;
  }

  /**
   * Another room or another member: nothing of the previous one may leak into it, and
   * its seq must not be used to resume.
   * @param {{roomCode: string, userId: string}} next
   */
  _reset(next) {
    if (this.session?.roomCode === next.roomCode && this.session?.userId === next.userId) return;
    this._attempt = 0;
    this._rejoined = false;
    this.room = null;
    this.users = [];
    this.state = {};
    this.seq = null;
    this.poll = null;
    this.you = null;
    this.audienceCount = 0;
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
      if (this.session === session && err instanceof RoomdError && transient(err.status)) {
        this._refreshTimer = setTimeout(() => this._refresh(), REFRESH_RETRY_MS);
      }
    }
  }

  // -- WebSocket --------------------------------------------------------------

  /**
   * Open the socket. With a token (e.g. handed out by your game's backend), adopt it
   * first; otherwise use the session of createRoom/joinRoom/resume. When this client
   * already holds the room (a reconnection), it asks for the missed events only.
   * @param {string} [token]
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
    url.searchParams.set("room", this.session.roomCode); // ignored by roomd; a proxy may route a room's sockets together
    if (this.room && this.seq !== null) url.searchParams.set("since", String(this.seq));
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

  /** @param {string} token */
  _adopt(token) {
    const claims = tokenClaims(token);
    if (!claims || typeof claims.roomCode !== "string" || typeof claims.userId !== "string") {
      throw new RoomdError("UNAUTHORIZED", "This is not a roomd token.");
    }
    this._remember({ roomCode: claims.roomCode, token, userId: claims.userId });
  }

  /**
   * Close the socket without leaving the room: the user stays a member (shown
   * disconnected) and connect() picks up where it stopped. The room stays open.
   */
  disconnect() {
    this._detach();
    this._setStatus("idle");
  }

  /**
   * Deprecated: an alias of disconnect(). It never closed the room for everyone (use
   * closeRoom() for that), whatever older versions of this client did.
   * @deprecated
   */
  close() {
    if (!this._warnedClose) {
      this._warnedClose = true;
      console.warn("roomd: close() only disconnects; use disconnect(), or closeRoom() to close the room");
    }
    this.disconnect();
  }

  _detach() {
    clearTimeout(this._timer);
    this._timer = undefined;
    this._epoch += 1; // callbacks of the old socket are ignored from now on
    const socket = this._socket;
    this._socket = null;
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000);
    this._settle(null);
  }

  /**
   * Send a client event with an id; the Promise settles on the server's answer.
   * @param {string} event
   * @param {unknown} [data]
   * @returns {Promise<Ack>}
   */
  _send(event, data) {
    if (!this._socket || this._socket.readyState !== WebSocket.OPEN) {
      return Promise.reject(new RoomdError("NOT_CONNECTED", "Not connected.", { event }));
    }
    const id = this._nextId++;
    /** @type {Frame & {id: number}} */
    const frame = { event, id };
    if (data !== undefined) frame.data = data;
    /** @type {Promise<Ack>} */
    const answered = new Promise((resolve, reject) => this._pending.set(id, { event, resolve, reject }));
    this._socket.send(JSON.stringify(frame));
    return answered;
  }

  /**
   * The socket is gone (close code, or null when we dropped it ourselves): nothing
   * more will answer the actions in flight. A leave answered by 1000 and a closeRoom
   * answered by room:closed HOST_CLOSED did happen; of the others we cannot know.
   * @param {number | null} code
   */
  _settle(code) {
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const { event, resolve, reject } of pending) {
      if ((event === "room:leave" && code === 1000) || (event === "room:close" && this._closedReason === "HOST_CLOSED")) {
        resolve({ seq: this.seq ?? 0 });
      } else {
        const message = "The connection ended before the server answered; the action may or may not have happened.";
        reject(new RoomdError("CONNECTION_LOST", message, { event }));
      }
    }
  }

  /** Leave for good: the server closes with 1000 and "session:ended" {reason: "LEFT"} follows. */
  leave() {
    return this._send("room:leave");
  }

  /** Host only: close the room for everyone (room:closed HOST_CLOSED, then 4410). */
  closeRoom() {
    return this._send("room:close");
  }

  /** Host only: lock (nobody can join) or unlock the room. */
  toggleLock() {
    return this._send("room:toggle_lock");
  }

  /**
   * Host only: remove a member (they get 4403), or a viewer by its audienceId (its token dies).
   * @param {string} userId
   */
  kick(userId) {
    return this._send("room:kick", { kickUserId: userId });
  }

  /**
   * Host only: hand the host role to another member.
   * @param {string} userId
   */
  transferHost(userId) {
    return this._send("room:transfer_host", { newHostId: userId });
  }

  /**
   * A game message: recipients get game:message {from, type, data} ("message" here).
   * `to` is "host" (the default, and all a player may use unless the room was created
   * with playerMessages "all"), "all" (the sender included), "others", user ids, or
   * "audience" (host only: every viewer, and no member).
   * @param {string} type 1-64 characters of [A-Za-z0-9_.:-]
   * @param {unknown} [data] any JSON value
   * @param {SendOptions} [options]
   */
  send(type, data = null, { to = "host" } = {}) {
    return this._send("game:send", { to, type, data });
  }

  /**
   * Create or change a state entry. Only the host creates entries and sets visibleTo
   * ("all" | "host" | user ids | "audience": every member and every viewer) and writableBy ("host" | "all" | user ids); a member may
   * change the value of an entry it may write. ifVersion makes it conditional (0: "must
   * not exist"); a mismatch rejects with VERSION_CONFLICT and err.version.
   * @param {string} key
   * @param {unknown} value
   * @param {SetStateOptions} [options]
   */
  setState(key, value, { visibleTo, writableBy, ifVersion } = {}) {
    /** @type {Record<string, unknown>} */
    const data = { key, value };
    if (visibleTo !== undefined) data.visibleTo = visibleTo;
    if (writableBy !== undefined) data.writableBy = writableBy;
    if (ifVersion !== undefined) data.ifVersion = ifVersion;
    return this._send("state:set", data);
  }

  /**
   * Host only: delete a state entry (its readers get state:deleted).
   * @param {string} key
   * @param {DeleteStateOptions} [options]
   */
  deleteState(key, { ifVersion } = {}) {
    /** @type {Record<string, unknown>} */
    const data = { key };
    if (ifVersion !== undefined) data.ifVersion = ifVersion;
    return this._send("state:delete", data);
  }

  /**
   * Host only: open an audience poll (one at a time: else POLL_ALREADY_OPEN). Viewers vote
   * with vote(); the host gets poll:tally at most every 250 ms (everyone does with
   * publicTallies) and the exact count in poll:closed.
   * @param {OpenPollOptions} poll
   */
  openPoll({ pollId, choices, prompt, publicTallies }) {
    /** @type {Record<string, unknown>} */
    const data = { pollId, choices };
    if (prompt !== undefined) data.prompt = prompt;
    if (publicTallies !== undefined) data.publicTallies = publicTallies;
    return this._send("poll:open", data);
  }

  /**
   * Host only: close the open poll; poll:closed brings the final counts (to the host, or to
   * everyone with publicTallies) and `poll` holds them once this resolves.
   * @param {string} pollId
   */
  closePoll(pollId) {
    return this._send("poll:close", { pollId });
  }

  /**
   * Host only: refuse new viewers (true) or admit them again (false). Viewers already in stay.
   * @param {boolean} locked
   */
  lockAudience(locked) {
    return this._send("audience:lock", { locked });
  }

  /**
   * Viewers only: vote in the open poll (one vote per viewer, changeable while it is open).
   * Resolves on the ack, with `poll.vote` set to the choice.
   * @param {string} pollId
   * @param {string} choice
   */
  async vote(pollId, choice) {
    const ack = await this._send("poll:vote", { pollId, choice });
    if (this.poll && this.poll.pollId === pollId) {
      this.poll = { ...this.poll, vote: choice };
      this._emit("poll", { event: "poll:vote", poll: this.poll });
      this._emit("change", this._change("poll:vote"));
    }
    return ack;
  }

  /** "member", "viewer", or null without a session. */
  get role() {
    return this.session ? (this.session.role ?? "member") : null;
  }

  /** @returns {User | null} */
  get me() {
    return this.users.find((u) => u.id === this.session?.userId) || null;
  }

  get isHost() {
    return !!this.room && this.room.hostId === this.session?.userId;
  }

  /** @param {unknown} raw */
  _onFrame(raw) {
    /** @type {Frame} */
    let frame;
    try {
      frame = JSON.parse(String(raw));
    } catch (err) {
      return;
    }
    if (!frame || typeof frame.event !== "string") return;
    const { event, seq } = frame;
    const data = frame.data || {};
    if (event === "ack" || event === "error:room") {
      this._answer(event, data);
      return;
    }
    if (typeof seq === "number" && event !== "room:state") {
      // roomd sends each event once and in order; an older one can only be a leftover
      // of a snapshot that already contains it.
      if (this.seq !== null && seq < this.seq) return;
      this.seq = seq;
    }
    this._apply(event, data, frame);
    this._emit(event, data);
    if (event.startsWith("poll:") || (event === "room:state" && this.poll)) this._emit("poll", { event, poll: this.poll });
    if (event !== "room:resumed") this._emit("change", this._change(event));
  }

  /**
   * @param {string} event
   * @returns {import("./roomd.js").ChangeEvent}
   */
  _change(event) {
    return { event, room: this.room, users: this.users, state: this.state, poll: this.poll };
  }

  /**
   * ack and error:room settle the action that sent that id.
   * @param {string} event
   * @param {any} data
   */
  _answer(event, data) {
    const pending = typeof data.id === "number" ? this._pending.get(data.id) : undefined;
    if (pending) this._pending.delete(data.id);
    if (event === "ack") {
      pending?.resolve({ seq: data.seq });
      this._emit("ack", data);
      return;
    }
    const { code, message, id, version } = data;
    const error = new RoomdError(code, message, { event: data.event, id, version });
    pending?.reject(error);
    this._emit("error:room", data);
    this._emit("error", error);
    this._emit("change", this._change(event));
  }

  /**
   * Keep room, users and state in step with the events, so apps can simply re-render.
   * @param {string} event
   * @param {any} data
   * @param {Frame} frame
   */
  _apply(event, data, frame) {
    /** @param {User} user */
    const upsert = (user) => {
      const i = this.users.findIndex((u) => u.id === user.id);
      if (i >= 0) this.users[i] = { ...this.users[i], ...user };
      else this.users.push(user);
    };
    switch (event) {
      case "room:state":
        this.room = data.room;
        this.users = data.users.slice();
        this.state = { ...(data.state || {}) };
        this.poll = data.poll ? poll(data.poll, { open: true }) : this.poll?.open ? null : this.poll;
        this.you = data.you ?? null;
        this.audienceCount = typeof data.room?.audienceCount === "number" ? data.room.audienceCount : this.audienceCount;
        if (typeof frame.seq === "number") this.seq = frame.seq;
        this._opened();
        break;
      case "room:resumed":
        if (typeof data.since === "number" && this.seq !== null && data.since !== this.seq) {
          console.warn(`roomd: resumed after ${data.since}, asked for ${this.seq}`);
        }
        this._opened();
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
      case "game:message":
        this._emit("message", { from: data.from, type: data.type, data: data.data, seq: frame.seq });
        break;
      case "state:changed":
        this.state = { ...this.state, [data.key]: { value: data.value, version: data.version } };
        this._emit("state", { ...data, deleted: false, seq: frame.seq });
        break;
      case "audience:count":
        this.audienceCount = data.count;
        if (this.room) this.room = { ...this.room, audienceCount: data.count };
        break;
      case "audience:lock_updated":
        if (this.room) this.room = { ...this.room, audienceLocked: data.locked };
        break;
      case "poll:opened":
        this.poll = poll(data, { open: true, vote: null, counts: null, votes: null });
        break;
      case "poll:tally":
        if (this.poll && this.poll.pollId === data.pollId) this.poll = { ...this.poll, counts: data.counts, votes: data.votes };
        break;
      case "poll:closed":
        if (this.poll && this.poll.pollId === data.pollId) {
          const { counts, votes } = this.poll;
          this.poll = { ...this.poll, open: false, counts: data.counts ?? counts, votes: data.votes ?? votes };
        } else {
          this.poll = poll(data, { open: false }); // opened while this client was away
        }
        break;
      case "state:deleted": {
        const { [data.key]: _gone, ...rest } = this.state;
        this.state = rest;
        this._emit("state", { key: data.key, value: undefined, version: data.version, by: data.by, deleted: true, seq: frame.seq });
        break;
      }
    }
    if (this.room && "memberCount" in this.room) this.room.memberCount = this.users.length;
  }

  _opened() {
    this._attempt = 0;
    this._rejoined = false;
    this._setStatus("open");
  }

  /** @param {number} code */
  async _onClose(code) {
    this._settle(code);
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
        if (!(err instanceof RoomdError && transient(err.status))) return this._end(REJOIN[code], code);
        return this._schedule(code); // could not ask: ask again after a pause
      }
      if (this._epoch !== epoch || this.status === "ended") return;
      this._rejoined = true;
      return this._schedule(code, 0);
    }
    this._schedule(code); // 1001 going away, 1006 network, 1011, 4408 slow consumer, 4429 rate limited, ...
  }

  /**
   * @param {number} code
   * @param {number} [delay]
   */
  _schedule(code, delay) {
    const { baseMs, capMs } = this.backoff;
    const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(this._attempt, 30));
    const wait = delay ?? ceiling / 2 + Math.random() * (ceiling / 2); // "equal jitter": spread, never zero
    this._attempt += 1;
    this._setStatus("reconnecting");
    this._emit("reconnecting", { attempt: this._attempt, delayMs: Math.round(wait), code });
    clearTimeout(this._timer);
    this._timer = setTimeout(() => {
      this._timer = undefined;
      if (this.session && this.status === "reconnecting") this.connect();
    }, wait);
  }

  /** Reconnect now instead of waiting out the backoff (network back, tab visible again). */
  _wake() {
    if (this._timer && this.status === "reconnecting" && this.session) this.connect();
  }

  /**
   * @param {string} reason
   * @param {number} code
   */
  _end(reason, code) {
    this._detach();
    this.forget();
    this._setStatus("ended");
    this._emit("session:ended", { reason, code });
  }

  /** @param {Status} status */
  _setStatus(status) {
    if (this.status !== status) {
      this.status = status;
      this._emit("status", { status });
    }
  }
}

/**
 * Create a room on the roomd at baseUrl; resolves to a client holding the session (then call connect()).
 * @type {typeof import("./roomd.js").createRoom}
 */
export const createRoom = async (baseUrl, displayName, options = {}) => {
  const client = new RoomdClient({ baseUrl });
  await client.createRoom(displayName, options);
  return client;
};

/**
 * Join a room on the roomd at baseUrl; resolves to a client holding the session (then call connect()).
 * @type {typeof import("./roomd.js").joinRoom}
 */
export const joinRoom = async (baseUrl, code, displayName) => {
  const client = new RoomdClient({ baseUrl });
  await client.joinRoom(code, displayName);
  return client;
};

/**
 * Watch a room on the roomd at baseUrl as a viewer; resolves to a client holding the viewer's
 * session (then call connect()). `storage`/`storageKey` as for new RoomdClient.
 * @type {typeof import("./roomd.js").watchRoom}
 */
export const watchRoom = async (baseUrl, code, { displayName, ...options } = {}) => {
  const client = new RoomdClient({ baseUrl, ...options });
  await client.watchRoom(code, { displayName });
  return client;
};
