"""The JavaScript client as a game developer uses it, on a plain page (not the lobby)."""

from __future__ import annotations

import asyncio

from playwright.async_api import Browser

from tests.browser.pages import open_page
from tests.support.clients import Api
from tests.support.processes import RoomdProcess

GAME_PAGE_SCRIPT = """async ([base, token]) => {
  const { RoomdClient, joinRoom } = await import("/client/roomd.js");
  const once = (client, event) => new Promise((resolve) => client.on(event, resolve));
  const host = new RoomdClient({ storage: null });     // a game screen that keeps nothing
  const ready = once(host, "room:state");
  host.connect(token);                                 // a token handed out elsewhere
  await ready;
  const arrived = once(host, "user:connected");
  const player = await joinRoom(base, host.session.roomCode.toLowerCase(), "Bob");
  player.connect();
  const { user } = await arrived;
  const reported = once(host, "error");
  const error = await host.kick(host.session.userId).catch((err) => err);  // rejects with the code
  const event = await reported;                        // and every error:room is also an "error"
  const ended = once(player, "session:ended");
  const kicked = await host.kick(user.id);             // resolves on the ack
  const end = await ended;
  while (host.users.length > 1) await once(host, "change");
  return {
    joined: user.displayName, error: [error.code, error.event, event.id === error.id], end,
    acked: kicked.seq > 0 && kicked.seq <= host.seq,
    users: host.users.map((u) => u.displayName), isHost: host.isHost, playerStatus: player.status,
  };
}"""


async def test_the_client_api_on_a_game_page(browser: Browser, roomd: RoomdProcess, api: Api) -> None:
    """What a game developer writes: connect(token), joinRoom(baseUrl, ...), events, host actions."""
    membership = await api.create("Screen")
    page = await open_page(browser, roomd.http)
    result = await asyncio.wait_for(page.evaluate(GAME_PAGE_SCRIPT, [roomd.http, membership["token"]]), 15)
    assert result == {
        "joined": "Bob",
        "error": ["CANNOT_KICK_SELF", "room:kick", True],  # error:room echoes the frame's id and event
        "end": {"reason": "KICKED", "code": 4403},
        "acked": True,
        "users": ["Screen"],
        "isHost": True,
        "playerStatus": "ended",
    }


async def test_client_module_is_served(browser: Browser, roomd: RoomdProcess) -> None:
    page = await open_page(browser, roomd.http)
    response = await page.request.get(roomd.http + "/client/roomd.js")
    assert response.ok and "javascript" in response.headers["content-type"]
    assert "export class RoomdClient" in await response.text()
    declarations = await page.request.get(roomd.http + "/client/roomd.d.ts")  # served beside the module
    assert declarations.ok and "export declare class RoomdClient" in await declarations.text()
    assert declarations.headers["content-type"].startswith("application/typescript")


