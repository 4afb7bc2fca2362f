"""Short, typeable, inoffensive room codes.

Codes are drawn uniformly from the configured alphabet; a candidate that
better-profanity flags (the whole code, or any substring of 4+ characters) is
dropped. Uniqueness is not decided here: the create script claims the first
candidate no live room uses, atomically.
"""

from __future__ import annotations

import re
import secrets

from better_profanity import profanity

_profanity_loaded = False


def _ensure_wordlist() -> None:
    global _profanity_loaded
    if not _profanity_loaded:
        profanity.load_censor_words()
        _profanity_loaded = True


def is_offensive(code: str) -> bool:
    """True if the code, or a substring of 4 or more characters, is a flagged word."""
    _ensure_wordlist()
    lowered = code.lower()
    if profanity.contains_profanity(lowered):
        return True
    n = len(lowered)
    return any(
        profanity.contains_profanity(lowered[i : i + size]) for size in range(4, n) for i in range(0, n - size + 1)
    )


def candidates(alphabet: str, length: int, count: int) -> list[str]:
    """Up to ``count`` distinct random codes that pass the profanity check."""
    found: list[str] = []
    for _ in range(count * 4):
        code = "".join(secrets.choice(alphabet) for _ in range(length))
        if code not in found and not is_offensive(code):
            found.append(code)
            if len(found) == count:
                break
    return found


def normalize(raw: str, alphabet: str, length: int) -> str | None:
    """The canonical (upper-case) code, or None if ``raw`` cannot be a room code."""
    code = raw.strip().upper()
    if len(code) != length or re.fullmatch(f"[{re.escape(alphabet)}]+", code) is None:
        return None
    return code
