// TypeScript declarations of roomd.js, the roomd JavaScript client (served beside it
// at /client/roomd.d.ts). roomd.js is checked against this file with `tsc --noEmit`
// (tools/typecheck): its classes declare `@implements` of the classes below.
// Guide: docs/client.md; building a game: docs/games.md.

/** A member of a room, as in room:state and the user:* events. */
export interface User {
  id: string;
  displayName: string;
  isConnected: boolean;
  isHost: boolean;
}

/** The room object of GET /rooms/:code and room:state. */
export interface Room {
  code: string;
  hostId: string;
  isLocked: boolean;
  maxUsers: number;
  state: string;
  memberCount: number;
  createdAt: string;
  updatedAt: string;
  expiresAt: string;
  /** Who players may send game messages to: "host" (default) or "all". */
  playerMessages: "host" | "all";
  /** When the host role moves on: "leave" (default) or "disconnect". */
  hostMigration: "leave" | "disconnect";
  /** Whether viewers may watch (created with `audience: true`); absent from older servers. */
  audience?: boolean;
  /** Whether the host refuses new viewers (lockAudience). */
  audienceLocked?: boolean;
  /** Connected viewers, as last published (at most about a second old). */
  audienceCount?: number;
}

/** A member of the room, or a viewer of its audience. */
export type Role = "member" | "viewer";

/** A viewer's own record (`client.you`), from its room:state. */
export interface Viewer {
  audienceId: string;
  displayName: string;
  role: "viewer";
}

/**
 * The room's audience poll as this client sees it: the open one, or the last one closed
 * while this client watched (with its final counts if this client receives them).
 */
export interface Poll {
  pollId: string;
  choices: string[];
  prompt: string | null;
  publicTallies: boolean;
  open: boolean;
  /** This viewer's choice, null if it has not voted (always null for members). */
  vote: string | null;
  /** Votes per choice: the host's (or everyone's, with publicTallies) latest tally; null if none received. */
  counts: Record<string, number> | null;
  /** Total votes of that tally. */
  votes: number | null;
}

/** The membership (or a viewer's admission) this client holds (kept in sessionStorage between page loads). */
export interface Session {
  roomCode: string;
  token: string;
  /** The member's user id, or the viewer's audienceId. */
  userId: string;
  /** "viewer" for a session of watchRoom (absent from sessions saved by older clients: "member"). */
  role?: Role;
  /** When the client trades its token for a fresh one (ms since the epoch), null if unknown. */
  refreshAt: number | null;
}

/** One state entry as this member sees it. */
export interface StateEntry<T = any> {
  value: T;
  version: number;
}

/** The state entries this member may read, by key. */
export type RoomState = Record<string, StateEntry>;

export type Status = "idle" | "connecting" | "open" | "reconnecting" | "ended";

/**
 * Recipients of a game message: "host", "all" (the sender included; members only), "others",
 * user ids, or "audience" (host only: every viewer and no member).
 */
export type Recipients = "host" | "all" | "others" | "audience" | string[];
/** Who may read an entry besides the host, who always may: "audience" is every member and every viewer. */
export type Visibility = "all" | "host" | "audience" | string[];
/** Who may change an entry's value besides the host, who always may. */
export type Writers = "host" | "all" | string[];

/**
 * What an action's Promise resolves to: the room's sequence number after its effect. roomd
 * sends the ack after every event up to that seq this member receives, so `state` and the
 * events already reflect the action when the Promise resolves.
 */
export interface Ack {
  seq: number;
}

export interface ClientOptions {
  /** roomd's address; defaults to the page's origin. */
  baseUrl?: string;
  /** Where the session survives reloads (default sessionStorage; null: nowhere). */
  storage?: Storage | null;
  storageKey?: string;
  /** Reconnection delays. */
  backoff?: { baseMs?: number; capMs?: number };
}

export interface CreateRoomOptions {
  maxUsers?: number;
  playerMessages?: "host" | "all";
  hostMigration?: "leave" | "disconnect";
  /** Admit viewers (watchRoom) to this room. Default false. */
  audience?: boolean;
}

export interface WatchOptions {
  /** Shown to nobody but the host's tools (roomctl); default "Viewer". Validated like a member's name. */
  displayName?: string;
}

export interface OpenPollOptions {
  /** 1-64 characters; names the poll in vote() and the poll:* events. */
  pollId: string;
  /** 2-16 unique strings of 1-64 characters. */
  choices: string[];
  /** At most 200 characters. */
  prompt?: string;
  /** Send running tallies and the final counts to everyone, not only the host. Default false. */
  publicTallies?: boolean;
}

export interface SendOptions {
  /** Default "host". */
  to?: Recipients;
}

