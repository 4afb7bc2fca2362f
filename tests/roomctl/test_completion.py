"""Shell completion: click's own, with room codes (and a room's member ids) read from Redis."""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
from pathlib import Path

from click.testing import CliRunner, Result

from roomctl.cli import cli
from roomd.domain.store import RoomStore
from tests.roomctl.conftest import CLEAN_ENV
from tests.roomctl.test_live import ENV, ROOMCTL
from tests.support.processes import RedisServer, free_port


def complete(shell: str, words: str) -> Result:
    """What click answers the shell for the command line ``words`` (the last word being completed)."""
    parts = shlex.split(words) + ([""] if words.endswith(" ") else [])
    env = {**CLEAN_ENV, "_ROOMCTL_COMPLETE": f"{shell}_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(len(parts) - 1)}  # fmt: skip
    return CliRunner().invoke(cli, [], env=env, prog_name="roomctl")


async def test_room_codes_come_from_redis(redis_server: RedisServer, store: RoomStore) -> None:
    first = await store.create_room("Ana")
    await asyncio.sleep(0.003)
    second = await store.create_room("Bob")
    await store.connect(second.room_code, second.user_id, "s")
    line = f"roomctl --env-file '' --redis-url {redis_server.url} rooms show "
    every = await asyncio.to_thread(complete, "bash", line)
    assert every.exit_code == 0 and every.stderr == ""
    assert every.stdout.splitlines() == [f"plain,{second.room_code}", f"plain,{first.room_code}"]  # newest first
    typed = first.room_code[:2].lower()  # codes are case-insensitive
    some = await asyncio.to_thread(complete, "bash", line + typed)
    assert f"plain,{first.room_code}" in some.stdout.splitlines()
    assert all(item.startswith(f"plain,{typed.upper()}") for item in some.stdout.splitlines())
    described = await asyncio.to_thread(complete, "zsh", line)  # zsh and fish show a description
    assert described.stdout.splitlines()[:3] == ["plain", second.room_code, "host Bob, 1/1 connected"]


async def test_member_ids_of_the_room_on_the_line(redis_server: RedisServer, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    player = await store.join_room(host.room_code, "Bob")
    line = f"roomctl --env-file '' --redis-url {redis_server.url} users kick {host.room_code.lower()} "
    result = await asyncio.to_thread(complete, "bash", line)
    assert sorted(result.stdout.splitlines()) == sorted([f"plain,{host.user_id}", f"plain,{player.user_id}"])


def test_no_redis_means_no_suggestions_and_no_noise() -> None:
    line = f"roomctl --env-file '' --redis-url redis://127.0.0.1:{free_port()}/0 rooms close "
    result = complete("bash", line)
    assert (result.exit_code, result.stdout.strip(), result.stderr) == (0, "", "")


async def test_bash_completes_with_the_console_script(redis_server: RedisServer, store: RoomStore) -> None:
    """The documented set-up, in a real bash: eval "$(_ROOMCTL_COMPLETE=bash_source roomctl)"."""
    host = await store.create_room("Ana")
    script = (
        'eval "$(_ROOMCTL_COMPLETE=bash_source roomctl)"\n'
        f"COMP_WORDS=(roomctl --redis-url {redis_server.url} rooms lock {host.room_code[:1]})\n"
        "COMP_CWORD=5\n"
        "_roomctl_completion roomctl\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**ENV, "PATH": f"{Path(ROOMCTL).parent}{os.pathsep}{ENV.get('PATH', '')}", "ROOMCTL_ENV_FILE": ""}
    done = await asyncio.to_thread(subprocess.run, ["bash", "-c", script], env=env, capture_output=True,
                                   timeout=30, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert host.room_code in done.stdout.decode().split()
    commands = subprocess.run(["bash", "-c", script.replace(f"rooms lock {host.room_code[:1]}", "rooms t")
                                                   .replace("COMP_CWORD=5", "COMP_CWORD=4")],
                              env=env, capture_output=True, timeout=30, check=False)  # fmt: skip
    assert commands.stdout.decode().split() == ["transfer-host"]  # commands and options too, from click
