"""Logging set-up: human text or one JSON object per line (LOG_FORMAT), secrets kept out.

Tokens travel in ``Authorization`` headers and ``?token=`` query strings;
neither is ever logged: request lines are logged as path plus a query string
with sensitive parameters redacted.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from urllib.parse import parse_qsl, urlencode

SENSITIVE_PARAMS = frozenset({"token", "access_token", "jwt", "secret"})
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
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Plain text; ``extra`` fields appended as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = [f"{k}={v}" for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")]
        return f"{line} {' '.join(extras)}" if extras else line


def configure(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
