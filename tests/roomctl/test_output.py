"""On a terminal roomctl draws rich tables and colours; names stay text, never markup."""

from __future__ import annotations

from roomd.domain.store import RoomStore
from tests.roomctl.conftest import Roomctl

TERMINAL = {"TTY_COMPATIBLE": "1", "TERM": "xterm-256color", "COLUMNS": "160"}  # rich: behave as on a TTY


async def test_terminal_tables_and_colours(roomctl: Roomctl, store: RoomStore) -> None:
    host = await store.create_room("[bold]Ana")
    listed = await roomctl("rooms", "list", env=TERMINAL)
    assert listed.exit_code == 0
    assert "┏" in listed.stdout and "\x1b[" in listed.stdout  # a rich table, in colour
    assert "[bold]Ana" in listed.stdout and host.room_code in listed.stdout  # the name printed as given
    shown = await roomctl("rooms", "show", host.room_code, env=TERMINAL)
    assert "Members (oldest first)" in shown.stdout and "★" in shown.stdout and "[bold]Ana" in shown.stdout
    locked = await roomctl("rooms", "lock", host.room_code, env=TERMINAL)
    assert "✓" in locked.stdout and "is locked" in locked.stdout


async def test_json_is_never_decorated(roomctl: Roomctl, store: RoomStore) -> None:
    await store.create_room("Ana")
    result = await roomctl("rooms", "list", "--json", env=TERMINAL)
    assert result.stdout.startswith('{"rooms": [') and "\x1b[" not in result.stdout