GAME_API_SCRIPT = """async ([base]) => {
  const { createRoom, joinRoom } = await import("/client/roomd.js");
  const until = (client, test) => new Promise((resolve) => {
    if (test()) return resolve();
    const off = client.on("change", () => { if (test()) { off(); resolve(); } });
  });
  const failure = (promise) => promise.then(() => "resolved", (err) => [err.name, err.code, err.event]);
  const out = {};
  const host = await createRoom(base, "Screen", { maxUsers: 5 });
  host.storage = null;
  const p1 = await joinRoom(base, host.session.roomCode, "Ana");
  const p2 = await joinRoom(base, host.session.roomCode, "Bob");
  for (const c of [host, p1, p2]) c.connect();
  await Promise.all([host, p1, p2].map((c) => until(c, () => c.status === "open" && c.users.length === 3)));
  const [me1, me2] = [p1.session.userId, p2.session.userId];

  // Shared state: public, private to one member, and a slot one member may write.
  const messages = { host: [], p1: [], p2: [] };
  host.on("message", (m) => messages.host.push(m));
  p1.on("message", (m) => messages.p1.push(m));
  p2.on("message", (m) => messages.p2.push(m));
  const changes = [];
  host.on("state", (c) => changes.push(c));
  const ack = await host.setState("pub", { n: 1 });
  out.ack = typeof ack.seq === "number";
  await host.setState(`secret:${me1}`, "for Ana", { visibleTo: [me1] });
  await host.setState(`slot:${me1}`, null, { visibleTo: [me1], writableBy: [me1] });
  await host.setState("marker", 1);
  await Promise.all([p1, p2].map((c) => until(c, () => "marker" in c.state)));
  out.p1Keys = Object.keys(p1.state).sort();
  out.p2Keys = Object.keys(p2.state).sort();
  await p1.setState(`slot:${me1}`, "my answer");
  out.ownChangeBeforeAck = p1.state[`slot:${me1}`]?.value === "my answer";  // the ack comes after it
  await until(host, () => host.state[`slot:${me1}`]?.value === "my answer");
  out.slotChange = changes.filter((c) => c.key === `slot:${me1}`).map((c) => [c.by === me1, c.deleted]);
  out.notWritable = await failure(p2.setState(`slot:${me1}`, "mine now"));
  out.rulesAreTheHosts = await failure(p1.setState(`slot:${me1}`, "x", { visibleTo: "all" }));
  const conflict = await host.setState("pub", { n: 2 }, { ifVersion: 99 }).catch((err) => err);
  out.conflict = [conflict.code, conflict.version === host.state.pub.version && conflict.version > 0];
  out.mustNotExist = await failure(host.setState("pub", 0, { ifVersion: 0 }));
  out.playersCannotDelete = await failure(p1.deleteState("pub"));

  // Game messages: players talk to the host; the host to anyone.
  await p1.send("hello", { a: 1 });
  out.playerToAll = await failure(p1.send("shout", 1, { to: "all" }));
  await host.send("round", 2, { to: "all" });
  await until(p2, () => messages.p2.length === 1);
  await until(host, () => messages.host.length === 2);
  out.hostGot = messages.host.map(({ from, type, data }) => [from === me1 || from === host.session.userId, type, data]);
  out.p2Got = messages.p2.map(({ type, data }) => [type, data]);
  out.unknownMember = await failure(host.send("x", 1, { to: ["nobody"] }));

  // Recovery: Bob drops, misses a message, a change and a deletion, and comes back with ?since=.
  p2.disconnect();
  out.offline = await failure(p2.send("x"));
  await host.send("missed", "while away", { to: "all" });
  await host.setState("pub", { n: 3 });
  await host.deleteState("marker");
  await host.setState(`secret:${me1}`, "still for Ana");
  const resumed = new Promise((resolve) => p2.on("room:resumed", resolve));
  p2.connect();
  const { since, seq } = await resumed;
  await until(p2, () => p2.state.pub?.value.n === 3 && !("marker" in p2.state));
  await until(p1, () => p1.state.pub?.value.n === 3 && !("marker" in p1.state));
  out.resumed = typeof since === "number" && seq >= since;
  out.p2After = [Object.keys(p2.state).sort(), messages.p2.map((m) => m.type)];
  out.sameAsStayer = JSON.stringify(p2.state.pub) === JSON.stringify(p1.state.pub);

  // close() is not closeRoom(): it only disconnects (deprecated alias of disconnect()).
  p2.close();
  out.roomAfterClose = (await host.getRoom(host.session.roomCode)).code === host.session.roomCode;
  out.notHost = await failure(p1.closeRoom());
  const ended = [p1, host].map((c) => new Promise((resolve) => c.on("session:ended", resolve)));
  const closed = await host.closeRoom();
  out.closed = [typeof closed.seq, ...(await Promise.all(ended)).map((e) => e.reason)];
  return out;
}"""


