"""Pipelined writes of an agent invocation: the manager's ``MessageAddedEvent`` path when
``pipelined_writes`` is on (the default).

When a message is added, the manager numbers it at once, puts its insert (and, if the agent's state
changed, a state write) into the conversation's :class:`~._pipeline.WriteQueue` and returns: the agent
continues without waiting for the round trip. The queue sends one command at a time, in order, so what
is stored is always a prefix of what was added (docs/sync-and-async.md).

A turn still claims the conversation (see ``_turns``): its first message goes into the queue with the
``turn`` marker at the id after the stored tail, without the agent waiting; the turn's later messages
queue behind it. If the claim collides (another writer appended), nothing else of the turn was sent;
the manager then, inside a hook Strands awaits (the agent is paused), waits for the other turn,
catches up with its messages (put into ``agent.messages`` before this turn's first message) and stores
this turn's messages as one block after them: the new claim. Before the turn's first tool runs, the
claim's outcome is awaited, so tools never run on a conversation (or state) the turn does not hold;
the ``toolUse`` itself is held back and queued with its ``toolResult`` (one insert for both).

Before the invocation returns (``AfterInvocationEvent``), and before any other write or read of the
manager, the queue is drained: what a caller sees acknowledged is stored, and a failed write fails the
invocation with the error the awaited path raises.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
from typing import TYPE_CHECKING

from strands.types.content import Message
from strands.types.session import SessionAgent, SessionMessage

from ._manager_agents import AgentPersistence
from ._manager_base import AgentTracking, in_sync, sync_marker
from ._manager_turns import insert_before
from ._pipeline import Claim, Failure, Item, QueuedMessage, QueuedState, WriteQueue
from ._turns import TURN_FIELD, answers, closes_turn, only_tool_results, open_marker, repair_fields, repairs_after
from ._types import Document
from .errors import DuplicateMessageError, PipelinedWriteError

if TYPE_CHECKING:
    from strands.types.agent import LocalAgent

logger = logging.getLogger(__name__)


class PipelinedWrites(AgentPersistence):
    """The pipelined variant of storing an agent's new messages and state (see the module docstring)."""

    # -- the event path (on the agent's loop, inside a hook Strands awaits) --------------------------

    async def _queue_message(self, message: Message, agent: LocalAgent) -> bool:
        """Queue the message's insert (and a state write if the state changed); False when the awaited
        path must store it (not pipelined, the agent's first write, a turn that must wait first, ...)."""
        tracking = self._agents.get(agent.agent_id)
        if not self.pipelined_writes or self._closed or tracking is None or tracking.pending_create:
            return False
        if tracking.turn is None:  # outside an invocation (a direct append): the awaited path's rules
            await self._drain_writes(agent, recover=True)
            return False
        failure = None if tracking.queue is None else tracking.queue.failure
        if failure is not None and failure.collided_claim is not None:
            await self._drain_writes(agent, recover=True)  # the claim collided meanwhile: store the turn again
        if not tracking.turn_started:
            if tracking.unsettled:
                await self._drain_writes(agent, recover=True)  # an earlier turn's writes come first
            if self._deferred or not self._queue_claim(tracking, message):
                return False
        elif self._deferred or _repeats_role(tracking, message):
            await self._drain_writes(agent, recover=True)
            return False  # the awaited path stores it (and the note keeping roles alternating)
        else:
            self._queue_turn_message(tracking, message)
        if _calls_tools(message) and tracking.claim is not None:
            # Tools run after this hook: never before the turn holds the conversation.
            await self._settle_claim(tracking)
        return True

    def _queue_claim(self, tracking: AgentTracking, message: Message) -> bool:
        """Queue the turn's first insert, which claims the conversation; False when it cannot be
        queued right away (the tail may be held by another turn: the awaited path waits for it)."""
        repairs = _repairs_for_claim(tracking, message)
        if repairs is None:
            return False
        turn = tracking.turn
        assert turn is not None
        claim = Claim(turn, tracking.latest, message, repairs)
        items = [self._numbered(tracking, repair, {}, repair_fields("interrupted")) for repair in repairs]
        closing = closes_turn(message)
        usage_fields = self._usage.fields_for(tracking.agent.agent_id, message)
        items.append(self._numbered(tracking, message, usage_fields, None if closing else self._marker(turn)))
        items[0].claim = claim
        if repairs:
            insert_before(tracking.agent.messages, message, repairs)
        tracking.claim = items[0]
        tracking.turn_started = True
        tracking.turn_open = not closing
        tracking.tail_free = True
        self._post(tracking, [*items, *self._state_change(tracking)])
        return True

    def _queue_turn_message(self, tracking: AgentTracking, message: Message) -> None:
        closing = closes_turn(message)
        assert tracking.turn is not None
        item = self._numbered(
            tracking,
            message,
            self._usage.fields_for(tracking.agent.agent_id, message),
            None if closing else self._marker(tracking.turn),
        )
        tracking.turn_open = not closing
        # A toolUse goes out with its result (queued when the tools ran), or at the drain: it is not
        # acknowledged before then anyway, and the turn makes one command fewer.
        self._post(tracking, [item, *self._state_change(tracking)], park=_calls_tools(message))

    def _numbered(
        self,
        tracking: AgentTracking,
        message: Message,
        usage_fields: Document,
        marker: Document | None,
    ) -> QueuedMessage:
        """Number ``message`` after the latest one and make it the latest (in the manager's records)."""
        message_id = tracking.next_message_id
        item = QueuedMessage(
            SessionMessage.from_message(message, message_id),
            SessionMessage.from_message(copy.deepcopy(message), message_id),
            usage_fields,
            marker,
            previous=tracking.latest,
            turn=tracking.turn,
        )
        tracking.latest = item.record
        tracking.held.append(item.record)
        # The usage bookkeeping follows the events (the next model call's fields depend on it).
        self._usage.stored(tracking.agent.agent_id, message_id, usage_fields)
        return item

    def _marker(self, turn: str) -> Document:
        return open_marker(turn, self._turn_lease)

    def _state_change(self, tracking: AgentTracking) -> list[Item]:
        """A state write if the agent's state changed since it was last written (or queued)."""
        if in_sync(tracking.agent, tracking.synced):
            return []
        tracking.synced = sync_marker(
            tracking.agent
        )  # claimed now, so that the next event does not queue the same state again
        return [QueuedState(SessionAgent.from_agent(tracking.agent), tracking.turn)]

    def _post(self, tracking: AgentTracking, items: list[Item], *, park: bool = False) -> None:
        """Put ``items`` (after any parked ones) into the conversation's queue; ``park``: hold them back
        until the next post."""
        if tracking.queue is None:
            tracking.queue = WriteQueue(
                functools.partial(self._write_queued_messages, tracking),
                functools.partial(self._write_queued_state, tracking),
                on_sender=self.repository.runtime.keep_until_closed,
                on_failure=functools.partial(self._on_queue_failure, tracking),
            )
        tracking.unsettled = True
        if park:
            tracking.parked.extend(items)
            return
        items, tracking.parked = [*tracking.parked, *items], []
        if items:
            self.repository.runtime.post(tracking.queue.put, items)

    # -- the writes (on the client's home loop, run by the queue) --------------------------------------

    async def _write_queued_messages(self, tracking: AgentTracking, items: list[QueuedMessage]) -> None:
        await self._keep_alive()
        agent_id = tracking.agent.agent_id
        await self.repository.create_messages(
            self.session_id,
            agent_id,
            [item.written for item in items],
            session_verified=True,
            fields=[item.fields for item in items],
        )
        last = items[-1]
        holder = (last.marker or {}).get(TURN_FIELD, {}).get("holder")
        if holder is not None and holder != tracking.turn:
            # Its turn ended (a cancelled caller stopped waiting) before this write completed.
            await self.repository.annotate_message(self.session_id, agent_id, last.written.message_id, {}, [TURN_FIELD])

    async def _write_queued_state(self, tracking: AgentTracking, snapshot: SessionAgent) -> None:
        await self._keep_alive()
        new_version = await self.repository.update_agent_versioned(self.session_id, snapshot, tracking.version)
        tracking.version = new_version if new_version is not None else tracking.version + 1

    def _remember_turn_error(self, agent: LocalAgent, error: BaseException) -> None:
        """A message hook failed mid-turn: Strands raises its own wrapper of the error to the caller
        (``EventLoopException``); the invocation's end raises the library's typed error again."""
        tracking = self._agents.get(agent.agent_id)
        if tracking is not None and tracking.turn is not None and tracking.turn_error is None:
            tracking.turn_error = error

    def _take_turn_error(self, agent: LocalAgent) -> BaseException | None:
        tracking = self._agents.get(agent.agent_id)
        if tracking is None:
            return None
        error, tracking.turn_error = tracking.turn_error, None
        return error

    # -- draining (on the agent's loop) ----------------------------------------------------------------

    async def _drain_writes(self, agent: LocalAgent | None = None, *, recover: bool = False) -> None:
        """Wait for the queued writes of ``agent`` (of every agent if None); raise the first failure.

        ``recover``: the caller is a hook Strands awaits (the agent is paused), so a turn whose claim
        collided may be stored again now, which changes ``agent.messages``. Elsewhere that is left to
        the turn's next hook, and a caller that needs the writes settled gets :class:`PipelinedWriteError`.
        """
        trackings = list(self._agents.values()) if agent is None else [self._agents.get(agent.agent_id)]
        for tracking in trackings:
            if tracking is not None and tracking.unsettled:
                await self._settle(tracking, recover=recover)

    async def _settle_claim(self, tracking: AgentTracking) -> None:
        """Wait until the running turn's claim is stored (storing the turn again if it collided)."""
        claim, queue = tracking.claim, tracking.queue
        assert claim is not None
        assert queue is not None
        if not claim.stored:
            failure = await self.repository.runtime.run(queue.stored_or_failed, claim)
            if failure is not None and failure.collided_claim is not None:
                await self._settle(tracking, recover=True)
            elif failure is not None:
                # Stop before the tools run. Strands wraps what a hook raises mid-turn; the drain at the
                # end of the invocation raises the failure itself, which the caller gets.
                raise PipelinedWriteError(
                    f"the turn's first write failed; its tools were not run: {failure.error}"
                ) from failure.error
        if tracking.claim is claim and claim.stored:
            tracking.claim = None

    async def _settle(self, tracking: AgentTracking, *, recover: bool) -> None:
        self._post(tracking, [])  # what was held back goes now
        queue = tracking.queue
        assert queue is not None
        failure = await self.repository.runtime.run(queue.settle)
        if failure is None:
            tracking.unsettled = False
            tracking.claim = None
            return
        claim = failure.collided_claim
        if claim is not None and not recover and claim.turn == tracking.turn:
            raise PipelinedWriteError(
                f"the running turn of agent {tracking.agent.agent_id!r} in session {self.session_id!r} found the "
                "conversation taken by another writer and is stored again by its next step; this write was not made"
            )
        taken = queue.take_failure()
        assert taken is not None
        tracking.unsettled = False
        tracking.claim = None
        if claim is not None:
            await self._store_turn_again(tracking, claim, taken)
            return
        self._forget_unsent(tracking, taken)
        failed_turn = taken.unsent[0].turn
        if failed_turn is not None and failed_turn != tracking.turn:
            # Queued by a turn whose caller was cancelled before it was stored: nobody is left to
            # receive the error (as for any write that must finish).
            self._report_unreceived(tracking, taken)
            return
        raise taken.error

    def _on_queue_failure(self, tracking: AgentTracking, failure: Failure) -> None:
        """On the client's loop, when a queued write failed: if the turn that queued it is no longer
        running (its caller was cancelled), nobody will receive the error, so it is logged now."""
        failed_turn = failure.unsent[0].turn if failure.unsent else None
        if failed_turn is not None and failed_turn != tracking.turn:
            self._report_unreceived(tracking, failure)

    def _abandon_writes(self, agent: LocalAgent) -> None:
        """The agent's turn ended without receiving the outcome of its queued writes (its caller was
        cancelled): a failure already known is logged now, a later one when it happens."""
        tracking = self._agents.get(agent.agent_id)
        if tracking is not None and tracking.queue is not None and tracking.queue.failure is not None:
            self._report_unreceived(tracking, tracking.queue.failure)

    def _report_unreceived(self, tracking: AgentTracking, failure: Failure) -> None:
        if failure.reported:
            return
        failure.reported = True
        if failure.collided_claim is not None:
            # Not lost: the agent's next write (or turn) catches up and stores these messages again.
            logger.debug(
                "session_id=<%s> | agent_id=<%s> | the claim of a cancelled turn collided; its messages are "
                "stored again by the agent's next write",
                self.session_id,
                tracking.agent.agent_id,
            )
            return
        unsent = sum(isinstance(item, QueuedMessage) for item in failure.unsent)
        logger.error(
            "session_id=<%s> | agent_id=<%s> | a write queued by a turn whose caller was cancelled failed; "
            "%d message(s) of it were not stored",
            self.session_id,
            tracking.agent.agent_id,
            unsent,
            exc_info=failure.error,
        )

    def _forget_unsent(self, tracking: AgentTracking, failure: Failure) -> None:
        """After a failed write: the manager's records end with the last message stored."""
        unsent = [item for item in failure.unsent if isinstance(item, QueuedMessage)]
        if any(isinstance(item, QueuedState) for item in failure.unsent) or not unsent:
            tracking.synced = None  # the state was not stored: the next sync writes it again
        if not unsent:
            return
        dropped = {id(item.record) for item in unsent}
        tracking.held = [record for record in tracking.held if id(record) not in dropped]
        tracking.latest = unsent[0].previous
        if unsent[0].turn == tracking.turn:
            # The turn holds the conversation if one of its messages (each with the marker) was stored.
            started = unsent[0].claim is None
            tracking.turn_started = tracking.turn_open = started
        logger.debug(
            "session_id=<%s> | agent_id=<%s> | a queued write failed: %d message(s) not sent",
            self.session_id,
            tracking.agent.agent_id,
            len(unsent),
        )

    async def _store_turn_again(self, tracking: AgentTracking, claim: Claim, failure: Failure) -> None:
        """The turn's claim collided (nothing of it was stored): wait for the other turn, catch up, and
        store this turn's messages as one block after the stored tail, claiming anew."""
        agent = tracking.agent
        unsent = [item for item in failure.unsent if isinstance(item, QueuedMessage)]
        own = unsent[len(claim.repairs) :]  # the turn's messages; its repairs are recomputed
        agent.messages[:] = [kept for kept in agent.messages if not any(kept is repair for repair in claim.repairs)]
        dropped = {id(item.record) for item in unsent}
        tracking.held = [record for record in tracking.held if id(record) not in dropped]
        tracking.latest = claim.base
        tracking.tail_free = False
        running = tracking.turn == claim.turn
        if running:
            tracking.turn_started = tracking.turn_open = False  # until the block is stored
        old_ids = [item.record.message_id for item in own]
        deadline = asyncio.get_running_loop().time() + self._turn_wait
        # Raises SessionBusyError (nothing of this turn stored) when the other turn outlasts turn_wait.
        await self._wait_for_turn(agent, tracking, claim.message, deadline)
        while True:
            tail = tracking.latest
            if tail is not None and tail.message_id >= 0 and not closes_turn(tail.message) and not tracking.tail_free:
                # Another turn appended while this one caught up: it may hold the conversation.
                await self._wait_for_turn(agent, tracking, claim.message, deadline)
                continue
            fixed = tail is None or tail.message_id < 0 or answers(tail.message, claim.message)
            repairs = [] if fixed or tail is None else repairs_after(tail.message)
            first_id = tracking.next_message_id
            block = [SessionMessage.from_message(repair, first_id + index) for index, repair in enumerate(repairs)]
            fields: list[Document | None] = [repair_fields("interrupted") for _ in repairs]
            for index, item in enumerate(own, start=first_id + len(repairs)):
                item.record.message_id = item.written.message_id = index
                block.append(item.written)
                marker = self._marker(claim.turn) if running and not closes_turn(item.written.message) else None
                fields.append({**item.usage_fields, **(marker or {})} or None)
            try:
                await self.repository.create_messages(
                    self.session_id, agent.agent_id, block, session_verified=True, fields=fields
                )
            except DuplicateMessageError:
                await self._wait_for_turn(agent, tracking, claim.message, deadline)
                continue
            break
        if repairs:
            insert_before(agent.messages, claim.message, repairs)
        records = [*block[: len(repairs)], *(item.record for item in own)]
        tracking.held.extend(records)
        tracking.latest = records[-1]
        tracking.tail_free = True
        if running:
            tracking.turn_started = True
            tracking.turn_open = not closes_turn(records[-1].message)
        new_ids = [item.record.message_id for item in own]
        self._usage.renumbered(agent.agent_id, dict(zip(old_ids, new_ids, strict=True)))
        logger.info(
            "session_id=<%s> | agent_id=<%s> | another turn appended meanwhile: %d message(s) stored after it",
            self.session_id,
            agent.agent_id,
            len(own),
        )


def _repairs_for_claim(tracking: AgentTracking, message: Message) -> list[Message] | None:
    """The repair messages a claim queued now stores before ``message`` (see ``_turns``), or None
    when the turn must not claim without waiting: the conversation ends mid-turn as this manager last
    saw it (another turn may hold it), or ``message`` answers a toolUse the tail does not hold."""
    tail = tracking.latest
    if tail is None or tail.message_id < 0:
        return []
    if not closes_turn(tail.message) and not tracking.tail_free:
        return None
    if only_tool_results(message):
        return [] if answers(tail.message, message) else None
    return [] if answers(tail.message, message) else repairs_after(tail.message)


def _repeats_role(tracking: AgentTracking, message: Message) -> bool:
    """A user message after a user message (the prompt after Strands answered an interrupted toolUse)."""
    latest = tracking.latest
    return latest is not None and latest.message.get("role") == message.get("role") == "user"


def _calls_tools(message: Message) -> bool:
    return message.get("role") == "assistant" and any("toolUse" in block for block in message.get("content") or [])
