"""The log safety net: whatever a log call is given, tokens and secrets never come out (issue 10, 1.3)."""

from __future__ import annotations

import json
import logging

import pytest

from roomd import logs

JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb29tQ29kZSI6IktYUUQifQ.c2lnbmF0dXJlLXRoYXQtbG9va3MtcmVhbA"


@pytest.mark.parametrize(
    "line",
    [
        f"GET /ws?token={JWT} (127.0.0.1)",
        f"HTTPServerRequest(protocol='http', host='x', method='GET', uri='/ws?a=1&token={JWT}', version='HTTP/1.1')",
        f"Authorization: Bearer {JWT}",
        f'{{"token": "{JWT}"}}',
        f"/ws?access_token=opaque-{JWT[-12:]}&x=1",
        f"header only {JWT.split('.')[0]}",
    ],
)
def test_scrub_removes_tokens_wherever_they_appear(line: str) -> None:
    cleaned = logs.scrub(line)
    assert JWT not in cleaned and JWT.split(".")[0] not in cleaned and JWT[-12:] not in cleaned, cleaned
    assert "REDACTED" in cleaned


def test_scrub_keeps_ordinary_lines() -> None:
    line = "POST /rooms 201 2.1ms requestId=ab12 client=127.0.0.1 token=REDACTED"
    assert logs.scrub(line) == line


def test_configured_secrets_are_scrubbed() -> None:
    logs.add_secret("a-jwt-secret-of-the-deployment")
    assert logs.scrub("loaded a-jwt-secret-of-the-deployment!") == "loaded REDACTED!"


def _record_with_traceback() -> logging.LogRecord:
    try:
        raise RuntimeError(f"failed for /ws?token={JWT}")
    except RuntimeError as exc:
        return logging.LogRecord(
            "tornado.application", logging.ERROR, __file__, 1, "Uncaught exception %s\n%r",
            ("GET /ws (127.0.0.1)", f"<request uri='/ws?token={JWT}'>"), (type(exc), exc, exc.__traceback__),
        )  # fmt: skip


@pytest.mark.parametrize("formatter", [logs.TextFormatter(), logs.JsonFormatter()])
def test_formatters_scrub_messages_arguments_and_tracebacks(formatter: logging.Formatter) -> None:
    record = _record_with_traceback()
    record.uri = f"/ws?token={JWT}"  # an extra field
    out = formatter.format(record)
    assert "Traceback" in out and "RuntimeError" in out  # still useful
    assert JWT not in out and "eyJ" not in out, out
    if isinstance(formatter, logs.JsonFormatter):
        assert json.loads(out)["msg"].startswith("Uncaught exception GET /ws")
