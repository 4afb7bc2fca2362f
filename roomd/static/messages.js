// What the lobby tells people, by protocol error code (protocol/codes.json) and by the
// reason a session ended. Kept apart from the page logic so a test can check that every
// code of the protocol has a human message.

/** A message for every error code of protocol/codes.json, plus the client's own. */
export const ERRORS = {
  INVALID_BODY: "Something in the form is not right. Check it and try again.",
  INVALID_DISPLAY_NAME: "Please choose another name: not empty, not too long, and no special characters.",
  ROOM_LOCKED: "This room is locked: nobody can join right now. Ask the host to unlock it.",
  ROOM_FULL: "This room is full. Ask the host to make space, or start a new room.",
  UNAUTHORIZED: "Your session is no longer valid. Join the room again.",
  ROOM_NOT_FOUND: "No room has this code. Check it and try again.",
  MEMBER_NOT_FOUND: "That player is no longer in the room.",
  NOT_FOUND: "The server does not know this address. Is this a roomd server?",
  METHOD_NOT_ALLOWED: "The server refused this request. Reload the page and try again.",
  PAYLOAD_TOO_LARGE: "That is too long. Use a shorter name.",
  RATE_LIMITED: "Too many attempts. Wait a moment and try again.",
  UPGRADE_REQUIRED: "The server expected a live connection. Reload the page and try again.",
  ORIGIN_NOT_ALLOWED: "This page is not allowed to connect to the server.",
  INTERNAL_ERROR: "Something went wrong on the server. Try again.",
  ROOM_CODE_GENERATION_FAILED: "No free room code right now. Try again in a moment.",
  REDIS_UNAVAILABLE: "The server is having trouble. Try again shortly.",
  BUSY: "The server is busy with your earlier actions. Try again in a moment.",
  INVALID_MESSAGE: "The server did not understand that. Reload the page and try again.",
  UNKNOWN_EVENT: "The server does not support that action. Reload the page to update it.",
  NOT_HOST: "Only the host can do that.",
  CANNOT_KICK_SELF: "You cannot remove yourself. Use Leave or Close room instead.",
  ALREADY_HOST: "That player is already the host.",
  UNKNOWN_ERROR: "Something unexpected went wrong. Try again.",
  NOT_ALLOWED: "You are not allowed to do that in this room.",
  MESSAGE_TOO_LARGE: "That is too long to send.",
  VERSION_CONFLICT: "Someone changed this at the same time. Try again.",
  STATE_TOO_LARGE: "This room holds too much game data to save more.",
  AUDIENCE_DISABLED: "This room does not take an audience: only its players can join.",
  AUDIENCE_LOCKED: "The host is not letting more viewers in right now.",
  AUDIENCE_FULL: "The audience of this room is full.",
  POLL_ALREADY_OPEN: "Another vote is still open. Close it first.",
  POLL_NOT_OPEN: "This vote is closed.",
  // The client's own codes
  NETWORK_ERROR: "The server cannot be reached. Check your connection.",
  NOT_CONNECTED: "Not connected yet. Try again in a moment.",
  CONNECTION_LOST: "The connection dropped before the server answered. Check, then try again.",
  HTTP_ERROR: "The server answered with an error. Try again.",
  NO_SESSION: "You are not in a room.",
};

/** Title and text for each reason of "session:ended" (client reasons and room:closed reasons). */
export const ENDED = {
  LEFT: ["You left", "You left the room."],
  KICKED: ["Removed from the room", "The host removed you from the room."],
  REPLACED: ["Opened elsewhere", "This room was opened in another tab or on another device."],
  HOST_CLOSED: ["Room closed", "The host closed the room."],
  ADMIN_CLOSED: ["Room closed", "The room was closed by an administrator."],
  EXPIRED: ["Room expired", "The room expired after a long time without activity."],
  CLOSED: ["Room closed", "The room was closed."],
  NOT_FOUND: ["Room gone", "This room no longer exists, or you are no longer in it."],
  UNAUTHORIZED: ["Session expired", "Your session is no longer valid. Join the room again."],
};

/** The human message for an error (a RoomdError or anything thrown). */
export function explain(err) {
  return ERRORS[err?.code] || err?.message || String(err);
}
