"""What every roomctl command shares: options, argument types, one async run against Redis, exit codes.

Every failure ends as one readable line on stderr and a documented exit code,
never a traceback: 0 success, 1 room or user not found (or a refused
confirmation), 2 usage or configuration error, 3 Redis unreachable or failing,
4 the output could not be written; a reader that closed the pipe ends roomctl
with SIGPIPE, as it ends ``cat``.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn, TypeVar

import click
from click.shell_completion import CompletionItem
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from roomctl.connection import Backend, connect, read_environment, resolve_target, room_settings
from roomctl.output import Output, guarded, write_line
from roomd import config
from roomd.domain.errors import DomainError, StoreUnavailable
from roomd.domain.overview import RoomSummary
from roomd.protocol import ErrorCode

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
OK, NOT_FOUND, USAGE, UNREACHABLE = 0, 1, 2, 3
USER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
SPAN = re.compile(r"(?:\d+[smhd])+")
SPAN_PART = re.compile(r"(\d+)([smhd])")
COMPLETION_SECONDS = 1.0  # a completion gives up rather than hang the shell
COMPLETION_LIMIT = 50  # room codes offered at most
UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class Failure(Exception):
    """A command's own refusal (room not found, ...) with the exit code to leave with."""

    def __init__(self, message: str, exit_code: int = NOT_FOUND) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Ctl:
    """The invocation's options; Redis and the room settings are resolved only when a command runs."""

    def __init__(self, redis_url: str | None, as_json: bool, env_file: str | None = None) -> None:
        self.redis_url = redis_url
        self.env_file = env_file  # --env-file as given; None = ROOMCTL_ENV_FILE or the defaults
        self.out = Output(as_json)
        self.where = ""  # Redis as messages name it (no password)

    def run(self, action: Callable[[Backend], Awaitable[T]], *, room: str = "", user: str = "") -> T:
        """Run one async action against Redis, mapping every failure to an exit code and one line.

        The action's own output errors (OutputError) pass through untouched: they are
        not Redis's, and ``main`` ends the process for them.
        """
        try:
            environ = read_environment(self.env_file)
            target = resolve_target(self.redis_url, environ)
            self.where = target.describe()
            settings = room_settings(environ)
        except config.ConfigError as exc:
            self.fail(f"configuration: {exc}", USAGE)

        async def go() -> T:
            backend = connect(target, settings)
            try:
                return await action(backend)
            finally:
                await backend.close()

        try:
            return asyncio.run(go())
        except Failure as exc:
            self.fail(str(exc), exc.exit_code)
        except DomainError as exc:
            self.fail(_domain_message(exc, room, user), NOT_FOUND)
        except (StoreUnavailable, RedisConnectionError, RedisTimeoutError, OSError) as exc:
            self.fail(f"cannot reach Redis at {self.where} ({_reason(exc)})", UNREACHABLE)
        except RedisError as exc:  # Redis answered, with an error (permissions, wrong key type, ...)
            self.fail(f"Redis at {self.where} refused: {_reason(exc)}", UNREACHABLE)

    def fail(self, message: str, code: int) -> NoReturn:
        self.out.error(message)
        sys.exit(code)

    def confirm(self, question: str) -> None:
        """Ask before a destructive action; a refusal (or no terminal to ask on) changes nothing."""
        try:
            with guarded():
                agreed = click.confirm(question, err=True)
        except click.Abort:
            click.echo(err=True)
            agreed = False
        if not agreed:
            self.fail("cancelled, nothing changed (use --yes to skip the question)", NOT_FOUND)


def _domain_message(exc: DomainError, room: str, user: str) -> str:
    if exc.code is ErrorCode.ROOM_NOT_FOUND:
        return f"room {room} not found"
    if exc.code is ErrorCode.MEMBER_NOT_FOUND:
        return f"user {user} is not a member of room {room}"
    if exc.code is ErrorCode.AUDIENCE_DISABLED:
        return f"room {room} was created without an audience"
    return f"{exc.code.value}: {exc.message}"


def _reason(exc: BaseException) -> str:
    while exc.__cause__ is not None and str(exc) in ("", "Redis did not answer in time"):
        exc = exc.__cause__
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- commands whose help goes through the guarded writer ------------------------


