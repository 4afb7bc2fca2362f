"""Domain failures, each carrying the protocol error code clients act on."""

from __future__ import annotations

from typing import Any

from roomd.protocol import ErrorCode


class DomainError(Exception):
    """An expected, client-visible failure (room full, not host, ...)."""

    def __init__(self, code: ErrorCode, message: str | None = None, data: dict[str, Any] | None = None) -> None:
        self.code = code
        self.message = message or code.message
        self.data = data or {}  # extra fields of the error:room frame (VERSION_CONFLICT: version)
        super().__init__(f"{code.value}: {self.message}")


class StoreUnavailable(Exception):
    """Redis did not answer in time; the request may be retried."""
