"""The ordered write queue of one agent conversation ("group commit").

A tool turn adds four messages; awaiting each insert before the agent continues costs four
sequential round trips. A :class:`WriteQueue` lets the agent continue at once and keeps at most one
write command of the conversation in flight: what is added while a write is in flight waits, and
when that write completes everything waiting goes out together, as ONE ordered ``insert_many``
(then, if the agent's state changed meanwhile, one write of its latest state).

Ordered and sequential gives the prefix property: when a write fails, the queue stops; nothing
after the failed message is sent, so what is stored is always a prefix of what was added. The
manager (on its own loop, while Strands awaits one of its hooks) collects the failure with
:meth:`WriteQueue.take_failure`: it reports it, or, when the failed write was a turn's claim that
collided with another writer, catches up and stores the turn again (see ``_manager_pipeline``).

The queue runs on the client's home loop (the manager posts to it with ``ClientRuntime.post`` and
waits with ``ClientRuntime.run``); a cancelled caller never cancels a write in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from pymongo.errors import BulkWriteError
from strands.types.content import Message
from strands.types.session import SessionAgent, SessionMessage

from ._types import Document
from .errors import DuplicateMessageError, PipelinedWriteError

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Claim:
    """A turn's first insert, which claims the conversation (see ``_turns``)."""

    turn: str
    # The stored tail this manager knew when the claim was queued: the claim's first id follows it.
    base: SessionMessage | None
    # The turn's first message (the agent's own object) and the repair messages put before it.
    message: Message
    repairs: list[Message]


@dataclass(eq=False)
class QueuedMessage:
    """A message insert waiting in (or sent by) the queue."""

    # The record kept for redaction and streaming updates (holds the agent's own message object) ...
    record: SessionMessage
    # ... and what is written: a copy taken when the event fired, since Strands may change the message
    # in place afterwards (a guardrail redacts the user's message mid-turn).
    written: SessionMessage
    usage_fields: Document
    # The turn marker or repair note stored with it (see ``_turns``).
    marker: Document | None = None
    # The message numbered before it: the manager's latest record if this one is not stored.
    previous: SessionMessage | None = None
    # The turn that queued it.
    turn: str | None = None
    # Set on the first message of a claim block (its repair notes, then the turn's first message).
    claim: Claim | None = None
    stored: bool = False

    @property
    def fields(self) -> Document | None:
        if not self.marker:
            return self.usage_fields or None
        return {**self.usage_fields, **self.marker}


@dataclass(eq=False)
class QueuedState:
    """A write of the agent's state (a snapshot taken when the event fired)."""

    snapshot: SessionAgent
    turn: str | None = None


Item = QueuedMessage | QueuedState


@dataclass
class Failure:
    """Why the queue stopped, and what it did not send, in order (the failed write first)."""

    error: BaseException
    unsent: list[Item] = field(default_factory=list)
    #: Set once the error was logged because no caller was left to receive it.
    reported: bool = False

    @property
    def collided_claim(self) -> Claim | None:
        """The claim whose insert found its id taken (nothing of its block, or after it, was stored)."""
        first = self.unsent[0] if self.unsent else None
        if isinstance(self.error, DuplicateMessageError) and isinstance(first, QueuedMessage):
            return first.claim
        return None


