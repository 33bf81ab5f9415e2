"""One turn at a time: the part of the session manager that lets a turn claim an agent's stored
conversation, waits for another writer's turn to end, and releases the conversation (see ``_turns``)."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from strands.agent.state import AgentState
from strands.types.content import Message
from strands.types.session import SessionMessage

from . import _codec as codec
from ._manager_base import AgentTracking, ManagerBase, record_version, sync_marker
from ._must_finish import must_finish
from ._turns import (
    TURN_FIELD,
    answers,
    closes_turn,
    held_by_another,
    only_tool_results,
    open_marker,
    repair_fields,
    repairs_after,
)
from ._types import Document
from .errors import ConcurrentModificationError, DuplicateMessageError, SessionBusyError

if TYPE_CHECKING:
    from strands.hooks import BeforeInvocationEvent
    from strands.types.agent import LocalAgent


logger = logging.getLogger(__name__)

# How many times a message is renumbered after colliding with another writer's before giving up.
# Each collision means another writer's insert succeeded, so the system progresses; the cap only bounds
# how long one writer may keep losing.
MAX_RENUMBERING = 100


class TurnCoordination(ManagerBase):
    """Turns of agents and renumbering of colliding messages (see :class:`~.session_manager.MongoDBSessionManager`)."""

    async def _release_late(self, agent: LocalAgent, message_id: int) -> None:
        """A write whose caller was cancelled completed after its turn ended (nobody released it then)."""
        await self.repository.annotate_message(self.session_id, agent.agent_id, message_id, {}, [TURN_FIELD])

    async def _store_renumbering(self, agent_id: str, session_message: SessionMessage, usage_fields: Document) -> None:
        """Insert the message; if another writer took its id, renumber it after the highest stored id."""
        for _ in range(MAX_RENUMBERING):
            try:
                await self.repository.create_message(
                    self.session_id, agent_id, session_message, session_verified=True, fields=usage_fields
                )
                return
            except DuplicateMessageError:
                # Another writer (process or task) stored a message under this id. Strands numbers
                # messages in memory, so renumber after the highest stored id; never overwrite.
                last = await self.repository.last_message_id(self.session_id, agent_id, session_verified=True)
                renumbered = 0 if last is None else last + 1
                logger.info(  # expected under concurrency: not a WARNING per message
                    "session_id=<%s> | agent_id=<%s> | message id %d taken by another writer, storing as %d",
                    self.session_id,
                    agent_id,
                    session_message.message_id,
                    renumbered,
                )
                session_message.message_id = renumbered
                # Racers that collided together compute the same next id; a little jitter spreads them.
                await asyncio.sleep(random.uniform(0, 0.002))  # noqa: S311 - not cryptographic
        raise ConcurrentModificationError(
            f"could not store a message of agent {agent_id!r} in session {self.session_id!r}: "
            f"{MAX_RENUMBERING} concurrent writers took every id tried"
        )

    async def _start_turn(
        self,
        agent: LocalAgent,
        tracking: AgentTracking,
        message: Message,
        session_message: SessionMessage,
        usage_fields: Mapping[str, Any] | None,
    ) -> bool:
        """Store the turn's first message right after the stored tail, claiming the conversation.

        Uncontended this is the message's own insert. When another writer appended since this
        manager last saw the conversation (the insert collides) or holds its tail, wait for that turn,
        continue from the stored conversation, and try again until ``turn_wait`` runs out. Returns
        False when the message became obsolete meanwhile (Strands' answer to an interrupted toolUse
        that the other turn answered): it is then dropped from ``agent.messages``, not stored.
        """
        assert tracking.turn is not None
        turn = tracking.turn
        deadline = asyncio.get_running_loop().time() + self._turn_wait
        while True:
            tail = tracking.latest
            if tail is not None and tail.message_id >= 0 and not closes_turn(tail.message) and not tracking.tail_free:
                # The conversation ends mid-turn as this manager last saw it: another turn may hold it.
                await self._wait_for_turn(agent, tracking, message, deadline)
                continue
            if tail is not None and only_tool_results(message) and not answers(tail.message, message):
                agent.messages[:] = [kept for kept in agent.messages if kept is not message]
                return False
            fixed = tail is None or tail.message_id < 0 or answers(tail.message, message)
            repairs = [] if fixed or tail is None else repairs_after(tail.message)
            first_id = tracking.next_message_id
            records = [SessionMessage.from_message(repair, first_id + index) for index, repair in enumerate(repairs)]
            session_message.message_id = first_id + len(records)
            closing = closes_turn(message)
            fields: list[Mapping[str, Any] | None] = [repair_fields("interrupted") for _ in records]
            fields.append({**(usage_fields or {}), **({} if closing else open_marker(turn, self._turn_lease))})
            try:
                await self.repository.create_messages(
                    self.session_id, agent.agent_id, [*records, session_message], session_verified=True, fields=fields
                )
            except DuplicateMessageError:
                await self._wait_for_turn(agent, tracking, message, deadline)
                continue
            if records:
                logger.info(
                    "session_id=<%s> | agent_id=<%s> | stored %d message(s) answering an interrupted turn",
                    self.session_id,
                    agent.agent_id,
                    len(records),
                )
                insert_before(agent.messages, message, [record.to_message() for record in records])
            tracking.held.extend([*records, session_message])
            tracking.latest = session_message
            tracking.tail_free = True
            if tracking.turn != turn:  # the turn ended (its caller was cancelled) while this write ran
                if not closing:
                    await self._release_late(agent, session_message.message_id)
                return True
            tracking.turn_started = True
            tracking.turn_open = not closing
            return True

    async def _wait_for_turn(
        self, agent: LocalAgent, tracking: AgentTracking, pending: Message, deadline: float
    ) -> None:
        """Wait until no other turn holds the stored conversation, then catch up with it: the stored
        messages this manager has not seen go into ``agent.messages`` before ``pending``."""
        loop = asyncio.get_running_loop()
        delay = 0.01
        while True:
            last = await self.repository.last_message(self.session_id, agent.agent_id, session_verified=True)
            if last is None or closes_turn(last[0].message) or not held_by_another(last[1], tracking.turn):
                break
            if loop.time() + delay > deadline:
                raise SessionBusyError(
                    f"another turn of agent {agent.agent_id!r} in session {self.session_id!r} is still running "
                    f"after {self._turn_wait:g} s; nothing of this turn was stored"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)
        stored = await self.repository.list_messages(
            self.session_id, agent.agent_id, offset=tracking.next_message_id, session_verified=True
        )
        if stored:
            logger.debug(
                "session_id=<%s> | agent_id=<%s> | caught up with %d message(s) stored by another turn",
                self.session_id,
                agent.agent_id,
                len(stored),
            )
            insert_before(agent.messages, pending, [record.to_message() for record in stored])
            tracking.held.extend(stored)
            tracking.latest = stored[-1]
            record = await self._reload_agent_record(agent.agent_id)
            tracking.version = record_version(record)
            agent.state = AgentState(codec.agent_from_record(record).state)
            tracking.synced = sync_marker(agent)
        # Free only if nothing was appended between the check and the catch-up (else check that again).
        checked = -1 if last is None else last[0].message_id
        tracking.tail_free = tracking.latest is None or tracking.latest.message_id == checked

    async def _on_before_invocation(self, event: BeforeInvocationEvent) -> None:
        tracking = self._agents.get(event.agent.agent_id)
        if tracking is not None and not tracking.turn_started:  # else it started with Strands' toolUse answer
            tracking.turn = uuid.uuid4().hex
            tracking.turn_open = False

    def _end_turn(self, agent: LocalAgent) -> int | None:
        """End the agent's turn; the id of its last stored message if that still holds the
        conversation (the turn did not end with a final answer: an error, a cancellation, an
        interrupt) and must be released, else None."""
        tracking = self._agents.get(agent.agent_id)
        if tracking is None or tracking.turn is None:
            return None
        held, latest = tracking.turn_open, tracking.latest
        tracking.turn = None
        tracking.turn_started = tracking.turn_open = False
        return latest.message_id if held and latest is not None else None

    @must_finish
    async def _release_turn(self, agent: LocalAgent, message_id: int) -> None:
        """Remove the turn marker of the turn's last stored message: the conversation is free."""
        await self.repository.annotate_message(self.session_id, agent.agent_id, message_id, {}, [TURN_FIELD])


def insert_before(messages: list[Message], pending: Message, stored: list[Message]) -> None:
    """Put ``stored`` before ``pending`` in ``messages`` (at the end if ``pending`` is not there)."""
    index = next((i for i in range(len(messages) - 1, -1, -1) if messages[i] is pending), len(messages))
    messages[index:index] = stored