async def test_game_api_state_messages_acks_and_recovery(browser: Browser, roomd: RoomdProcess) -> None:
    """send / setState / deleteState settle on acks, visibility holds, recovery with ?since= is exact."""
    page = await open_page(browser, roomd.http)
    out = await asyncio.wait_for(page.evaluate(GAME_API_SCRIPT, [roomd.http]), 30)
    me1 = "secret:"  # keys are checked by prefix: user ids are random
    assert out.pop("ack") is True
    assert out.pop("p1Keys")[:2] == ["marker", "pub"] and out.pop("p2Keys") == ["marker", "pub"]
    assert out.pop("slotChange") == [[False, False], [True, False]]  # created by the host, then written by Ana
    assert out.pop("hostGot") == [[True, "hello", {"a": 1}], [True, "round", 2]]
    p2_keys, p2_messages = out.pop("p2After")
    assert p2_keys == ["pub"] and not any(k.startswith(me1) for k in p2_keys)
    assert p2_messages == ["round", "missed"]  # the missed message replayed, once
    assert out == {
        "ownChangeBeforeAck": True,
        "notWritable": ["RoomdError", "NOT_ALLOWED", "state:set"],
        "rulesAreTheHosts": ["RoomdError", "NOT_ALLOWED", "state:set"],
        "conflict": ["VERSION_CONFLICT", True],  # with the entry's current version
        "mustNotExist": ["RoomdError", "VERSION_CONFLICT", "state:set"],
        "playersCannotDelete": ["RoomdError", "NOT_ALLOWED", "state:delete"],
        "playerToAll": ["RoomdError", "NOT_ALLOWED", "game:send"],
        "p2Got": [["round", 2]],
        "unknownMember": ["RoomdError", "MEMBER_NOT_FOUND", "game:send"],
        "offline": ["RoomdError", "NOT_CONNECTED", "game:send"],
        "resumed": True,
        "sameAsStayer": True,
        "roomAfterClose": True,
        "notHost": ["RoomdError", "NOT_HOST", "room:close"],
        "closed": ["number", "HOST_CLOSED", "HOST_CLOSED"],
    }