def _show_help(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """click's help callback, writing through roomctl's writer: ``roomctl --help | head -1`` is quiet."""
    if value and not ctx.resilient_parsing:
        write_line(sys.stdout, ctx.get_help())
        ctx.exit()


class Command(click.Command):
    """A roomctl command: help written like every other output (a closed reader ends it quietly)."""

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        option = super().get_help_option(ctx)
        if option is not None:
            option.callback = _show_help
        return option


class Group(click.Group, Command):
    """A roomctl group; its commands and subgroups are roomctl commands and groups."""

    command_class = Command
    group_class = type


# -- options every command accepts --------------------------------------------


def _check_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return config.redis_url_from_env({"REDIS_URL": value})
    except config.ConfigError as exc:
        raise click.BadParameter(str(exc).replace("REDIS_URL", "the URL")) from None


def _late_redis_url(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    url = _check_url(ctx, param, value)
    if url is not None:
        ctx.find_object(Ctl).redis_url = url  # type: ignore[union-attr]


def _late_json(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.find_object(Ctl).out.as_json = True  # type: ignore[union-attr]


REDIS_URL_HELP = "Redis URL (default: REDIS_URL / REDIS_HOST from the environment or roomd's environment file)."
JSON_HELP = "Machine-readable JSON output (documented, stable shapes)."


def common_options(command: F) -> F:
    """``--json`` and ``--redis-url`` after the command too (``roomctl rooms list --json``)."""
    command = click.option("--json", "as_json", is_flag=True, expose_value=False, callback=_late_json,
                           help=JSON_HELP)(command)  # fmt: skip
    return click.option("--redis-url", metavar="URL", expose_value=False, callback=_late_redis_url,
                        help=REDIS_URL_HELP)(command)  # fmt: skip


def root_options(command: F) -> F:
    command = click.option("--json", "as_json", is_flag=True, help=JSON_HELP)(command)
    return click.option("--redis-url", metavar="URL", envvar="ROOMCTL_REDIS_URL", callback=_check_url,
                        help=REDIS_URL_HELP + " Env: ROOMCTL_REDIS_URL.")(command)  # fmt: skip


# -- arguments ------------------------------------------------------------------


class Span(NamedTuple):
    ms: int
    text: str  # as typed, for messages ("idle for 2h")


if TYPE_CHECKING:  # click >= 8.2 types ParamType by its value; older clicks cannot subscript it
    StrParam = click.ParamType[str]
    SpanParam = click.ParamType[Span]
else:
    StrParam = SpanParam = click.ParamType


def _complete(ctx: click.Context, query: Callable[[Backend], Awaitable[list[CompletionItem]]]) -> list[CompletionItem]:
    """Completions read from Redis, as the command itself would reach it; [] on any failure.

    A completion must never print into the user's shell nor keep it waiting: no
    message on failure, and at most COMPLETION_SECONDS.
    """
    root = ctx.find_root()
    try:
        environ = read_environment(root.params.get("env_file"))
        target = resolve_target(root.params.get("redis_url"), environ)
        settings = room_settings(environ)
    except config.ConfigError:
        return []

    async def go() -> list[CompletionItem]:
        backend = connect(target, settings, timeout=COMPLETION_SECONDS)
        try:
            async with asyncio.timeout(COMPLETION_SECONDS):
                return await query(backend)
        finally:
            await backend.close()

    try:
        return asyncio.run(go())
    except Exception:  # Redis away, refused, too slow: simply no suggestions
        return []


def _room_items(summaries: list[RoomSummary | None]) -> list[CompletionItem]:
    items = []
    for summary in summaries:
        if summary is not None:
            host = (summary.host or {}).get("displayName", "-")
            hint = f"host {host}, {summary.connected}/{len(summary.members)} connected"
            items.append(CompletionItem(summary.room["code"], help=hint))
    return items


class RoomCode(StrParam):
    """A room code, case-insensitive: letters and digits only, so it can never name another key."""

    name = "CODE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        code = str(value).strip().upper()
        if not (1 <= len(code) <= 32 and code.isascii() and code.isalnum()):
            self.fail(f"{value!r} is not a room code (letters and digits)", param, ctx)
        return code

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        """Live room codes starting with what was typed (newest first), with host and presence."""
        prefix = incomplete.strip().upper()

        async def query(b: Backend) -> list[CompletionItem]:
            codes = await b.overview.codes_starting_with(prefix, COMPLETION_LIMIT)
            return _room_items(await b.overview.summaries(codes))

        return _complete(ctx, query)


class UserId(StrParam):
    """A user id as roomd issues them (URL-safe base64), case-sensitive."""

    name = "USER_ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        user_id = str(value).strip()
        if not USER_ID.fullmatch(user_id):
            self.fail(f"{value!r} is not a user id (letters, digits, - and _)", param, ctx)
        return user_id

    viewers = False  # also complete the room's viewers (up to COMPLETION_LIMIT), after its members

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        """The members of the room named earlier on the line (``users kick KXQD <TAB>``), with their
        names, whose id starts with what was typed; with :attr:`viewers`, then its viewers."""
        code = ctx.params.get("code")
        if not isinstance(code, str):
            return []

        async def query(b: Backend) -> list[CompletionItem]:
            summary = await b.overview.room(code)
            if summary is None:
                return []
            items = [
                CompletionItem(m["id"], help=str(m.get("displayName", "")))
                for m in summary.members
                if str(m["id"]).startswith(incomplete)
            ]
            if self.viewers and summary.audience is not None:
                viewers = await b.overview.viewer_ids_starting_with(code, incomplete, COMPLETION_LIMIT)
                items += [CompletionItem(i, help=f"{name} (viewer)") for i, name in viewers]
            return items

        return _complete(ctx, query)


class PersonId(UserId):
    """A member's or a viewer's id in the room named earlier on the line (``rooms kick CODE ID``)."""

    name = "ID"
    viewers = True


class Duration(SpanParam):
    """A duration such as ``45s``, ``30m``, ``2h``, ``1d``, ``1h30m`` (a bare number is seconds)."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Span:
        if isinstance(value, Span):
            return value
        text = str(value).strip().lower()
        if text.isdigit():
            return Span(int(text) * 1000, f"{text}s")
        if not SPAN.fullmatch(text):
            self.fail(f"{value!r} is not a duration (like 45s, 30m, 2h, 1d, 1h30m)", param, ctx)
        return Span(sum(int(n) * UNIT_MS[unit] for n, unit in SPAN_PART.findall(text)), text)


ROOM_CODE = RoomCode()
DURATION = Duration()
USER = UserId()
PERSON = PersonId()
pass_ctl = click.make_pass_decorator(Ctl)
yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (for scripts).")
