"""The README, .env.example and protocol reference stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

from dotenv import dotenv_values

from roomd import protocol
from roomd.config import from_env

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
PROTOCOL_README = (ROOT / "protocol" / "README.md").read_text()
ENV_EXAMPLE = dotenv_values(ROOT / ".env.example")


def _documented_variables() -> dict[str, str]:
    rows = re.findall(r"^\| `([A-Z_]+)`(?:, `[A-Z_]+`)? \| ([^|]+) \|", README, re.MULTILINE)
    return {name: default.strip().strip("`") for name, default in rows}


def test_every_env_example_variable_is_in_the_readme_table() -> None:
    documented = _documented_variables()
    assert set(ENV_EXAMPLE) - {"REDIS_PORT", "REDIS_HOST"} <= set(documented) | {"REDIS_HOST"}


def test_env_example_defaults_are_the_real_defaults() -> None:
    example = {k: v for k, v in ENV_EXAMPLE.items() if v}
    example["JWT_SECRET"] = "x" * 40
    from_example = from_env(example)
    defaults = from_env({"JWT_SECRET": "x" * 40})
    assert from_example == defaults  # .env.example sets nothing but defaults (ROOMD_ENV, REDIS_URL: commented)


def test_readme_defaults_match_the_code() -> None:
    documented = _documented_variables()
    for name, value in ENV_EXAMPLE.items():
        if name in documented and value and name not in ("ROOMD_ENV", "REDIS_URL"):
            assert documented[name] == value, name


def test_every_code_is_documented() -> None:
    codes = protocol.codes()
    for code in codes["errors"]:
        assert f"`{code}`" in PROTOCOL_README, code
        assert code in README, code
    for close in codes["closeCodes"]:
        assert f"| {close} |" in PROTOCOL_README, close
        assert close in README, close


def test_every_event_is_documented() -> None:
    schemas = ROOT / "protocol" / "schemas"
    events = [p.stem.replace(".", ":", 1) for d in ("client", "server") for p in (schemas / d).glob("*.json")]
    for event in events:
        if event != "envelope":
            assert f"`{event}" in README and f"`{event}" in PROTOCOL_README, event


def test_changelog_keeps_protocol_and_redis_layout_changes_apart() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    unreleased = changelog.split("## [Unreleased]", 1)[1].split("\n## [", 1)[0]
    assert "### Protocol (client authors)" in unreleased
    assert "### Redis layout (operators)" in unreleased


def test_the_version_has_one_home_and_a_changelog_entry() -> None:
    from roomd import __version__

    assert re.search(r"version\s*=\s*[\"']\d", (ROOT / "setup.py").read_text()) is None, "setup.py reads the version"
    assert f"## [{__version__}] - " in (ROOT / "CHANGELOG.md").read_text()
