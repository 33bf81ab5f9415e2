"""The state and plumbing shared by the parts of :class:`~.session_manager.MongoDBSessionManager`.

The manager is assembled from :class:`ManagerBase` (construction, reaching the home loop, the session
document), :class:`~._manager_turns.TurnCoordination` (one turn at a time per agent conversation),
:class:`~._manager_agents.AgentPersistence` (restoring and storing agents and their conversations),
:class:`~._manager_pipeline.PipelinedWrites` (pipelined writes of an invocation) and
:class:`~._manager_records.SessionRecords` (metadata, feedback, agent configuration).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import logging
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from strands.types.session import SessionMessage

from . import _codec as codec
from . import _compat
from ._client_options import check_client_options
from ._clients import DEFAULT_COLLECTION_NAME, DEFAULT_DATABASE_NAME
from ._pipeline import QueuedMessage, QueuedState, WriteQueue
from ._runtime import running_loop
from ._sync_client import SyncClientSource
from ._turns import DEFAULT_TURN_LEASE, DEFAULT_TURN_WAIT
from ._types import Document
from ._validation import validate_id
from .encryption import EncryptionOptions
from .errors import (
    ClosedError,
    InvalidInputError,
    NotFoundError,
)
from .hooks import Hook
from .repository import AsyncMongoDBSessionRepository
from .sync_repository import MongoDBSessionRepository
from .usage import UsageTracker

if TYPE_CHECKING:
    from strands.types.agent import LocalAgent

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Set inside a scheduled write (see _run_blocking_or_defer), which must not wait for itself.
_in_deferred_write: contextvars.ContextVar[bool] = contextvars.ContextVar("in_deferred_write", default=False)


@dataclass
class AgentTracking:
    """What the manager remembers about one initialized agent."""

    agent: LocalAgent
    latest: SessionMessage | None = None
    # Messages still in agent.messages, to find a message again for redaction or streaming updates.
    held: list[SessionMessage] = field(default_factory=list)
    # len(held) after its last pruning: pruning again waits until it has doubled (amortized O(1)).
    held_pruned_at: int = 0
    synced: Document | None = None
    # Set when the agent was initialized from preloaded data without a stored record yet: the record
    # (and any messages the agent started with) is written before the agent's first write.
    pending_create: bool = False
    # The stored record's version this manager last saw or wrote (optimistic concurrency).
    version: int = 0
    # The configuration (model id, system prompt) last read or written; None until known.
    config: Document | None = None
    # The running turn (see _turns): its holder token, whether its first message is stored, and
    # whether the last message it stored still carries an open marker.
    turn: str | None = None
    turn_started: bool = False
    turn_open: bool = False
    # The stored tail is known not to be held by another turn (this manager wrote or checked it).
    tail_free: bool = False
    # Pipelined writes (see _manager_pipeline): the conversation's write queue; whether anything was
    # queued since it was last seen settled; the running turn's claim while its outcome is unknown.
    queue: WriteQueue | None = None
    unsettled: bool = False
    claim: QueuedMessage | None = None
    # Writes held back until the next message (a toolUse waits for its result: one insert for both).
    parked: list[QueuedMessage | QueuedState] = field(default_factory=list)
    # An error a message hook raised mid-turn, which Strands wraps: the invocation's end raises it again.
    turn_error: BaseException | None = None

    @property
    def next_message_id(self) -> int:
        return 0 if self.latest is None else self.latest.message_id + 1


@dataclass
class Preloaded:
    offset: int
    messages: list[SessionMessage]


class ManagerBase:
    """Construction and plumbing of :class:`~.session_manager.MongoDBSessionManager` (see the module docstring)."""

    def __init__(
        self,
        session_id: str,
        connection_string: str | None = None,
        database_name: str = DEFAULT_DATABASE_NAME,
        collection_name: str = DEFAULT_COLLECTION_NAME,
        client: Any = None,
        metadata_fields: Sequence[str] | None = None,
        metadata_hook: Hook | None = None,
        feedback_hook: Hook | None = None,
        application_name: str | None = None,
        *,
        repository: AsyncMongoDBSessionRepository | None = None,
        isolate_application: bool = False,
        ensure_indexes: bool = True,
        ttl_seconds: int | None = None,
        touch_after: int | None = None,
        sync_client: SyncClientSource | None = None,
        encryption: EncryptionOptions | None = None,
        pipelined_writes: bool = True,
        turn_wait: float = DEFAULT_TURN_WAIT,
        turn_lease: float = DEFAULT_TURN_LEASE,
        **kwargs: Any,
    ) -> None:
        if not isinstance(pipelined_writes, bool):
            raise InvalidInputError("pipelined_writes must be True or False")
        if isinstance(turn_wait, bool) or not (isinstance(turn_wait, (int, float)) and turn_wait >= 0):
            raise InvalidInputError(f"turn_wait must be a number of seconds >= 0, got {turn_wait!r}")
        if isinstance(turn_lease, bool) or not (isinstance(turn_lease, (int, float)) and turn_lease > 0):
            raise InvalidInputError(f"turn_lease must be a number of seconds > 0, got {turn_lease!r}")
        self._turn_wait = float(turn_wait)
        self._turn_lease = float(turn_lease)
        metadata_hook = _renamed_argument(kwargs, "metadataHook", "metadata_hook", metadata_hook)
        feedback_hook = _renamed_argument(kwargs, "feedbackHook", "feedback_hook", feedback_hook)
        self.session_id = validate_id(session_id, "session")
        check_client_options(kwargs)
        owns_sync_client = False
        if repository is None:
            repository = AsyncMongoDBSessionRepository(
                connection_string,
                database_name,
                collection_name,
                client,
                metadata_fields,
                application_name,
                isolate_application=isolate_application,
                ensure_indexes=ensure_indexes,
                ttl_seconds=ttl_seconds,
                touch_after=touch_after,
                encryption=encryption,
                **kwargs,
            )
            self._owns_repository = True
            if sync_client is None:
                sync_client = SyncClientSource.for_arguments(connection_string, client, kwargs)
                owns_sync_client = True
        else:
            if ttl_seconds is not None or touch_after is not None or isolate_application or encryption is not None:
                raise InvalidInputError(
                    "ttl_seconds, touch_after, isolate_application and encryption belong to the repository when "
                    "one is given"
                )
            if kwargs:
                raise InvalidInputError(f"client options {sorted(kwargs)} belong to the repository when one is given")
            self._owns_repository = False
        if sync_client is None:
            sync_client = SyncClientSource(unavailable="this manager was built on a repository without one")
        self._owns_sync_client = owns_sync_client
        self._sync_client = sync_client
        self._session_repository: MongoDBSessionRepository | None = None
        self._restored_configs: dict[str, Document] = {}
        self.repository = repository
        self.metadata_hook = metadata_hook
        self.feedback_hook = feedback_hook
        self._session_document: Document | None = None
        self._preloaded: dict[str, Preloaded] = {}
        self._preloaded_session = False
        # Set when a preload found no stored session: reads stay reads, the first write creates it.
        self._session_absent = False
        self._agents: dict[str, AgentTracking] = {}
        self._multi_agent_states: dict[str, Document] = {}
        self._deferred: list[asyncio.Task[None]] = []
        # Writes of an invocation queued without waiting (see _manager_pipeline).
        self.pipelined_writes = pipelined_writes
        self._closed = False
        self._usage = UsageTracker(self.repository.application_name)
        # Redactions from Strands' own guardrail flow, whose stop reason the model call reports later.
        self._redactions_without_stop_reason: dict[str, list[int]] = {}

    # -- plumbing ---------------------------------------------------------------------------------

    def _run_blocking(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run an ``*_async`` method on the client's home loop, blocking this thread."""
        self._check_open()
        return self.repository.runtime.run_blocking(function, *args)

    def _run_blocking_or_defer(self, function: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        """Blocking call, except on the client's own loop (Strands calls redaction and context-overflow
        syncs synchronously mid-turn): there the write is scheduled, and the next awaited write of this
        manager, or :meth:`close_async`, waits for it first, which keeps the writes in order."""
        self._check_open()
        if not self._writes_unsettled() and not self.repository.runtime.is_home_loop(running_loop()):
            self._run_blocking(function, *args)
            return
        # On the client's own loop, or with pipelined writes of this turn queued (whose loop may be this
        # thread's): blocking would stall them, so the write is scheduled here, after them.
        previous = self._deferred[-1] if self._deferred else None
        self._deferred.append(asyncio.get_running_loop().create_task(self._deferred_write(previous, function(*args))))

    async def _deferred_write(self, previous: asyncio.Task[None] | None, write: Coroutine[Any, Any, None]) -> None:
        """Run a scheduled write after the one scheduled before it and after the queued writes."""
        # The write (and the tasks it starts) must not wait for the scheduled writes: it is one of them.
        _in_deferred_write.set(True)
        try:
            if previous is not None:
                with contextlib.suppress(Exception):  # its failure is reported by _flush_deferred
                    await asyncio.shield(previous)
            await self._drain_writes()
        except BaseException:
            write.close()
            raise
        await write

    def _writes_unsettled(self) -> bool:
        return any(tracking.unsettled for tracking in self._agents.values())

    async def _drain_writes(self, agent: LocalAgent | None = None, *, recover: bool = False) -> None:
        """Wait for the queued writes of ``agent`` (of every agent if None), raising the first failure
        (implemented by :class:`~._manager_pipeline.PipelinedWrites`)."""

    async def _flush_deferred(self) -> None:
        if _in_deferred_write.get():
            return
        if self._writes_unsettled():
            await self._drain_writes()
        while self._deferred:
            # Shielded and popped only once done: a cancelled caller must not cancel (or lose) the write.
            await asyncio.shield(self._deferred[0])
            if self._deferred and self._deferred[0].done():
                self._deferred.pop(0)

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"session manager for {self.session_id!r} is closed")

    async def _keep_alive(self) -> None:
        """Before a write: push the session's expiry back if a touch is due (at most once per
        ``touch_after``). Raises :class:`SessionExpiredError` if the session expired meanwhile."""
        if self._session_document is not None:
            await self.repository.touch_if_due(self.session_id, self._session_document)

    async def _session(self) -> Document:
        if self._session_document is None:
            document, created = await self.repository.load_session(self.session_id)
            assert document is not None
            self._session_document = document
            self._session_absent = False
            if created:
                logger.debug("session_id=<%s> | created session", self.session_id)
        return self._session_document

    async def _reload_agent_record(self, agent_id: str) -> Document:
        document, _ = await self.repository.load_session(self.session_id, create=False)
        record = codec.find_record((document or {}).get("agents"), "agent_id", agent_id)
        if document is None or record is None:
            raise NotFoundError(f"agent {agent_id!r} of session {self.session_id!r} disappeared while initializing")
        self._session_document = document
        return record


