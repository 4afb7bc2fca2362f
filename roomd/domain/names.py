"""Display-name rules: trimmed, counted in characters, no control characters."""

from __future__ import annotations

import unicodedata

from roomd.domain.errors import DomainError
from roomd.protocol import ErrorCode


def clean_display_name(raw: str, min_length: int, max_length: int) -> str:
    """Return the trimmed name or raise ``INVALID_DISPLAY_NAME`` saying why."""
    name = unicodedata.normalize("NFC", raw).strip()
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp") for ch in name):
        raise DomainError(ErrorCode.INVALID_DISPLAY_NAME, "displayName must not contain control characters")
    if not min_length <= len(name) <= max_length:
        raise DomainError(
            ErrorCode.INVALID_DISPLAY_NAME,
            f"displayName must be {min_length} to {max_length} characters long (after trimming)",
        )
    return name
