// A game written in TypeScript against roomd.d.ts: checked by `tsc --noEmit`, never run.
// If the declarations stop describing what a game needs, this stops compiling.
import { RoomdClient, RoomdError, createRoom, joinRoom, tokenClaims, watchRoom } from "../../protocol/client/roomd.js";
import type { Ack, GameMessage, Poll, Role, RoomState, StateChange, StateEntry, User, Viewer } from "../../protocol/client/roomd.js";

interface Prompt {
  id: string;
  text: string;
}

export async function host(baseUrl: string): Promise<RoomdClient> {
  const client = await createRoom(baseUrl, "Screen", { maxUsers: 9, playerMessages: "host", hostMigration: "leave" });
  client.on("room:state", ({ users, state }) => console.log(users.length, Object.keys(state ?? {})));
  client.on("message", ({ from, type, data }: GameMessage<{ ready: boolean }>) => {
    if (type === "ready" && data.ready) console.log(`${from} is ready`);
  });
  client.on("state", (change: StateChange) => {
    if (change.key.startsWith("answer:") && !change.deleted) console.log(change.by, change.value, change.version);
  });
  client.on("change", ({ event, room, users, state }) => render(event, room?.code ?? "", users, state));
  client.on("session:ended", ({ reason, code }) => console.log(reason, code));
  client.connect();

  const players = client.users.filter((u) => u.id !== client.session?.userId);
  for (const player of players) {
    const prompt: Prompt = { id: "r1-p1", text: "The worst pizza topping" };
    await client.setState(`prompt:${player.id}`, prompt, { visibleTo: [player.id] });
    await client.setState(`answer:${player.id}`, null, { visibleTo: [player.id], writableBy: [player.id] });
  }
  const ack: Ack = await client.setState("scores", { [players[0]?.id ?? ""]: 0 }, { ifVersion: 0 });
  console.log(ack.seq, client.seq);
  try {
    await client.send("round", { n: 1 }, { to: "all" });
    await client.send("hint", "psst", { to: players.map((p) => p.id) });
    await client.deleteState("scores", { ifVersion: 3 });
  } catch (err) {
    if (err instanceof RoomdError && err.code === "VERSION_CONFLICT") console.log(err.version, err.event, err.id);
  }
  await client.toggleLock();
  await client.kick("someone");
  await client.transferHost("someone");
  client.disconnect();
  await client.closeRoom();
  return client;
}

export async function phone(baseUrl: string, code: string): Promise<void> {
  const client = await joinRoom(baseUrl, RoomdClient.normalizeCode(code), "Bob");
  const me = client.session!.userId;
  client.on("change", ({ state }) => {
    const prompt: StateEntry<Prompt> | undefined = state[`prompt:${me}`];
    if (prompt) console.log(prompt.value.text, prompt.version);
  });
  client.on("status", ({ status }) => console.log(status === "reconnecting"));
  client.on("reconnecting", ({ attempt, delayMs, code }) => console.log(attempt, delayMs, code));
  client.on("error", (err) => console.log(err.code, err.message));
  client.connect();
  await client.setState(`answer:${me}`, { for: "r1-p1", text: "pineapple" });
  await client.send("ready", { ready: true });
  await client.leave();
}

function render(event: string, code: string, users: User[], state: RoomState): void {
  const you: User | null = new RoomdClient({ storage: null }).me;
  console.log(event, code, users.map((u) => `${u.displayName}${u.isConnected ? "" : " (offline)"}`), you, state);
}

// The audience: a host running polls, a viewer voting.
export async function audienceHost(baseUrl: string): Promise<void> {
  const client = await createRoom(baseUrl, "Screen", { audience: true });
  client.on("audience:count", ({ count }) => console.log(count, client.audienceCount, client.room?.audienceCount));
  client.on("poll:tally", ({ pollId, counts, votes }) => console.log(pollId, counts["A"] ?? 0, votes));
  client.on("poll:closed", ({ pollId, counts }) => console.log(pollId, counts ? Object.entries(counts) : "private"));
  client.on("audience:lock_updated", ({ locked }) => console.log(locked, client.room?.audienceLocked));
  client.connect();
  await client.setState("stage", { round: 1 }, { visibleTo: "audience" });
  await client.send("confetti", null, { to: "audience" });
  await client.openPoll({ pollId: "r1", choices: ["A", "B"], prompt: "Funniest?", publicTallies: false });
  const closed: Ack = await client.closePoll("r1");
  const final: Poll | null = client.poll;
  console.log(closed.seq, final?.open, final?.counts?.["B"], final?.votes);
  await client.lockAudience(true);
  await client.kick("audience-id");
}

export async function viewer(baseUrl: string, code: string): Promise<Role | null> {
  const client = await watchRoom(baseUrl, code, { displayName: "Zoe", storageKey: "mygame.viewer" });
  const other = new RoomdClient({ storage: null });
  await other.watchRoom(code);
  client.on("poll", ({ event, poll }) => console.log(event, poll?.choices.join(), poll?.vote));
  client.on("change", ({ state, poll }) => console.log(state["stage"]?.value, poll?.open));
  client.on("room:state", ({ you, poll }) => console.log(you?.audienceId, poll?.vote));
  client.on("audience:kicked", ({ audienceId }) => console.log(audienceId));
  client.connect();
  const you: Viewer | null = client.you;
  console.log(you?.displayName, client.me === null, client.session?.role);
  const open = client.poll;
  if (open?.open) await client.vote(open.pollId, open.choices[0] ?? "A");
  return client.role;
}

export const claims: Record<string, any> | null = tokenClaims("a.b.c");
export const resumed = new RoomdClient({ backoff: { baseMs: 100 } }).resume()?.refreshAt;
