"""Nudges: one pending timer per key, re-armed by what the nudge's script answers."""

from __future__ import annotations

import asyncio

from roomd.domain.errors import StoreUnavailable
from roomd.domain.store import now_ms
from roomd.transport.nudges import Nudges


class Script:
    """A fake publish-if-due script: answers the queued due times, then None; counts its runs."""

    def __init__(self, answers: list[int | None] | None = None, failures: int = 0) -> None:
        self.answers = list(answers or [])
        self.failures = failures
        self.runs = 0
        self.done = asyncio.Event()

    async def __call__(self) -> int | None:
        self.runs += 1
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("down")
        answer = self.answers.pop(0) if self.answers else None
        if answer is None:
            self.done.set()
        return answer


async def test_many_nudges_for_one_key_run_once() -> None:
    nudges, script = Nudges(), Script()
    due = now_ms() + 20
    for _ in range(100):
        nudges.at(("poll:tally", "ROOM"), due, script)
    assert len(nudges) == 1
    await asyncio.wait_for(script.done.wait(), 2)
    assert script.runs == 1 and len(nudges) == 0


async def test_keys_are_apart_and_an_earlier_due_time_wins() -> None:
    nudges, a, b = Nudges(), Script(), Script()
    nudges.at("a", now_ms() + 60_000, a)
    nudges.at("a", now_ms(), a)  # earlier: replaces the later timer
    nudges.at("b", now_ms(), b)
    await asyncio.wait_for(asyncio.gather(a.done.wait(), b.done.wait()), 2)
    assert (a.runs, b.runs) == (1, 1) and len(nudges) == 0


async def test_a_too_early_answer_rearms_and_redis_failures_are_retried() -> None:
    nudges = Nudges()
    script = Script(answers=[now_ms() + 10], failures=1)
    nudges.at("k", now_ms(), script)
    await asyncio.wait_for(script.done.wait(), 5)
    assert script.runs == 3  # failed, retried (too early: re-armed), published
    assert len(nudges) == 0