def _renamed_argument(kwargs: dict[str, Any], old: str, new: str, value: Any) -> Any:
    """Take the deprecated spelling ``old`` out of ``kwargs`` (warning), unless ``new`` was given too."""
    if old not in kwargs:
        return value
    warnings.warn(f"{old}= is deprecated, use {new}=", DeprecationWarning, stacklevel=3)
    legacy = kwargs.pop(old)
    return value if value is not None else legacy


def record_version(record: Document) -> int:
    version = record.get("version")
    return version if isinstance(version, int) else 0


def sync_marker(agent: LocalAgent) -> Document:
    """A snapshot of what ``sync_agent`` compares to decide whether the stored agent is stale (deep
    copies: later changes to the agent do not alter it)."""
    return copy.deepcopy(_marker_view(agent))


def in_sync(agent: LocalAgent, synced: Document | None) -> bool:
    """Whether ``agent`` still matches the snapshot ``synced`` (compared in place, nothing copied:
    this runs after every message, a snapshot only when something changed)."""
    return synced is not None and _marker_view(agent) == synced


def _marker_view(agent: LocalAgent) -> Document:
    from strands.agent.agent import Agent

    if not isinstance(agent, Agent):
        return {"state": agent.state.get()}
    return {
        "state_version": _compat.state_version(agent.state),
        # Content, not version: Strands bumps the version in every tool cycle even when nothing changed.
        "interrupt_state": _compat.interrupt_state(agent),
        "conversation_manager_state": agent.conversation_manager.get_state(),
        "model_state": _compat.model_state(agent),
    }
