"""Logging set-up: human text or one JSON object per line (LOG_FORMAT), secrets kept out.

Tokens travel in ``Authorization`` headers and ``?token=`` query strings;
neither is ever logged: request lines are logged as path plus a query string
with sensitive parameters redacted, and handlers never log the request's URI.

Because one forgotten ``%r`` of a request (Tornado's own default did exactly
that) or an exception message quoting a URL is enough to leak a live token,
both formatters also scrub their finished output - message, arguments,
traceback and extra fields alike - as a safety net: ``token=...`` style
values, ``Bearer ...`` credentials and anything shaped like a JWT
(``eyJ...``) become ``REDACTED``. Exceptions that would bypass logging
(uncaught in a thread, unraisable, at top level) are routed through it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlencode

SENSITIVE_PARAMS = frozenset({"token", "access_token", "jwt", "secret"})
REDACTED = "REDACTED"

# key=value where the key ends in token/jwt/secret (token=, access_token=, JWT_SECRET=, ...)
_PARAM = re.compile(r"(?i)([A-Za-z_]*(?:token|jwt|secret)=)(?!REDACTED\b)[^&\s\"'<>\\,;]+")
# A JWT (base64url JSON header "{"... is always "eyJ"), with or without its payload and signature.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{6,}(?:\.[A-Za-z0-9_-]*){0,2}")
_BEARER = re.compile(r"(?i)\b(bearer\s+)(?!REDACTED\b)[A-Za-z0-9._~+/=-]+")
_literals: set[str] = set()  # configured secrets (JWT_SECRET): scrubbed wherever they appear


def add_secret(value: str) -> None:
    """Scrub ``value`` (e.g. JWT_SECRET) from every log line from now on."""
    if len(value) >= 8:
        _literals.add(value)


def scrub(text: str) -> str:
    """``text`` with tokens, credentials and configured secrets replaced by ``REDACTED``."""
    if "=" in text:
        text = _PARAM.sub(rf"\1{REDACTED}", text)
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    if "earer" in text or "EARER" in text:
        text = _BEARER.sub(rf"\1{REDACTED}", text)
    for secret in _literals:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def redact_query(query: str) -> str:
    """``query`` with the values of token-like parameters replaced by ``REDACTED``."""
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, "REDACTED" if k.lower() in SENSITIVE_PARAMS else v) for k, v in pairs])


def safe_uri(path: str, query: str) -> str:
    redacted = redact_query(query)
    return f"{path}?{redacted}" if redacted else path


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with any ``extra={...}`` fields as top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return scrub(json.dumps(entry, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """Plain text; ``extra`` fields appended as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = [f"{k}={v}" for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")]
        return scrub(f"{line} {' '.join(extras)}" if extras else line)


def _log_uncaught(typ: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    logging.getLogger("roomd").critical("uncaught exception", exc_info=(typ, value, tb))


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is not SystemExit and args.exc_value is not None:
        thread = args.thread.name if args.thread else "?"
        logging.getLogger("roomd").error(
            "uncaught exception in thread %s", thread, exc_info=(args.exc_type, args.exc_value, args.exc_traceback)
        )


def _log_unraisable(unraisable: Any) -> None:
    logging.getLogger("roomd").error(
        "unraisable exception: %s",
        unraisable.err_msg or "Exception ignored",
        exc_info=(unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback),
    )


def configure(level: str, fmt: str, secrets: Iterable[str] = ()) -> None:
    """Log to stderr in ``fmt``; route exceptions that bypass logging through it, so they are scrubbed too."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for secret in secrets:
        add_secret(secret)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_thread_exception
    sys.unraisablehook = _log_unraisable
