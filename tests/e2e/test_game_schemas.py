"""GAME_SCHEMAS_DIR: one JSON Schema per game message type, compiled at start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.game_support import room
from tests.support.clients import Api
from tests.support.processes import ROOT, TEST_SECRET, RoomdProcess

ANSWER = {"type": "object", "properties": {"text": {"type": "string", "maxLength": 10}}, "required": ["text"]}


async def test_messages_are_checked_against_their_type_schema(
    spawn_roomd: Callable[..., RoomdProcess], tmp_path: Path
) -> None:
    (tmp_path / "answer.json").write_text(json.dumps(ANSWER))
    (tmp_path / "vote.json").write_text(json.dumps({"type": "integer", "minimum": 0}))
    (tmp_path / "README.txt").write_text("not a schema: ignored")
    server = spawn_roomd(GAME_SCHEMAS_DIR=str(tmp_path))
    _, (host, player) = await room(Api(server.http), [server], ["Host", "P"])
    await player.do("game:send", {"type": "answer", "data": {"text": "hi"}})
    await player.do("game:send", {"type": "vote", "data": 2})
    error = await player.fails("game:send", {"type": "answer", "data": {"text": 5}}, "INVALID_MESSAGE")
    assert "text" in error["message"] and "string" in error["message"]
    error = await player.fails("game:send", {"type": "vote", "data": -1}, "INVALID_MESSAGE")
    assert "minimum" in error["message"] or "less than" in error["message"]
    error = await player.fails("game:send", {"type": "chat", "data": "x"}, "UNKNOWN_EVENT")
    assert "chat" in error["message"]
    frames = await host.until("game:message", type="vote")
    assert [f["data"]["data"] for f in frames if f["event"] == "game:message"] == [{"text": "hi"}, 2]


def start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ROOM", "REDIS_", "JWT_", "GAME_"))}
    base = {"ROOMD_ENV": "production", "JWT_SECRET": TEST_SECRET, "REDIS_URL": "redis://127.0.0.1:1/0", "PORT": "0"}
    return subprocess.run(
        [sys.executable, "-m", "roomd", "--env-file", "/nonexistent"],
        env={**clean, **base, **env}, cwd=ROOT, capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("answer.json", '{"type": "nope"}', "answer.json"),
        ("vote.json", "{not json", "vote.json"),
        ("has space.json", "{}", "has space.json"),
    ],
)
def test_a_broken_schema_stops_roomd_naming_the_file(tmp_path: Path, name: str, content: str, needle: str) -> None:
    (tmp_path / "fine.json").write_text(json.dumps(ANSWER))
    (tmp_path / name).write_text(content)
    result = start({"GAME_SCHEMAS_DIR": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    assert "configuration error" in result.stderr and needle in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_schema_directory_stops_roomd(tmp_path: Path) -> None:
    result = start({"GAME_SCHEMAS_DIR": str(tmp_path / "nowhere")})
    assert result.returncode == 2 and "GAME_SCHEMAS_DIR" in result.stderr
