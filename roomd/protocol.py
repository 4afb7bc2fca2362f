"""The wire contract, loaded from the language-neutral ``protocol/`` directory.

This is the bottom layer: error codes, close codes and compiled JSON Schema
validators. Everything above imports from here; this module imports nothing of
roomd.
"""

from __future__ import annotations

import enum
import json
import re
import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing import Registry, Resource


def protocol_dir() -> Path:
    """Locate ``protocol/``: beside the package in a checkout, else the installed copy."""
    candidates = (
        Path(__file__).resolve().parent.parent / "protocol",
        Path(sys.prefix) / "share" / "roomd" / "protocol",
    )
    for candidate in candidates:
        if (candidate / "codes.json").is_file():
            return candidate
    raise RuntimeError(f"protocol/ not found (looked in {', '.join(map(str, candidates))})")


@cache
def codes() -> dict[str, Any]:
    return json.loads((protocol_dir() / "codes.json").read_text())


class ErrorCode(enum.StrEnum):
    INVALID_BODY = "INVALID_BODY"
    INVALID_DISPLAY_NAME = "INVALID_DISPLAY_NAME"
    ROOM_LOCKED = "ROOM_LOCKED"
    ROOM_FULL = "ROOM_FULL"
    UNAUTHORIZED = "UNAUTHORIZED"
    ROOM_NOT_FOUND = "ROOM_NOT_FOUND"
    MEMBER_NOT_FOUND = "MEMBER_NOT_FOUND"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    RATE_LIMITED = "RATE_LIMITED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    ROOM_CODE_GENERATION_FAILED = "ROOM_CODE_GENERATION_FAILED"
    REDIS_UNAVAILABLE = "REDIS_UNAVAILABLE"
    INVALID_MESSAGE = "INVALID_MESSAGE"
    UNKNOWN_EVENT = "UNKNOWN_EVENT"
    NOT_HOST = "NOT_HOST"
    CANNOT_KICK_SELF = "CANNOT_KICK_SELF"
    ALREADY_HOST = "ALREADY_HOST"
    UNKNOWN_ERROR = "UNKNOWN_ERROR"
    NOT_ALLOWED = "NOT_ALLOWED"
    MESSAGE_TOO_LARGE = "MESSAGE_TOO_LARGE"
    VERSION_CONFLICT = "VERSION_CONFLICT"
    STATE_TOO_LARGE = "STATE_TOO_LARGE"

    @property
    def http_status(self) -> int:
        return codes()["errors"][self.value]["status"] or 400

    @property
    def message(self) -> str:
        return codes()["errors"][self.value]["message"]


class CloseCode(enum.IntEnum):
    LEFT = 1000
    GOING_AWAY = 1001
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    UNAUTHORIZED = 4401
    KICKED = 4403
    NOT_FOUND = 4404
    SLOW_CONSUMER = 4408
    REPLACED = 4409
    ROOM_CLOSED = 4410
    RATE_LIMITED = 4429


class ClosedReason(enum.StrEnum):
    HOST_CLOSED = "HOST_CLOSED"
    ADMIN_CLOSED = "ADMIN_CLOSED"
    EXPIRED = "EXPIRED"


@cache
def _registry() -> Registry:
    resources = []
    for path in sorted((protocol_dir() / "schemas").rglob("*.json")):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


def _schema(relative: str) -> dict[str, Any]:
    return json.loads((protocol_dir() / "schemas" / relative).read_text())


@cache
def validator(relative: str) -> Draft202012Validator:
    """A compiled validator for ``protocol/schemas/<relative>``, built once per process."""
    return Draft202012Validator(_schema(relative), registry=_registry())


def client_event_validators() -> Mapping[str, Draft202012Validator]:
    """Event name -> validator of the whole client frame, for every client event."""
    found = {}
    for path in sorted((protocol_dir() / "schemas" / "client").glob("*.json")):
        if path.name == "envelope.json":
            continue
        schema = json.loads(path.read_text())
        found[schema["title"]] = validator(f"client/{path.name}")
    return found


NAME_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")  # game message types and state keys


class GameSchemaError(ValueError):
    """A file of GAME_SCHEMAS_DIR is not a usable JSON Schema; the message names it."""


@cache
def game_validators(directory: str) -> Mapping[str, Draft202012Validator]:
    """Message type -> compiled validator of its ``data``, one ``<type>.json`` per type.

    Compiled once at start (and cached, so forked workers share the work): a
    broken schema must stop roomd before it listens, naming the file, rather
    than fail on the first message of that type in the middle of a game.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise GameSchemaError(f"GAME_SCHEMAS_DIR: {folder} is not a directory")
    found: dict[str, Draft202012Validator] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix != ".json" or path.name.startswith("."):
            continue
        if not NAME_PATTERN.fullmatch(path.stem):
            raise GameSchemaError(f"{path}: the file name must be <type>.json with a type of [A-Za-z0-9_.:-]{{1,64}}")
        try:
            schema = json.loads(path.read_text())
            Draft202012Validator.check_schema(schema)
            found[path.stem] = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        except (OSError, UnicodeDecodeError, ValueError, SchemaError) as exc:
            problem = exc.message if isinstance(exc, SchemaError) else str(exc)
            raise GameSchemaError(f"{path}: not a valid JSON Schema: {problem}") from None
    return found


def first_error(v: Draft202012Validator, instance: Any) -> str | None:
    """The most relevant validation message, or None when ``instance`` is valid."""
    errors = list(v.iter_errors(instance))
    if not errors:
        return None
    best = min(errors, key=lambda e: (len(e.path), str(e.message)))
    where = "/".join(str(p) for p in best.absolute_path)
    return f"{where}: {best.message}" if where else best.message
