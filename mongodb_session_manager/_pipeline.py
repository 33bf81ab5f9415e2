"""Writes of one agent invocation issued without waiting, and awaited together before it returns.

A tool turn adds four messages; awaiting each insert before the agent continues costs four
sequential round trips. A :class:`WritePipeline` starts each write as its own task when the event
fires and lets the agent continue; :meth:`WritePipeline.drain` (at ``AfterInvocationEvent``, and
before any other write or read of the manager) waits for all of them, in the order they were issued,
and raises the first failure. What the caller sees acknowledged (the invocation returned) is stored,
exactly as when every write was awaited on the spot.

Writes whose order matters are chained by the caller: :meth:`WritePipeline.issue` takes ``after``, a
task to wait for first (the previous agent-state write, whose version the next one checks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strands.types.session import SessionMessage

from ._types import Document
from .errors import PipelinedWriteError

if TYPE_CHECKING:
    from ._manager_base import AgentTracking

logger = logging.getLogger(__name__)


@dataclass
class Issued:
    """A message insert started by the pipeline, and how it went."""

    tracking: AgentTracking
    # The record kept for redaction and streaming updates (holds the agent's own message object) ...
    message: SessionMessage
    # ... and what is written: a copy taken when the event fired, since Strands may change the message
    # in place afterwards (a guardrail redacts the user's message mid-turn).
    written: SessionMessage
    usage_fields: Document
    stored: bool = False
    # The id was taken by another writer: stored again, in order, by _settle_collisions.
    collided: bool = False


class WritePipeline:
    """Tasks of writes in flight, in issue order. One per session manager; used on one event loop at a time.

    Several drains may run at once (a write scheduled mid-turn drains too): each task is taken, and
    its failure reported, by one of them.
    """

    __slots__ = ("_pending", "issued", "state_writes")

    def __init__(self) -> None:
        self._pending: list[asyncio.Task[Any]] = []
        #: The message inserts started since the last drain, in issue order (kept by the manager).
        self.issued: list[Issued] = []
        #: The latest agent-state write per agent id: the next one waits for it.
        self.state_writes: dict[str, asyncio.Task[Any]] = {}

    def settled(self) -> list[Issued]:
        """After a drain: the inserts it waited for (forgotten here), and no state write to wait for."""
        issued, self.issued = self.issued, []
        self.state_writes.clear()
        return issued

    def __bool__(self) -> bool:
        return bool(self._pending)

    def issue(
        self, coroutine: Coroutine[Any, Any, Any], *, after: asyncio.Task[Any] | None = None
    ) -> asyncio.Task[Any]:
        """Start ``coroutine`` now as a task (after ``after`` finished, if given) and return the task."""
        if after is not None and not after.done():
            coroutine = _after(after, coroutine)
        task = asyncio.get_running_loop().create_task(coroutine)
        self._pending.append(task)
        return task

    async def drain(self) -> None:
        """Wait for every issued write, in issue order; then raise the first failure, if any.

        A cancelled caller stops waiting, but the writes go on (each is its own task, shielded here) and
        the next drain waits for them again. The failure is raised as the write raised it (as if it
        had been awaited on the spot); a write cancelled by its event loop shutting down is reported
        as :class:`PipelinedWriteError`.
        """
        first_error: BaseException | None = None
        while self._pending:
            task = self._pending[0]
            if not task.done():
                with contextlib.suppress(BaseException):
                    await asyncio.shield(task)
                if not task.done():  # only when this caller was cancelled: leave it for the next drain
                    raise asyncio.CancelledError
            if not self._pending or self._pending[0] is not task:
                continue  # another drain (a write scheduled mid-turn) took it
            self._pending.pop(0)
            if task.cancelled():
                error: BaseException | None = PipelinedWriteError("a pipelined write was cancelled")
            else:
                error = task.exception()
            if error is not None and first_error is None:
                first_error = error
            elif error is not None:
                logger.debug("a further pipelined write failed too: %r", error)
        if first_error is not None:
            raise first_error


async def _after(previous: asyncio.Task[Any], coroutine: Coroutine[Any, Any, Any]) -> Any:
    try:
        with contextlib.suppress(BaseException):
            await asyncio.shield(previous)
        if not previous.done():
            raise asyncio.CancelledError
        if not previous.cancelled() and previous.exception() is not None:
            # The write this one depends on failed: do not write on top of it (drain reports the failure).
            raise PipelinedWriteError("an earlier write this one depends on failed; not written")
        return await coroutine
    finally:
        coroutine.close()  # no-op once awaited; avoids a "never awaited" warning when skipped
