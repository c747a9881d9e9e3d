"""Carrying out a decision: raise its refusal, or publish its writes and wait for the read models.

Each write's events go out in order with JetStream's expected-last-subject-sequence (the
aggregate's `last_seq` in its read model, 0 for a new aggregate); a stale expectation is
Immich's 409. Then the handler waits until the projector has applied them, so the caller
reads its own write.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from services.api.decide import Refusal, Write, accepted
from shared.bus import WrongExpectedSequence
from shared.errors import Conflict

if TYPE_CHECKING:
    from services.api.context import Context
    from shared import events as ev

# Checks that touch the file system (a path on a hung mount blocks in lstat) or burn CPU
# (compiling patterns) run here, off the event loop: two at a time, so that a flood of them
# waits its turn instead of taking every thread the API has. Threads start on first use.
_BLOCKING_CHECKS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="api-checks")
_T = TypeVar("_T")


async def off_loop(fn: Callable[..., _T], *args: object) -> _T:
    """Run a blocking fact-finding function (file system, pattern compiling) off the loop."""
    return await asyncio.get_running_loop().run_in_executor(
        _BLOCKING_CHECKS, functools.partial(fn, *args)
    )


async def publish_chain(ctx: Context, events: list[ev.BaseEvent], expected: int | None) -> int:
    """Publish events of one aggregate in order, each expecting the previous one's sequence."""
    seq = 0
    for event in events:
        try:
            seq = await ctx.bus.publish(event, expected_last_seq=expected)
        except WrongExpectedSequence as e:
            raise Conflict("The item was changed by someone else at the same time; retry") from e
        expected = seq if expected is not None else None
    return seq


async def carry_out(ctx: Context, outcome: Write | list[Write] | Refusal | None) -> int:
    """Raise the refusal, or publish each write and wait for the read models; the last
    sequence written (0: nothing to do)."""
    writes = accepted(outcome)
    if writes is None:
        return 0
    seq = 0
    for write in [writes] if isinstance(writes, Write) else writes:
        seq = max(seq, await publish_chain(ctx, list(write.events), write.expected))
    if seq:
        await ctx.settle(seq)
    return seq


async def carry_out_each(ctx: Context, writes: list[Write]) -> int:
    """Publish many independent writes (one event each), 256 in flight; a write whose
    expectation is stale is left out (its aggregate moved on). Waits for the read models."""
    last, _conflicts = await ctx.bus.publish_many(
        (event, w.expected) for w in writes for event in w.events
    )
    if last:
        await ctx.settle(last)
    return last
