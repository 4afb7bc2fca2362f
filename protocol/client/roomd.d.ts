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
}

/** The membership this client holds (kept in sessionStorage between page loads). */
export interface Session {
  roomCode: string;
  token: string;
  userId: string;
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

/** Recipients of a game message: "host", "all" (the sender included), "others", or user ids. */
export type Recipients = "host" | "all" | "others" | string[];
/** Who may read an entry besides the host, who always may. */
export type Visibility = "all" | "host" | string[];
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
  /** The protocol event that caused the change. */
  event: string;
  room: Room | null;
  users: User[];
  state: RoomState;
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
  // protocol events (the frame's data)
  "room:state": { room: Room; users: User[]; state?: Record<string, StateEntry> };
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
  /** This member in `users`, or null. */
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
  /** Host only: remove a member. */
  kick(userId: string): Promise<Ack>;
  /** Host only: hand the host role to another member. */
  transferHost(userId: string): Promise<Ack>;

  /** Send a game message (default to the host). */
  send(type: string, data?: unknown, options?: SendOptions): Promise<Ack>;
  /** Create or change a state entry. */
  setState(key: string, value: unknown, options?: SetStateOptions): Promise<Ack>;
  /** Host only: delete a state entry. */
  deleteState(key: string, options?: DeleteStateOptions): Promise<Ack>;
}

/** The claims of a JWT, decoded but not verified, or null. */
export declare function tokenClaims(token: string): Record<string, any> | null;
/** A new client holding a new room's session (then call connect()). */
export declare function createRoom(baseUrl: string, displayName: string, options?: CreateRoomOptions): Promise<RoomdClient>;
/** A new client holding the session of a joined room (then call connect()). */
export declare function joinRoom(baseUrl: string, code: string, displayName: string): Promise<RoomdClient>;
