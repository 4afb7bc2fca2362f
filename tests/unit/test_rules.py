"""Pure domain rules: display names, room codes, tokens, protocol loading."""

from __future__ import annotations

import time

import jwt
import pytest

from roomd import protocol
from roomd.domain import roomcodes
from roomd.domain.errors import DomainError
from roomd.domain.names import clean_display_name
from roomd.domain.tokens import TokenIssuer, bearer_token
from roomd.protocol import ErrorCode

SECRET = "s" * 64


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("  Ana  ", "Ana"), ("Zoë", "Zoë"), ("李小龙", "李小龙"), ("a b", "a b"), ("🎲" * 3, "🎲🎲🎲")],
)
def test_display_names_are_trimmed_and_counted_in_characters(raw: str, expected: str) -> None:
    assert clean_display_name(raw, 1, 3 if len(expected) <= 3 else 10) == expected


@pytest.mark.parametrize("raw", ["", "   ", "a\x00b", "tab\there", "new\nline", "x" * 11, "\u202eevil"])
def test_bad_display_names_are_refused(raw: str) -> None:
    with pytest.raises(DomainError) as info:
        clean_display_name(raw, 1, 10)
    assert info.value.code is ErrorCode.INVALID_DISPLAY_NAME


def test_offensive_codes_and_substrings_are_flagged() -> None:
    assert roomcodes.is_offensive("FUCK")
    assert roomcodes.is_offensive("XFUCKX")  # substring of a longer code
    assert not roomcodes.is_offensive("BCDF")


def test_candidates_follow_alphabet_and_are_clean() -> None:
    found = roomcodes.candidates("ABCDEFGHJKLMNPQRSTUVWXYZ", 6, 8)
    assert len(found) == 8 and len(set(found)) == 8
    assert all(len(c) == 6 and not roomcodes.is_offensive(c) for c in found)


def test_normalize_is_case_insensitive_and_strict() -> None:
    assert roomcodes.normalize(" abcd ", "ABCD", 4) == "ABCD"
    assert roomcodes.normalize("ABCE", "ABCD", 4) is None
    assert roomcodes.normalize("X:users", "ABCD", 4) is None
    assert roomcodes.normalize("ABC", "ABCD", 4) is None


def test_tokens_round_trip_and_are_distinct() -> None:
    issuer = TokenIssuer(SECRET, 60)
    a, b = issuer.issue("ABCD", "u1"), issuer.issue("ABCD", "u1")
    assert a != b
    claims = issuer.verify(a)
    assert (claims.room_code, claims.user_id) == ("ABCD", "u1")
    assert claims.expires_at - time.time() == pytest.approx(60, abs=2)


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        "not-a-jwt",
        jwt.encode({"roomCode": "ABCD", "userId": "u", "exp": int(time.time()) + 60}, "other" * 10, "HS256"),
        jwt.encode({"roomCode": "ABCD", "userId": "u", "exp": int(time.time()) - 10}, SECRET, "HS256"),
        jwt.encode({"roomCode": "ABCD", "userId": "u"}, SECRET, "HS256"),
        jwt.encode({"roomCode": "ABCD", "userId": "u", "exp": int(time.time()) + 60}, SECRET, "HS512"),
        jwt.encode({"roomCode": "ABCD", "userId": "u", "exp": int(time.time()) + 60}, None, "none"),
        jwt.encode({"roomCode": 5, "userId": "u", "exp": int(time.time()) + 60}, SECRET, "HS256"),
    ],
)
def test_bad_tokens_are_unauthorized(token: str | None) -> None:
    with pytest.raises(DomainError) as info:
        TokenIssuer(SECRET, 60).verify(token)
    assert info.value.code is ErrorCode.UNAUTHORIZED


def test_secret_never_in_repr() -> None:
    assert SECRET not in repr(TokenIssuer(SECRET, 60))


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer", None), (None, None)],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_every_error_code_is_in_the_protocol_and_vice_versa() -> None:
    documented = protocol.codes()
    assert set(documented["errors"]) == {c.value for c in ErrorCode}
    assert {int(c) for c in documented["closeCodes"]} == {c.value for c in protocol.CloseCode}


def test_every_client_event_has_a_schema() -> None:
    assert set(protocol.client_event_validators()) == {
        "room:leave",
        "room:close",
        "room:toggle_lock",
        "room:kick",
        "room:transfer_host",
        "game:send",
        "state:set",
        "state:delete",
        "audience:lock",
        "poll:open",
        "poll:close",
        "poll:vote",
    }


def test_fast_profanity_check_agrees_with_better_profanity() -> None:
    import random
    import string

    from better_profanity import profanity

    profanity.load_censor_words()
    listed = [str(w).upper() for w in profanity.CENSOR_WORDSET if set(str(w)) <= roomcodes.CODE_CHARACTERS]
    rng = random.Random(7)
    alphabet = string.ascii_uppercase + string.digits
    randoms = ["".join(rng.choice(alphabet) for _ in range(rng.choice((4, 5, 6)))) for _ in range(3000)]
    leet = ["F4CK", "SH1T", "A55", "B00B", "PHUK", "C0CK"]
    for code in listed + randoms + leet:
        assert (code.lower() in roomcodes.flagged_words()) == profanity.contains_profanity(code.lower()), code
    assert len(listed) > 100  # the comparison covered the word list itself
