"""roomctl: inspect and manage roomd rooms directly in Redis.

Actions call the very same domain operations as roomd's WebSocket handler
(an admin close is the host's close script with reason ADMIN_CLOSED), and
their events go out on the same pub/sub channels, so connected players see
them live on every roomd instance.

Exit codes: 0 success, 1 room or user not found (or a refused confirmation),
2 usage or configuration error, 3 Redis unreachable, 4 output not writable;
a closed pipe ends roomctl with SIGPIPE, as it ends ``cat``.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version

import click

from roomctl.audience import rooms_audience, rooms_audience_lock, rooms_poll
from roomctl.context import Ctl, Group, root_options
from roomctl.events import events
from roomctl.migrate import migrate_command
from roomctl.output import OutputError, output_failed, write_line
from roomctl.rooms import rooms
from roomctl.state import rooms_state
from roomctl.stats import stats
from roomctl.users import users, users_kick

ENV_FILE_HELP = (
    "roomd's environment file (default: $ROOMCTL_ENV_FILE, else ./.env, else /etc/roomd/roomd.env, "
    "if present; '' for none). Real variables and flags win over it."
)


def _show_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        try:
            installed = version("roomd")
        except PackageNotFoundError:
            installed = "unknown"
        write_line(sys.stdout, f"roomctl, version {installed}")
        ctx.exit()


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@root_options
@click.option("--env-file", default=None, metavar="PATH", help=ENV_FILE_HELP)
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_show_version,
              help="Show the version and exit.")  # fmt: skip
@click.pass_context
def cli(ctx: click.Context, redis_url: str | None, as_json: bool, env_file: str | None) -> None:
    """Inspect and manage roomd rooms directly in Redis; connected players see the effects live.

    --json and --redis-url work before or after the command. roomd's environment
    file is read by default, so roomctl reaches roomd's Redis with roomd's room rules.
    Exit codes: 0 success, 1 room or user not found (or confirmation refused),
    2 usage or configuration error, 3 Redis unreachable, 4 output not writable.
    Shell completion (room codes from Redis): see docs/roomctl.md.

    \b
    Examples:
      roomctl rooms list --limit 20
      roomctl rooms list --idle-for 2h
      roomctl rooms show kxqd --json
      roomctl rooms state KXQD prompt
      roomctl rooms close KXQD --yes
      roomctl users find ana
      roomctl users kick KXQD 5YgZuOCV-eoaUVvPVpVBIA --yes
      roomctl stats --watch
      roomctl --redis-url redis://10.0.0.5:6379/0 events KXQD
    """
    ctx.obj = Ctl(redis_url, as_json, env_file)


rooms.add_command(rooms_state)  # rooms state CODE [KEY]
rooms.add_command(rooms_audience)  # rooms audience CODE
rooms.add_command(rooms_poll)  # rooms poll CODE
rooms.add_command(rooms_audience_lock)  # rooms audience-lock CODE --on/--off
rooms.add_command(users_kick, "kick")  # rooms kick CODE ID: members and viewers, = users kick
cli.add_command(rooms)
cli.add_command(users)
cli.add_command(stats)
cli.add_command(events)
cli.add_command(migrate_command)


def main() -> None:
    """The ``roomctl`` console script.

    A failed write of roomctl's own output ends the process the conventional
    way (:func:`roomctl.output.output_failed`); so does click failing to write a
    usage error on an unwritable stderr.
    """
    try:
        cli.main(prog_name="roomctl")
    except OutputError as exc:
        output_failed(exc.error)
    except OSError as exc:
        output_failed(exc)
