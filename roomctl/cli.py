"""roomctl: inspect and manage roomd rooms directly in Redis.

Actions call the very same domain operations as roomd's WebSocket handler
(an admin close is the host's close script with reason ADMIN_CLOSED), and
their events go out on the same pub/sub channels, so connected players see
them live on every roomd instance.

Exit codes: 0 success, 1 room or user not found (or a refused confirmation),
2 usage or configuration error, 3 Redis unreachable.
"""

from __future__ import annotations

import click

from roomctl.context import Ctl, root_options
from roomctl.events import events
from roomctl.rooms import rooms
from roomctl.stats import stats
from roomctl.users import users
from roomd import config


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@root_options
@click.option("--env-file", default=".env", show_default=True, metavar="PATH", help="Optional dotenv file, as roomd.")
@click.version_option(package_name="roomd", prog_name="roomctl")
@click.pass_context
def cli(ctx: click.Context, redis_url: str | None, as_json: bool, env_file: str) -> None:
    """Inspect and manage roomd rooms directly in Redis; connected players see the effects live.

    --json and --redis-url work before or after the command. Exit codes: 0 success,
    1 room or user not found (or confirmation refused), 2 usage or configuration
    error, 3 Redis unreachable.

    \b
    Examples:
      roomctl rooms list --limit 20
      roomctl rooms show kxqd --json
      roomctl rooms close KXQD --yes
      roomctl users kick KXQD 5YgZuOCV-eoaUVvPVpVBIA --yes
      roomctl stats
      roomctl --redis-url redis://10.0.0.5:6379/0 events KXQD
    """
    config.load_dotenv_file(env_file)  # real environment variables win over the file, as in roomd
    ctx.obj = Ctl(redis_url, as_json)


cli.add_command(rooms)
cli.add_command(users)
cli.add_command(stats)
cli.add_command(events)


def main() -> None:
    """The ``roomctl`` console script."""
    cli(prog_name="roomctl")
