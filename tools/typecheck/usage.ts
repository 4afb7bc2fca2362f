// A game written in TypeScript against roomd.d.ts: checked by `tsc --noEmit`, never run.
// If the declarations stop describing what a game needs, this stops compiling.
import { RoomdClient, RoomdError, createRoom, joinRoom, tokenClaims } from "../../protocol/client/roomd.js";
import type { Ack, GameMessage, RoomState, StateChange, StateEntry, User } from "../../protocol/client/roomd.js";

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

export const claims: Record<string, any> | null = tokenClaims("a.b.c");
export const resumed = new RoomdClient({ backoff: { baseMs: 100 } }).resume()?.refreshAt;