VIEWER_SCRIPT = """async ([base]) => {
  const { createRoom, watchRoom, RoomdClient } = await import("/client/roomd.js");
  // Each wait fails after 5 s naming what it waited for (a failure says where it stopped).
  const timed = (what, start) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`waited 5 s for ${what}`)), 5000);
    start((value) => { clearTimeout(timer); resolve(value); });
  });
  const once = (client, event) => timed(event, (done) => client.on(event, done));
  const until = (client, test) => timed(test.toString(), (done) => {
    if (test()) return done();
    const off = client.on("change", () => { if (test()) { off(); done(); } });
  });
  const failure = (promise) => promise.then(() => "resolved", (err) => err.code);
  const out = {};
  const host = await createRoom(base, "Screen", { audience: true });
  host.storage = null;
  host.connect();
  await until(host, () => host.status === "open");
  const code = host.session.roomCode;
  out.room = [host.room.audience, host.room.audienceLocked, host.audienceCount];
  out.noName = await failure(watchRoom(base, code, { displayName: " ", storage: null }));

  const storage = { data: {}, getItem(k) { return this.data[k] ?? null; }, setItem(k, v) { this.data[k] = v; },
    removeItem(k) { delete this.data[k]; } };  // a page's sessionStorage, to resume from
  const viewer = await watchRoom(base, code.toLowerCase(), { displayName: "Zoe", storage, storageKey: "v" });
  viewer.connect();
  await until(viewer, () => viewer.status === "open");
  out.viewer = [viewer.role, viewer.you, viewer.me, viewer.isHost, viewer.users.map((u) => u.displayName)];
  out.sameId = viewer.you.audienceId === viewer.session.userId;
  await until(host, () => host.audienceCount === 1);  // audience:count, to the host

  // What a viewer reads and receives: entries visible to "audience", game:send {to: "audience"}.
  const messages = [];
  viewer.on("message", (m) => messages.push(m.type));
  await host.setState("members", 1);                                  // "all": members only
  await host.setState("stage", { n: 1 }, { visibleTo: "audience" }); // every member and viewer
  await host.send("confetti", 1, { to: "audience" });
  await until(viewer, () => "stage" in viewer.state && messages.length === 1);
  out.keys = Object.keys(viewer.state);
  out.messages = messages;
  out.notAllowed = [
    await failure(viewer.setState("stage", 2)), await failure(viewer.send("hi")), await failure(viewer.kick("x")),
  ];

  // A poll: viewers vote (and change their vote), the host sees tallies and the exact count.
  out.memberVote = await failure(host.vote("p1", "A"));
  await host.openPoll({ pollId: "p1", choices: ["A", "B"], prompt: "Which?" });
  await until(viewer, () => viewer.poll?.open);
  out.opened = [viewer.poll.pollId, viewer.poll.choices, viewer.poll.prompt, viewer.poll.vote];
  out.again = await failure(host.openPoll({ pollId: "p2", choices: ["A", "B"] }));
  await viewer.vote("p1", "A");
  await viewer.vote("p1", "B");
  out.voted = viewer.poll.vote;
  out.wrongPoll = await failure(viewer.vote("p0", "A"));
  await until(host, () => host.poll?.votes === 1 && host.poll.counts.B === 1);  // poll:tally
  const seen = once(viewer, "poll:closed");
  await host.closePoll("p1");
  out.final = [host.poll.open, host.poll.counts, host.poll.votes];
  out.viewerClosed = [await seen, viewer.poll.open, viewer.poll.counts];
  out.closedVote = await failure(viewer.vote("p1", "A"));

  // A reloaded viewer page resumes the same admission.
  const again = new RoomdClient({ storage, storageKey: "v" });
  out.resumed = [again.resume()?.userId === viewer.session.userId, again.role];
  out.url = viewer._socket.url.includes("room=" + code);
  const traded = await viewer.rejoin();  // a viewer's token refresh: same viewer, still a viewer
  out.rejoined = [traded.userId === viewer.you.audienceId, traded.role];

  // Host controls: lock the audience, kick a viewer.
  await host.lockAudience(true);
  await until(host, () => host.room.audienceLocked === true);  // audience:lock_updated, to members
  out.locked = await failure(watchRoom(base, code, { storage: null }));
  const ended = once(viewer, "session:ended");
  const kicked = once(viewer, "audience:kicked");
  await host.kick(viewer.session.userId);
  out.kicked = [(await kicked).audienceId === viewer.you.audienceId, await ended];
  await until(host, () => host.audienceCount === 0);
  await host.closeRoom();
  return out;
}"""


async def test_the_viewer_api(browser: Browser, roomd: RoomdProcess) -> None:
    """watchRoom, role/you/poll, what a viewer reads and may do, polls from both sides, lock, kick."""
    page = await open_page(browser, roomd.http)
    out = await asyncio.wait_for(page.evaluate(VIEWER_SCRIPT, [roomd.http]), 30)
    role, you, me, is_host, users = out.pop("viewer")
    assert (role, you["displayName"], you["role"], me, is_host) == ("viewer", "Zoe", "viewer", None, False)
    assert users == ["Screen"]  # viewers are not members
    still_open, counts, votes = out.pop("final")
    assert (still_open, {c: n for c, n in counts.items() if n}, votes) == (False, {"B": 1}, 1)  # exact, changed vote
    assert out == {
        "room": [True, False, 0],
        "noName": "INVALID_DISPLAY_NAME",
        "sameId": True,
        "keys": ["stage"],
        "messages": ["confetti"],
        "notAllowed": ["NOT_ALLOWED", "NOT_ALLOWED", "NOT_ALLOWED"],
        "memberVote": "NOT_ALLOWED",
        "opened": ["p1", ["A", "B"], "Which?", None],
        "again": "POLL_ALREADY_OPEN",
        "voted": "B",
        "wrongPoll": "POLL_NOT_OPEN",
        "viewerClosed": [{"pollId": "p1"}, False, None],  # counts go to the host only (not public)
        "closedVote": "POLL_NOT_OPEN",
        "resumed": [True, "viewer"],
        "url": True,
        "rejoined": [True, "viewer"],
        "locked": "AUDIENCE_LOCKED",
        "kicked": [True, {"reason": "KICKED", "code": 4403}],
    }
