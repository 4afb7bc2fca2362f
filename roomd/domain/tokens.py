"""Room tokens: one HS256 JWT per user per room.

The signature and ``exp`` are only half of validity: the store must also
confirm the room exists and the user is still a member, which is what makes a
kick or a close kill the token at once.

A viewer of a room's audience gets the same token with ``userId`` = its audience id and the
claim ``"role": "viewer"``; a token without ``role`` is a member's (every token issued before
the audience existed). The store checks a viewer against the room's audience, never its members,
so a viewer's token can never act as a member's.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Literal

import jwt

from roomd.domain.errors import DomainError
from roomd.protocol import ErrorCode

ALGORITHM = "HS256"

Role = Literal["member", "viewer"]
ROLES: tuple[Role, ...] = ("member", "viewer")


@dataclass(frozen=True)
class Claims:
    """What a verified token says: who (``user_id``) may connect to which room, until
    ``expires_at`` (epoch seconds), as a member or a viewer (``role``). Membership (or
    admission to the audience) is still to be checked in the store."""

    room_code: str
    user_id: str
    expires_at: int
    role: Role = "member"

    @property
    def viewer(self) -> bool:
        return self.role == "viewer"


class TokenIssuer:
    """Issues and verifies room tokens with one HMAC secret (``JWT_SECRET``).

    Every roomd instance must share the secret (a token is used on any instance).
    A token carries ``exp`` = issue time + room TTL; before that it stops
    working as soon as the store no longer has the room or the member (leave,
    kick, close, expiry), because every use also checks the store.
    """

    def __init__(self, secret: str, ttl_seconds: int) -> None:
        self._secret = secret
        self._ttl = ttl_seconds

    def __repr__(self) -> str:  # never show the secret
        return f"TokenIssuer(ttl_seconds={self._ttl})"

    def issue(self, room_code: str, user_id: str, role: Role = "member") -> str:
        """A signed token for ``user_id`` in ``room_code``, valid for the room TTL.

        ``jti`` (random) makes two tokens issued to the same user in the same
        second differ, so they can be told apart in a report. A member's token carries
        no ``role`` (as before the audience); a viewer's carries ``"role": "viewer"``.
        """
        now = int(time.time())
        claims: dict[str, str | int] = {
            "roomCode": room_code,
            "userId": user_id,
            "iat": now,
            "exp": now + self._ttl,
            "jti": secrets.token_hex(8),
        }
        if role != "member":
            claims["role"] = role
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str | None) -> Claims:
        """Check signature (HS256 only) and expiry; raise ``UNAUTHORIZED`` otherwise."""
        if not token:
            raise DomainError(ErrorCode.UNAUTHORIZED, "A token is required")
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "roomCode", "userId"]},
            )
        except jwt.ExpiredSignatureError:
            raise DomainError(ErrorCode.UNAUTHORIZED, "The token has expired") from None
        except jwt.InvalidTokenError:
            raise DomainError(ErrorCode.UNAUTHORIZED, "The token is invalid") from None
        room_code, user_id = payload.get("roomCode"), payload.get("userId")
        if not isinstance(room_code, str) or not isinstance(user_id, str) or not room_code or not user_id:
            raise DomainError(ErrorCode.UNAUTHORIZED, "The token is invalid")
        role = payload.get("role", "member")
        if role == "viewer":
            return Claims(room_code=room_code, user_id=user_id, expires_at=int(payload["exp"]), role="viewer")
        if role != "member":
            raise DomainError(ErrorCode.UNAUTHORIZED, "The token is invalid")
        return Claims(room_code=room_code, user_id=user_id, expires_at=int(payload["exp"]))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if any."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