class WriteQueue:
    """The writes of one agent conversation, sent in order, one command in flight at a time.

    ``write_messages`` inserts a list of messages (one ordered ``insert_many``); ``write_state``
    writes a state snapshot. Every method but :meth:`put` runs on the queue's loop (the client's
    home loop); :meth:`put` is posted there by the manager.
    """

    def __init__(
        self,
        write_messages: Callable[[list[QueuedMessage]], Awaitable[None]],
        write_state: Callable[[SessionAgent], Awaitable[None]],
        on_sender: Callable[[asyncio.Task[None]], None] | None = None,
        on_failure: Callable[[Failure], None] | None = None,
    ) -> None:
        self._write_messages = write_messages
        self._write_state = write_state
        # Told of each sender task started (the client's runtime waits for them before it closes).
        self._on_sender = on_sender
        # Told (on the queue's loop) when a write failed and stopped the queue.
        self._on_failure = on_failure
        self._pending: list[Item] = []
        self._sender: asyncio.Task[None] | None = None
        # Callers waiting for a condition, woken after each write.
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        #: Set when a write failed: the queue sends nothing until :meth:`take_failure`.
        self.failure: Failure | None = None

    def put(self, items: list[Item]) -> None:
        """Queue ``items`` (sent in order, after everything queued before)."""
        self._pending.extend(items)
        self._kick()

    def _kick(self) -> None:
        if self._sender is None and self.failure is None and self._pending:
            self._sender = asyncio.get_running_loop().create_task(self._send())
            if self._on_sender is not None:
                self._on_sender(self._sender)

    async def _send(self) -> None:
        try:
            while self._pending and self.failure is None:
                batch = self._take_batch()
                messages = [item for item in batch if isinstance(item, QueuedMessage)]
                states = [item for item in batch if isinstance(item, QueuedState)]
                try:
                    if messages:
                        await self._write_messages(messages)
                except BaseException as error:
                    stored = _stored_before(error, len(messages))
                    self._mark_stored(messages[:stored])
                    self._stop(error, [*messages[stored:], *states])
                    continue
                self._mark_stored(messages)
                if states:
                    try:
                        # Only the latest snapshot matters: each write replaces the whole state.
                        await self._write_state(states[-1].snapshot)
                    except BaseException as error:
                        self._stop(error, states[-1:])
                        continue
                self._wake()
        finally:
            self._sender = None
            self._wake()

    def _take_batch(self) -> list[Item]:
        """Everything queued, up to (not including) the next claim block: a claim is always the first
        insert of its command, so that its collision is told apart from any other failure."""
        end = next(
            (
                index
                for index, item in enumerate(self._pending)
                if index and isinstance(item, QueuedMessage) and item.claim is not None
            ),
            len(self._pending),
        )
        batch, self._pending = self._pending[:end], self._pending[end:]
        return batch

    @staticmethod
    def _mark_stored(messages: list[QueuedMessage]) -> None:
        for item in messages:
            item.stored = True

    def _stop(self, error: BaseException, unsent: Sequence[Item]) -> None:
        cancelled = isinstance(error, asyncio.CancelledError)
        if cancelled:
            # Only when its loop shuts down (no caller can cancel the queue's task): reported as such.
            error = PipelinedWriteError("a queued write was cancelled by its event loop shutting down")
        self.failure = Failure(error, [*unsent, *self._pending])
        self._pending = []
        if self._on_failure is not None:
            self._on_failure(self.failure)
        if cancelled:
            raise asyncio.CancelledError

    async def settle(self) -> Failure | None:
        """Wait until nothing is waiting or in flight, or a failure stopped the queue; that failure.

        A cancelled caller stops waiting; the writes go on.
        """
        await self._until(lambda: self._sender is None)
        return self.failure

    async def stored_or_failed(self, item: QueuedMessage) -> Failure | None:
        """Wait until ``item`` is stored or a failure stopped the queue; that failure."""
        await self._until(lambda: item.stored or self.failure is not None or self._sender is None)
        return self.failure

    async def _until(self, condition: Callable[[], bool]) -> None:
        if condition():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((condition, waiter))
        await waiter

    def take_failure(self) -> Failure | None:
        """The failure that stopped the queue, with everything queued since (all unsent, in order);
        the queue accepts writes again. Called by the one producer after :meth:`settle` reported it
        (the queue is stopped: nothing runs on its loop that could race)."""
        failure, self.failure = self.failure, None
        if failure is not None:
            failure.unsent.extend(self._pending)
            self._pending = []
        return failure

    def _wake(self) -> None:
        waiting = []
        for condition, waiter in self._waiters:
            if waiter.done():
                continue
            if self._sender is None or condition():
                waiter.set_result(None)
            else:
                waiting.append((condition, waiter))
        self._waiters = waiting


def _stored_before(error: BaseException, sent: int) -> int:
    """How many of ``sent`` ordered inserts the server stored before ``error`` (0 when unknown)."""
    cause = error.__cause__
    if isinstance(cause, BulkWriteError):
        inserted = cause.details.get("nInserted")
        if isinstance(inserted, int) and 0 <= inserted <= sent:
            return inserted
    return 0


__all__ = ["Claim", "Failure", "Item", "QueuedMessage", "QueuedState", "WriteQueue"]
