"""Bookkeeping on the write path whose cost must not grow with the conversation or the call depth.

- The records kept for redaction and streaming updates are pruned in amortized constant time: a pass
  over the conversation runs only once the records have doubled since the last pass.
- A must-finish write that calls another must-finish write runs it in its own task (no second task
  per level), while a task it spawns is protected on its own.
"""

from __future__ import annotations

import asyncio

import pytest
from strands import Agent
from strands.types.session import SessionMessage

from mongodb_session_manager._manager_agents import _PRUNE_MINIMUM, _prune_held
from mongodb_session_manager._manager_base import AgentTracking
from mongodb_session_manager._must_finish import must_finish
from mongodb_session_manager.scripted_model import ScriptedModel


def _tracking_with(kept: int, dropped: int) -> tuple[AgentTracking, list[SessionMessage]]:
    """An agent holding ``kept`` messages, and records of those plus ``dropped`` older ones."""
    agent = Agent(model=ScriptedModel(), callback_handler=None)
    tracking = AgentTracking(agent)
    records = [SessionMessage({"role": "user", "content": [{"text": f"old {i}"}]}, i) for i in range(dropped)]
    for i in range(kept):
        message = {"role": "user", "content": [{"text": f"kept {i}"}]}
        agent.messages.append(message)  # type: ignore[arg-type]
        records.append(SessionMessage(message, dropped + i))  # type: ignore[arg-type]
    tracking.held = list(records)
    return tracking, records[dropped:]


def test_records_of_dropped_messages_are_pruned_once_enough_accumulate() -> None:
    tracking, kept = _tracking_with(kept=10, dropped=_PRUNE_MINIMUM)
    _prune_held(tracking)
    assert tracking.held == kept  # the records of messages that left the conversation are gone
    assert tracking.held_pruned_at == len(kept)


def test_pruning_waits_until_the_records_doubled() -> None:
    tracking, _ = _tracking_with(kept=5, dropped=5)
    _prune_held(tracking)
    assert len(tracking.held) == 10  # under the minimum: no pass over the conversation

    tracking, kept = _tracking_with(kept=_PRUNE_MINIMUM, dropped=_PRUNE_MINIMUM)
    _prune_held(tracking)
    assert tracking.held == kept
    extra = [SessionMessage({"role": "user", "content": [{"text": "gone"}]}, 1000 + i) for i in range(10)]
    tracking.held.extend(extra)
    _prune_held(tracking)
    assert len(tracking.held) == _PRUNE_MINIMUM + 10  # not doubled yet: kept as they are
    tracking.held.extend(extra * (_PRUNE_MINIMUM // 10))
    _prune_held(tracking)
    assert tracking.held == kept  # doubled: pruned again, nothing still in the conversation lost


@pytest.mark.anyio
async def test_nested_must_finish_calls_share_one_task() -> None:
    seen: list[asyncio.Task[object] | None] = []

    class Writer:
        @must_finish
        async def outer(self) -> None:
            seen.append(asyncio.current_task())
            await self.inner()

        @must_finish
        async def inner(self) -> None:
            seen.append(asyncio.current_task())

    caller = asyncio.current_task()
    await Writer().outer()
    assert seen[0] is not caller  # the outer write runs as its own task ...
    assert seen[1] is seen[0]  # ... and the nested one inside it, without another task


@pytest.mark.anyio
async def test_a_task_spawned_by_a_write_is_protected_on_its_own() -> None:
    finished = asyncio.Event()
    release = asyncio.Event()
    spawned: list[asyncio.Task[None]] = []

    class Writer:
        @must_finish
        async def outer(self) -> None:
            spawned.append(asyncio.get_running_loop().create_task(self.inner()))
            await spawned[0]

        @must_finish
        async def inner(self) -> None:
            await release.wait()
            finished.set()

    outer = asyncio.get_running_loop().create_task(Writer().outer())
    while not spawned:
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    spawned[0].cancel()  # cancels only the spawned task's wait: the inner write itself goes on
    release.set()
    await asyncio.wait_for(finished.wait(), 10)  # would never be set had the cancellation reached it
    with pytest.raises(asyncio.CancelledError):
        await outer
