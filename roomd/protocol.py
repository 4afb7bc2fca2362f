"""The wire contract, loaded from the language-neutral ``protocol/`` directory.

This is the bottom layer: error codes, close codes and compiled JSON Schema
validators. Everything above imports from here; this module imports nothing of
roomd.

``protocol/`` lives at the repository root, shared with client authors; wheels
carry a copy inside the package (``roomd/_protocol``, mapped by setup.py at build
time), so it is found through ``importlib.resources`` wherever roomd is
installed - never through ``sys.prefix``, which is not the install prefix of a
``--user``, ``--prefix`` or ``--target`` install.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError
from referencing import Registry, Resource

PACKAGED_PROTOCOL = "_protocol"  # protocol/ inside the installed package (setup.py package_dir)


def package_path(package: str, name: str) -> Path:
    """A file or directory shipped inside ``package``, as a path on the file system.

    Located with ``importlib.resources``, so it follows the package wherever it
    was installed. Tornado's StaticFileHandler and directory walks need a real
    path; pip installs roomd as plain files, so anything else (a zip import) is
    refused with a clear message instead of a confusing miss later.
    """
    resource = files(package).joinpath(name)
    if not isinstance(resource, Path):
        raise RuntimeError(f"{package}/{name} is not on the file system ({resource!r}): install roomd unzipped")
    return resource


@cache
def protocol_dir() -> Path:
    """The ``protocol/`` roomd validates against and serves under ``/client/``.

    An installed roomd reads its packaged copy. A checkout (tests, ``pip install
    -e``) has none and reads the repository's ``protocol/`` beside the package:
    the same files, so editing them takes effect without a reinstall.
    """
    packaged = package_path("roomd", PACKAGED_PROTOCOL)
    checkout = package_path("roomd", "__init__.py").parent.parent / "protocol"
    for candidate in (packaged, checkout):
        if (candidate / "codes.json").is_file():
            return candidate
    raise RuntimeError(f"the protocol files are missing from the roomd package (looked in {packaged}, {checkout})")


@cache
def codes() -> dict[str, Any]:
    """``protocol/codes.json``: error codes (HTTP status, message) and close codes, read once."""
    loaded: dict[str, Any] = json.loads((protocol_dir() / "codes.json").read_text())
    return loaded


class ErrorCode(enum.StrEnum):
    INVALID_BODY = "INVALID_BODY"
    INVALID_DISPLAY_NAME = "INVALID_DISPLAY_NAME"
    ROOM_LOCKED = "ROOM_LOCKED"
    ROOM_FULL = "ROOM_FULL"
    AUDIENCE_DISABLED = "AUDIENCE_DISABLED"
    AUDIENCE_LOCKED = "AUDIENCE_LOCKED"
    AUDIENCE_FULL = "AUDIENCE_FULL"
    UNAUTHORIZED = "UNAUTHORIZED"
    ROOM_NOT_FOUND = "ROOM_NOT_FOUND"
    MEMBER_NOT_FOUND = "MEMBER_NOT_FOUND"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    RATE_LIMITED = "RATE_LIMITED"
    UPGRADE_REQUIRED = "UPGRADE_REQUIRED"
    ORIGIN_NOT_ALLOWED = "ORIGIN_NOT_ALLOWED"
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
    POLL_ALREADY_OPEN = "POLL_ALREADY_OPEN"
    POLL_NOT_OPEN = "POLL_NOT_OPEN"
    BUSY = "BUSY"

    @property
    def http_status(self) -> int:
        return codes()["errors"][self.value]["status"] or 400

    @property
    def message(self) -> str:
        return str(codes()["errors"][self.value]["message"])


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
    schema: dict[str, Any] = json.loads((protocol_dir() / "schemas" / relative).read_text())
    return schema


def _is_integer(checker: Any, instance: Any) -> bool:
    """JSON Schema counts ``2.0`` as an integer; the protocol does not (a client sending it has a bug)."""
    return isinstance(instance, int) and not isinstance(instance, bool)


# Draft 2020-12 with "integer" meaning a JSON number written without a fraction or exponent.
_StrictValidator: Any = validators.extend(
    Draft202012Validator, type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer)
)


@cache
def validator(relative: str) -> Draft202012Validator:
    """A compiled validator for ``protocol/schemas/<relative>``, built once per process."""
    return _StrictValidator(_schema(relative), registry=_registry())  # type: ignore[no-any-return]


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


def preload() -> None:
    """Read every protocol file now, at start, instead of on some request's path (often an error's).

    A file first opened when descriptors have run out (EMFILE) turns a clear
    error answer into a 500 with a traceback; and a missing code fails here,
    before roomd listens, not in front of a client.
    """
    missing = [code.value for code in ErrorCode if code.value not in codes()["errors"]]
    if missing:
        raise RuntimeError(f"codes.json has no entry for {', '.join(missing)}")
    schemas = protocol_dir() / "schemas"
    for path in sorted(schemas.rglob("*.json")):
        validator(path.relative_to(schemas).as_posix())


def first_error(v: Draft202012Validator, instance: Any) -> str | None:
    """The most relevant validation message, or None when ``instance`` is valid."""
    errors = list(v.iter_errors(instance))
    if not errors:
        return None
    best = min(errors, key=lambda e: (len(e.path), str(e.message)))
    where = "/".join(str(p) for p in best.absolute_path)
    return f"{where}: {best.message}" if where else best.message


# -- parsing untrusted JSON -------------------------------------------------------

MAX_JSON_DEPTH = 32  # protocol messages nest 3 levels; anything deeper is hostile or a bug


class InvalidJson(ValueError):
    """Untrusted text that is not acceptable protocol JSON.

    ``str(exc)`` completes a sentence whose subject is the frame or the body
    ("The frame ...", "The request body ..."); it never echoes the input at length.
    """


def _refuse_constant(name: str) -> Any:
    raise InvalidJson(f"contains {name}, which is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidJson(f"contains {text[:24]}, which is not a finite number")
    return value


# One decoder, built once: json.loads(text, **options) would build a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def _nested_deeper_than(value: Any, limit: int) -> bool:
    """Iterative (never recursive) depth check: the top-level container is depth 1."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def parse_json(raw: str | bytes) -> Any:
    """Parse a client frame or request body, refusing what Python's json accepts but the protocol does not.

    ``json.loads`` alone raises RecursionError on ``"[" * 1000`` (which escaped
    the handlers and dropped sockets), accepts ``NaN``/``Infinity`` and ``1e400``
    (not JSON numbers), and lets ``"\\ud800"`` through as a lone surrogate that
    later fails to encode for Redis or for an echo. All of these raise
    :class:`InvalidJson` here. The extra checks cost nothing for ordinary
    frames: depth only when there are many brackets, surrogates only when the
    text has a ``\\u`` escape (a bare surrogate cannot come from strict UTF-8).
    """
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidJson("is not valid UTF-8") from None
    else:
        text = raw
    try:
        value = _DECODER.decode(text)
    except InvalidJson:
        raise
    except RecursionError:
        raise InvalidJson(f"nests JSON deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError:
        raise InvalidJson("is not valid JSON") from None
    if (
        isinstance(value, dict | list)
        and text.count("[") + text.count("{") > MAX_JSON_DEPTH
        and _nested_deeper_than(value, MAX_JSON_DEPTH)
    ):
        raise InvalidJson(f"nests JSON deeper than {MAX_JSON_DEPTH} levels")
    if "\\u" in text:
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidJson("contains a lone UTF-16 surrogate (a \\uD800-\\uDFFF escape without its pair)") from None
    return value