export interface SetStateOptions {
  /** Host only, default "all". */
  visibleTo?: Visibility;
  /** Host only, default "host". */
  writableBy?: Writers;
  /** Apply only if the entry has this version (0: only if it does not exist). */
  ifVersion?: number;
}

export interface DeleteStateOptions {
  ifVersion?: number;
}

export interface RoomdErrorDetails {
  status?: number;
  event?: string;
  id?: string | number;
  version?: number;
}

export declare class RoomdError extends Error {
  constructor(code: string, message?: string, details?: RoomdErrorDetails);
  /**
   * A protocol error code (protocol/codes.json: NOT_HOST, NOT_ALLOWED, VERSION_CONFLICT, ...)
   * or one of the client's own: NETWORK_ERROR, NOT_CONNECTED, CONNECTION_LOST, NO_SESSION, HTTP_ERROR.
   */
  code: string;
  /** HTTP status of an HTTP error (0: no answer); undefined for WebSocket errors. */
  status: number | undefined;
  /** The client event that failed, for WebSocket errors. */
  event: string | undefined;
  /** The correlation id of that event. */
  id: string | number | undefined;
  /** VERSION_CONFLICT: the entry's current version (0: it does not exist). */
  version: number | undefined;
}

/** A game message, as the "message" event delivers it. */
export interface GameMessage<T = any> {
  /** The sender's user id. */
  from: string;
  type: string;
  data: T;
  seq?: number;
}

/** A state entry changed or deleted, as the "state" event delivers it. */
export interface StateChange<T = any> {
  key: string;
  /** undefined when deleted. */
  value: T | undefined;
  version: number;
  /** The writer's user id, or "ADMIN". */
  by: string;
  deleted: boolean;
  seq?: number;
}

export interface ChangeEvent {
  /** The protocol event that caused the change ("poll:vote": this viewer's vote was acknowledged). */
  event: string;
  room: Room | null;
  users: User[];
  state: RoomState;
  poll: Poll | null;
}

/** The data of a poll:opened event. */
export interface PollOpened {
  pollId: string;
  choices: string[];
  prompt?: string;
  publicTallies: boolean;
}

/** A room:state's poll: the open poll, with this viewer's vote, and counts for the host (everyone with publicTallies). */
export interface PollSnapshot extends PollOpened {
  vote?: string | null;
  counts?: Record<string, number>;
}

/** The data of each event `on()` accepts, by name. */
export interface ClientEvents {
  // the client's own
  change: ChangeEvent;
  message: GameMessage;
  state: StateChange;
  status: { status: Status };
  error: RoomdError;
  reconnecting: { attempt: number; delayMs: number; code: number };
  token: { session: Session };
  "session:ended": { reason: string; code: number };
  /** After every poll:* event (and a room:state holding a poll), and when this viewer's vote was acknowledged. */
  poll: { event: string; poll: Poll | null };
  // protocol events (the frame's data)
  "room:state": {
    room: Room;
    users: User[];
    state?: Record<string, StateEntry>;
    poll?: PollSnapshot | null;
    /** A viewer's own record (viewers only). */
    you?: Viewer;
  };
  "room:resumed": { since: number; seq: number };
  "user:joined": { user: User };
  "user:connected": { user: User };
  "user:disconnected": { user: User };
  "user:left": { userId: string; reason: string };
  "user:kicked": { userId: string; by: string };
  "room:lock_toggled": { isLocked: boolean };
  /** reason: TRANSFERRED, HOST_LEFT, HOST_KICKED or HOST_DISCONNECTED (absent from older servers). */
  "room:host_updated": { hostId: string; reason?: string };
  "room:closed": { reason: string };
  "game:message": { from: string; type: string; data: any };
  "state:changed": { key: string; value: any; version: number; by: string };
  "state:deleted": { key: string; version: number; by: string };
  /** To the host, at most once a second while the number of connected viewers changes. */
  "audience:count": { count: number };
  "audience:lock_updated": { locked: boolean };
  /** To the viewer the host removed (the socket then closes with 4403). */
  "audience:kicked": { audienceId: string };
  "poll:opened": PollOpened;
  /** To the host (to everyone with publicTallies), at most every 250 ms while the counts change. */
  "poll:tally": { pollId: string; counts: Record<string, number>; votes: number };
  /** counts and votes: the exact final tally, to the host (to everyone with publicTallies). */
  "poll:closed": { pollId: string; counts?: Record<string, number>; votes?: number };
  ack: { id: string | number; seq: number };
  "error:room": { code: string; message: string; id?: string | number; event?: string; version?: number };
}

export declare class RoomdClient {
  constructor(options?: ClientOptions);

