"""roomctl: inspect and manage roomd rooms directly in Redis.

Actions call the very same domain operations as roomd's WebSocket handler
(an admin close is the host's close script with reason ADMIN_CLOSED), and
their events go out on the same pub/sub channels, so connected players see
them live on every roomd instance.

Exit codes: 0 success, 1 room or user not found (or a refused confirmation),
2 usage error, 3 Redis unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit, urlunsplit

import click
from redis.exceptions import RedisError
from rich.markup import escape

from roomctl.connection import Backend, connect, resolve_redis_url
from roomctl.output import Output, duration, now_ms
from roomd import config
from roomd.domain.errors import DomainError, StoreUnavailable
from roomd.domain.overview import describe, public_member
from roomd.domain.store import channel, iso

T = TypeVar("T")
NOT_FOUND, UNREACHABLE = 1, 3


class Failure(Exception):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Ctl:
    def __init__(self, redis_url: str | None, as_json: bool) -> None:
        self.url = resolve_redis_url(redis_url)
        self.out = Output(as_json)

    def run(self, action: Callable[[Backend], Awaitable[T]], subject: str = "") -> T:
        """Run one async action against Redis, mapping failures to exit codes and one-line messages."""

        async def go() -> T:
            backend = connect(self.url)
            try:
                return await action(backend)
            finally:
                await backend.close()

        try:
            return asyncio.run(go())
        except Failure as exc:
            self.fail(str(exc), exc.exit_code)
        except DomainError as exc:  # ROOM_NOT_FOUND or MEMBER_NOT_FOUND from a domain operation
            self.fail(f"{subject}: {exc.message}" if subject else exc.message, NOT_FOUND)
        except (StoreUnavailable, RedisError, OSError) as exc:
            self.fail(f"cannot reach Redis at {_redacted(self.url)} ({_reason(exc)})", UNREACHABLE)

    def fail(self, message: str, code: int) -> NoReturn:
        self.out.error(message)
        sys.exit(code)


def _reason(exc: BaseException) -> str:
    while exc.__cause__ is not None and str(exc) in ("", "Redis did not answer in time"):
        exc = exc.__cause__
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _code(raw: str) -> str:
    return raw.strip().upper()


pass_ctl = click.make_pass_decorator(Ctl)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--redis-url", envvar="ROOMCTL_REDIS_URL", help="Redis URL (default: REDIS_URL / REDIS_HOST as roomd).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output (documented, stable shapes).")
@click.option("--env-file", default=".env", show_default=True, help="Optional dotenv file, as for roomd.")
@click.version_option(package_name="roomd", prog_name="roomctl")
@click.pass_context
def cli(ctx: click.Context, redis_url: str | None, as_json: bool, env_file: str) -> None:
    """Inspect and manage roomd rooms directly in Redis; connected players see the effects live.

    \b
    Examples:
      roomctl rooms list --limit 20
      roomctl --json rooms show KXQD
      roomctl rooms close KXQD --yes
      roomctl users kick KXQD 3fZ... --yes
      roomctl events KXQD
    """
    config.load_dotenv_file(env_file)
    ctx.obj = Ctl(redis_url, as_json)


# -- rooms --------------------------------------------------------------------


@cli.group()
def rooms() -> None:
    """List, inspect, close, lock and unlock rooms."""


@rooms.command("list")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000), help="Rooms per page.")
@click.option("--cursor", default=0, type=click.IntRange(0), help="Start of the page (from the previous nextCursor).")
@pass_ctl
def rooms_list(ctl: Ctl, limit: int, cursor: int) -> None:
    """Rooms, newest first, a page at a time.

    \b
    Examples:
      roomctl rooms list
      roomctl rooms list --limit 100 --cursor 100
      roomctl --json rooms list | jq '.rooms[].code'
    """
    page = ctl.run(lambda b: b.overview.list_rooms(limit, cursor))
    now = now_ms()
    if ctl.out.as_json:
        ctl.out.data({"rooms": [describe(r) for r in page.rooms], "nextCursor": page.next_cursor})
        return
    rows = [
        (
            r.room["code"],
            (r.host or {}).get("displayName", "-"),
            f"{r.connected}/{len(r.members)}/{r.room['maxUsers']}",
            "yes" if r.room["isLocked"] else "no",
            r.room.get("state", "open"),
            duration(now - r.room["createdAt"]),
            duration(r.room.get("expiresAt", now) - now),
        )
        for r in page.rooms
    ]
    ctl.out.table(
        "Rooms (newest first)", ["CODE", "HOST", "MEMBERS c/t/max", "LOCKED", "STATE", "AGE", "EXPIRES IN"], rows
    )
    if page.next_cursor is not None and not ctl.out.as_json:
        ctl.out.errors.print(f"more: roomctl rooms list --limit {limit} --cursor {page.next_cursor}")


@rooms.command("show")
@click.argument("code")
@pass_ctl
def rooms_show(ctl: Ctl, code: str) -> None:
    """A room's details and its members.

    \b
    Example:
      roomctl rooms show kxqd
    """
    code = _code(code)

    async def show(b: Backend) -> Any:
        summary = await b.overview.room(code)
        if summary is None:
            raise Failure(f"room {code} not found", NOT_FOUND)
        return summary

    summary = ctl.run(show)
    room = describe(summary)
    members = [public_member(m, summary.room["hostId"]) for m in summary.members]
    if ctl.out.as_json:
        ctl.out.data({"room": room, "members": [{**m, "joinedAt": iso(m["joinedAt"])} for m in members]})
        return
    ctl.out.fields(
        [
            ("code", room["code"]),
            ("host", f"{room['hostName']} ({room['hostId']})"),
            ("members", f"{room['connectedCount']} connected / {room['memberCount']} / max {room['maxUsers']}"),
            ("locked", "yes" if room["isLocked"] else "no"),
            ("state", room["state"]),
            ("created", room["createdAt"]),
            ("updated", room["updatedAt"]),
            ("expires", room["expiresAt"]),
        ]
    )
    rows = [
        (m["id"], m["displayName"], "yes" if m["isConnected"] else "no", "★" if m["isHost"] else "") for m in members
    ]
    ctl.out.table("Members (oldest first)", ["ID", "DISPLAY NAME", "CONNECTED", "HOST"], rows)


@rooms.command("close")
@click.argument("code")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_ctl
def rooms_close(ctl: Ctl, code: str, yes: bool) -> None:
    """Close a room: members get room:closed {reason: ADMIN_CLOSED} and 4410; every key and token dies.

    \b
    Example:
      roomctl rooms close KXQD --yes
    """
    code = _code(code)
    if not yes and not click.confirm(f"Close room {code} and disconnect everyone?", err=True):
        ctl.fail("not confirmed", NOT_FOUND)
    ctl.run(lambda b: b.store.close_room(code, None), f"room {code}")
    if ctl.out.as_json:
        ctl.out.data({"closed": code})
    else:
        ctl.out.success(f"room {code} closed")


def _set_lock(ctl: Ctl, code: str, wanted: str) -> None:
    code = _code(code)
    locked = ctl.run(lambda b: b.store.set_lock(code, None, wanted), f"room {code}")
    if ctl.out.as_json:
        ctl.out.data({"code": code, "isLocked": locked})
    else:
        ctl.out.success(f"room {code} is {'locked' if locked else 'unlocked'}")


@rooms.command("lock")
@click.argument("code")
@pass_ctl
def rooms_lock(ctl: Ctl, code: str) -> None:
    """Lock a room (no more joins); members get room:lock_toggled.

    \b
    Example:
      roomctl rooms lock KXQD
    """
    _set_lock(ctl, code, "lock")


@rooms.command("unlock")
@click.argument("code")
@pass_ctl
def rooms_unlock(ctl: Ctl, code: str) -> None:
    """Unlock a room; members get room:lock_toggled.

    \b
    Example:
      roomctl rooms unlock KXQD
    """
    _set_lock(ctl, code, "unlock")


# -- users --------------------------------------------------------------------


@cli.group()
def users() -> None:
    """Inspect and kick users."""


@users.command("kick")
@click.argument("code")
@click.argument("user_id")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_ctl
def users_kick(ctl: Ctl, code: str, user_id: str, yes: bool) -> None:
    """Kick a user, exactly as a host would (user:kicked, close 4403, host handed over if needed).

    \b
    Example:
      roomctl users kick KXQD Zq3xY... --yes
    """
    code = _code(code)
    if not yes and not click.confirm(f"Kick user {user_id} from room {code}?", err=True):
        ctl.fail("not confirmed", NOT_FOUND)
    result = ctl.run(lambda b: b.store.kick(code, None, user_id), f"room {code}, user {user_id}")
    if ctl.out.as_json:
        ctl.out.data(
            {"kicked": user_id, "roomCode": code, "newHostId": result.new_host_id, "roomDeleted": result.room_deleted}
        )
        return
    message = f"user {user_id} kicked from {code}"
    if result.new_host_id:
        message += f"; new host {result.new_host_id}"
    if result.room_deleted:
        message += "; the room was empty and is gone"
    ctl.out.success(message)


@users.command("show")
@click.argument("user_id")
@pass_ctl
def users_show(ctl: Ctl, user_id: str) -> None:
    """A user: name, room, presence.

    \b
    Example:
      roomctl users show Zq3xY...
    """

    async def show(b: Backend) -> tuple[dict[str, Any], dict[str, Any] | None]:
        user = await b.store.get_user(user_id)
        if user is None:
            raise Failure(f"user {user_id} not found", NOT_FOUND)
        summary = await b.overview.room(user["roomCode"])
        return user, (summary.room if summary else None)

    user, room = ctl.run(show)
    view = public_member(user, room["hostId"] if room else "")
    view = {**view, "roomCode": user["roomCode"], "joinedAt": iso(user.get("joinedAt"))}
    if ctl.out.as_json:
        ctl.out.data({"user": view})
        return
    ctl.out.fields(
        [
            ("id", view["id"]),
            ("display name", view["displayName"]),
            ("room", view["roomCode"]),
            ("connected", "yes" if view["isConnected"] else "no"),
            ("host", "yes" if view["isHost"] else "no"),
            ("joined", view["joinedAt"]),
        ]
    )


# -- stats and events -----------------------------------------------------------


@cli.command()
@pass_ctl
def stats(ctl: Ctl) -> None:
    """Rooms, members, connected members, and roomd instances seen (heartbeat < 15 s).

    \b
    Example:
      roomctl stats
    """
    result = ctl.run(lambda b: b.overview.stats())
    now = now_ms()
    instances = [{"id": i, "lastSeen": iso(seen)} for i, seen in result.instances]
    if ctl.out.as_json:
        ctl.out.data({"rooms": result.rooms, "members": result.members, "connectedMembers": result.connected,
                      "instances": instances})  # fmt: skip
        return
    ctl.out.fields(
        [
            ("rooms", result.rooms),
            ("members", result.members),
            ("connected", result.connected),
            ("instances", len(result.instances)),
        ]
    )
    if result.instances:
        rows = [(i, f"{duration(now - seen)} ago") for i, seen in result.instances]
        ctl.out.table("roomd instances", ["INSTANCE (host:pid:port)", "LAST HEARTBEAT"], rows)


@cli.command()
@click.argument("code")
@click.option("--count", type=click.IntRange(1), default=None, help="Stop after this many events.")
@pass_ctl
def events(ctl: Ctl, code: str, count: int | None) -> None:
    """Follow a room's live events (what its members receive) until Ctrl-C or the room closes.

    \b
    Examples:
      roomctl events KXQD
      roomctl --json events KXQD | jq .event
    """
    code = _code(code)

    async def follow(b: Backend) -> None:
        if await b.overview.room(code) is None:
            raise Failure(f"room {code} not found", NOT_FOUND)
        pubsub = b.client.pubsub()
        await pubsub.subscribe(channel(code))
        if not ctl.out.as_json:
            ctl.out.errors.print(f"following room {code} (Ctrl-C to stop)")
        seen = 0
        try:
            while count is None or seen < count:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                if message is None or message["type"] != "message":
                    continue
                frame = json.loads(message["data"].partition(b"\n")[2])
                seen += 1
                _print_event(ctl.out, frame)
                if frame["event"] == "room:closed":
                    break
        finally:
            await pubsub.aclose()

    with contextlib.suppress(KeyboardInterrupt):
        ctl.run(follow)


def _print_event(out: Output, frame: dict[str, Any]) -> None:
    if out.as_json:
        out.data({"ts": iso(now_ms()), **frame})
        return
    stamp = iso(now_ms())
    data = json.dumps(frame.get("data", {}), ensure_ascii=False)
    if out.terminal:
        out.console.print(f"[dim]{stamp}[/dim] [bold cyan]{escape(frame['event'])}[/bold cyan] {escape(data)}")
    else:
        sys.stdout.write(f"{stamp}\t{frame['event']}\t{data}\n")
        sys.stdout.flush()


def main() -> None:
    cli(prog_name="roomctl")
