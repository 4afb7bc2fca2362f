"""The sweeps' sorted sets (``rooms:expiry``, ``rooms:hostless``) name a room by code and incarnation."""

from __future__ import annotations

import json
from typing import Any

from roomd.domain import keys


async def scheduled(client: Any, code: str, layout: keys.Layout | None = None) -> str:
    """The member of room ``code`` (it must still hold its claim) in the sweeps' sorted sets."""
    names = layout or keys.layout()
    raw = await client.get(names.claim(code))
    assert raw is not None, f"room {code} holds no claim"
    return keys.scheduled(code, json.loads(raw)["incarnation"])


async def entries_of(client: Any, key: str, code: str) -> list[str]:
    """The members of ``key`` (``rooms:expiry`` or ``rooms:hostless``) naming room ``code``, any incarnation."""
    found = []
    async for member, _ in client.zscan_iter(key, match=f"{code}|*"):
        found.append(member.decode() if isinstance(member, bytes) else member)
    return found
