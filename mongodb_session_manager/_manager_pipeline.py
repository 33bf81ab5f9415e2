"""Pipelined writes of an agent invocation: the manager's ``MessageAddedEvent`` path when
``pipelined_writes`` is on (the default).

When a message is added, the manager numbers it at once (so numbering follows the events), starts
its insert and, if the agent's state changed, its state write, and returns: the agent continues
without waiting for the round trips. State writes are chained (each waits for the previous one,
whose version it checks). Before the invocation returns (``AfterInvocationEvent``), and before any
other write or read of the manager, :meth:`PipelinedWrites._drain_pipeline` waits for all of them in
issue order and raises the first failure; so what a caller sees acknowledged is stored, exactly as
when each write was awaited on the spot (docs/sync-and-async.md).

If another writer stored messages under ids this manager issued meanwhile (two managers appending to
the same conversation at once), the slots this manager did get are refilled with its messages in
their order and the rest are appended after the highest stored id: each writer's messages stay in
order and none is lost, as on the awaited path.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import TYPE_CHECKING

from strands.types.content import Message
from strands.types.session import SessionAgent, SessionMessage

from ._manager_agents import AgentPersistence
from ._manager_base import AgentTracking, sync_marker
from ._pipeline import Issued
from .errors import DuplicateMessageError

if TYPE_CHECKING:
    from strands.types.agent import LocalAgent

logger = logging.getLogger(__name__)


class PipelinedWrites(AgentPersistence):
    """The pipelined variant of storing an agent's new messages and state (see the module docstring)."""

    def _can_pipeline(self, agent: LocalAgent) -> bool:
        """Pipelining applies to agents already stored, with no deferred write pending; anything else
        (the agent's first write, a redaction scheduled mid-turn) takes the awaited path."""
        if self._pipeline is None or self._closed or self._deferred:
            return False
        tracking = self._agents.get(agent.agent_id)
        return tracking is not None and not tracking.pending_create

    def _issue_message(self, message: Message, agent: LocalAgent) -> None:
        pipeline = self._pipeline
        assert pipeline is not None  # _can_pipeline said so
        tracking = self._agents[agent.agent_id]
        message_id = tracking.next_message_id
        issued = Issued(
            tracking,
            SessionMessage.from_message(message, message_id),
            SessionMessage.from_message(copy.deepcopy(message), message_id),
            self._usage.fields_for(agent.agent_id, message),
        )
        tracking.latest = issued.message
        tracking.held.append(issued.message)
        # The usage bookkeeping follows the events (the next model call's fields depend on it).
        self._usage.stored(agent.agent_id, message_id, issued.usage_fields)
        pipeline.issued.append(issued)
        pipeline.issue(self._insert_issued(agent.agent_id, issued))
        marker = sync_marker(agent)
        if tracking.synced is not None and marker == tracking.synced:
            return
        tracking.synced = marker  # claimed now, so that the next event does not issue the same state again
        previous = pipeline.state_writes.get(agent.agent_id)
        pipeline.state_writes[agent.agent_id] = pipeline.issue(
            self._write_state(tracking, SessionAgent.from_agent(agent)), after=previous
        )

    async def _insert_issued(self, agent_id: str, issued: Issued) -> None:
        await self._keep_alive()
        try:
            await self.repository.create_message(
                self.session_id, agent_id, issued.written, session_verified=True, fields=issued.usage_fields
            )
        except DuplicateMessageError:
            issued.collided = True
            return
        issued.stored = True

    async def _write_state(self, tracking: AgentTracking, session_agent: SessionAgent) -> None:
        try:
            await self._keep_alive()
            new_version = await self.repository.update_agent_versioned(self.session_id, session_agent, tracking.version)
        except BaseException:
            tracking.synced = None  # not stored: the next sync writes it again
            raise
        tracking.version = new_version if new_version is not None else tracking.version + 1

    async def _drain_pipeline(self) -> None:
        """Wait for the pipelined writes, settle id collisions; raises the first failure."""
        pipeline = self._pipeline
        if pipeline is None:
            return
        try:
            await pipeline.drain()
        except asyncio.CancelledError:
            raise  # the writes go on; the next drain waits for them and settles
        except BaseException:
            for item in pipeline.settled():
                if not item.stored:
                    _forget(item)
            raise
        issued = pipeline.settled()
        if any(item.collided for item in issued):
            await self._settle_collisions(issued)

    async def _settle_collisions(self, issued: list[Issued]) -> None:
        by_agent: dict[str, list[Issued]] = {}
        for item in issued:
            by_agent.setdefault(item.tracking.agent.agent_id, []).append(item)
        for agent_id, items in by_agent.items():
            if not any(item.collided for item in items):
                continue
            # The ids this manager got, lowest first, take its messages in issue order ...
            slots = sorted(item.message.message_id for item in items if item.stored)
            for item, slot in zip(items, slots, strict=False):
                if item.message.message_id != slot:
                    item.message.message_id = item.written.message_id = slot
                    await self.repository.update_message(self.session_id, agent_id, item.written, session_verified=True)
                    item.stored = True
            # ... and the messages left over follow the highest stored id.
            next_id = max(item.message.message_id for item in items) + 1
            for item in items[len(slots) :]:
                item.written.message_id = next_id
                await self._store_renumbering(agent_id, item.written, item.usage_fields)
                item.message.message_id = item.written.message_id
                item.stored = True
                next_id = item.message.message_id + 1
            items[-1].tracking.latest = max((item.message for item in items), key=lambda record: record.message_id)
            logger.info(
                "session_id=<%s> | agent_id=<%s> | another writer appended meanwhile: %d message(s) renumbered",
                self.session_id,
                agent_id,
                len(items) - len(slots),
            )


def _forget(issued: Issued) -> None:
    """Drop a message that was not stored from the records kept for redaction and streaming updates."""
    issued.tracking.held = [record for record in issued.tracking.held if record is not issued.message]
