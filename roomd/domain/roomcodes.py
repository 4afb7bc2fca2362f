"""Short, typeable, inoffensive room codes.

Codes are drawn uniformly from the configured alphabet; a candidate that
better-profanity would flag (the whole code, or any substring of 4+
characters) is dropped. better-profanity's own check costs ~110 µs a call,
too much for a request path that vets several candidates, so its word list
(with its look-alike substitutions, e.g. 4 for A) is expanded once into a set
of plain strings and candidates are checked by set lookups: the same verdicts
(a test holds the two against each other), a hundred times faster.

Uniqueness is not decided here: the create script claims the first candidate
no live room uses, atomically.
"""

from __future__ import annotations

import re
import secrets
import string
from functools import cache

from better_profanity import profanity

CODE_CHARACTERS = frozenset(string.ascii_lowercase + string.digits)
MAX_VARIANTS_PER_WORD = 50_000


@cache
def flagged_words() -> frozenset[str]:
    """Every spelling better-profanity flags that a room code could contain (lower case)."""
    profanity.load_censor_words()
    found: set[str] = set()
    for word in profanity.CENSOR_WORDSET:
        variants = [""]
        for choices in word._char_combos:  # the library's substitution table for this word
            usable = [c.lower() for c in choices if set(c.lower()) <= CODE_CHARACTERS]
            variants = [v + c for v in variants for c in usable][:MAX_VARIANTS_PER_WORD]
            if not variants:
                break
        found.update(v for v in variants if v)
    return frozenset(found)


def is_offensive(code: str) -> bool:
    """True if the code, or a substring of 4 or more characters, is a flagged word."""
    lowered = code.lower()
    words = flagged_words()
    if lowered in words:
        return True
    n = len(lowered)
    return any(lowered[i : i + size] in words for size in range(4, n) for i in range(0, n - size + 1))


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