  readonly baseUrl: string;
  storage: Storage | null;
  storageKey: string;
  backoff: { baseMs: number; capMs: number };
  /** The membership, or null before createRoom/joinRoom/resume/connect(token) and after the session ended. */
  session: Session | null;
  /** The room of the last room:state, kept up to date by later events. */
  room: Room | null;
  /** The live member list, oldest member first. */
  users: User[];
  /** The state entries this member may read, kept up to date (replaced, never mutated, on each change). */
  state: RoomState;
  /** The highest room sequence number applied; null before the first room:state. */
  seq: number | null;
  status: Status;
  /** The room's open poll, or the last one closed while this client watched; null if none. */
  poll: Poll | null;
  /** A viewer's own record from its room:state; null for members (see `me`). */
  you: Viewer | null;
  /** Connected viewers: from room:state, then audience:count (which only the host receives). */
  audienceCount: number;
  /** "member" or "viewer"; null without a session. */
  readonly role: Role | null;
  /** This member in `users`, or null (always null for a viewer). */
  readonly me: User | null;
  readonly isHost: boolean;

  /** Subscribe; returns a function that unsubscribes. */
  on<K extends keyof ClientEvents>(event: K, handler: (data: ClientEvents[K]) => void): () => void;
  on(event: string, handler: (data: any) => void): () => void;
  off<K extends keyof ClientEvents>(event: K, handler: (data: ClientEvents[K]) => void): void;
  off(event: string, handler: (data: any) => void): void;

  /** Room codes are case-insensitive: "abcd" is "ABCD". */
  static normalizeCode(code: string): string;

  /** Create a room (HTTP); the caller becomes its host. */
  createRoom(displayName: string, options?: CreateRoomOptions): Promise<Session>;
  /** Join a room (HTTP): ROOM_NOT_FOUND, ROOM_LOCKED, ROOM_FULL, INVALID_DISPLAY_NAME... */
  joinRoom(code: string, displayName: string): Promise<Session>;
  /** Watch a room as a viewer (HTTP): ROOM_NOT_FOUND, AUDIENCE_DISABLED, AUDIENCE_LOCKED, AUDIENCE_FULL, INVALID_DISPLAY_NAME... */
  watchRoom(code: string, options?: WatchOptions): Promise<Session>;
  /** The public room object, without joining. */
  getRoom(code: string): Promise<Room>;
  /** Trade the (still valid) token for a fresh one. */
  rejoin(): Promise<Session>;
  /** The session saved by an earlier page, or null. */
  resume(): Session | null;
  /** Drop the session here and in storage, without telling the server. */
  forget(): void;

  /** Open the WebSocket (adopting `token` if given); reconnections ask for the missed events only. */
  connect(token?: string): void;
  /** Close the socket but stay a member; connect() resumes. The room stays open. */
  disconnect(): void;
  /** @deprecated An alias of disconnect(): it never closes the room. Use closeRoom() for that. */
  close(): void;

  /** Leave the room for good. */
  leave(): Promise<Ack>;
  /** Host only: close the room for everyone. */
  closeRoom(): Promise<Ack>;
  /** Host only: lock or unlock the room. */
  toggleLock(): Promise<Ack>;
  /** Host only: remove a member, or a viewer by its audienceId. */
  kick(userId: string): Promise<Ack>;
  /** Host only: hand the host role to another member. */
  transferHost(userId: string): Promise<Ack>;

  /** Send a game message (default to the host). */
  send(type: string, data?: unknown, options?: SendOptions): Promise<Ack>;
  /** Create or change a state entry. */
  setState(key: string, value: unknown, options?: SetStateOptions): Promise<Ack>;
  /** Host only: delete a state entry. */
  deleteState(key: string, options?: DeleteStateOptions): Promise<Ack>;

  /** Host only: open an audience poll (POLL_ALREADY_OPEN while another is open). */
  openPoll(options: OpenPollOptions): Promise<Ack>;
  /** Host only: close the open poll; poll:closed carries the exact final tally. */
  closePoll(pollId: string): Promise<Ack>;
  /** Host only: refuse (true) or admit again (false) new viewers. */
  lockAudience(locked: boolean): Promise<Ack>;
  /** Viewers only: vote in the open poll (POLL_NOT_OPEN, NOT_ALLOWED for members); changeable while open. */
  vote(pollId: string, choice: string): Promise<Ack>;
}

/** The claims of a JWT, decoded but not verified, or null. */
export declare function tokenClaims(token: string): Record<string, any> | null;
/** A new client holding a new room's session (then call connect()). */
export declare function createRoom(baseUrl: string, displayName: string, options?: CreateRoomOptions): Promise<RoomdClient>;
/** A new client holding the session of a joined room (then call connect()). */
export declare function joinRoom(baseUrl: string, code: string, displayName: string): Promise<RoomdClient>;
/** A new client holding a viewer's session of a room (then call connect()). */
export declare function watchRoom(
  baseUrl: string,
  code: string,
  options?: WatchOptions & Pick<ClientOptions, "storage" | "storageKey">,
): Promise<RoomdClient>;
