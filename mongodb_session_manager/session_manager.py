"""``MongoDBSessionManager``: a Strands session manager persisting agents in MongoDB.

Strands calls a session manager at fixed points of an agent's life. The data path:

* ``Agent(...)`` fires ``AgentInitializedEvent`` (sync by Strands' rules) -> :meth:`initialize`:
  one read of the session document (agents included, created if missing) and one read of the
  messages, or none when :meth:`load_async` already fetched them.
* Every new message fires ``MessageAddedEvent`` -> an ``async`` callback: one insert into
  ``<collection>.messages``, then an agent-state write only if the state changed.
* ``AfterInvocationEvent`` -> ``async`` callback: agent-state write only if something changed.

The async callbacks await the core on the client's home loop, so ``await agent.invoke_async(...)``
never blocks its loop on MongoDB. Each public method has an awaitable ``*_async`` twin holding the
logic; the blocking variant runs that twin on the home loop.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import random
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from strands.agent.state import AgentState
from strands.hooks import (
    AfterInvocationEvent,
    AfterModelCallEvent,
    AfterMultiAgentInvocationEvent,
    AfterNodeCallEvent,
    AfterToolCallEvent,
    AgentInitializedEvent,
    BeforeInvocationEvent,
    HookRegistry,
    MessageAddedEvent,
    MessageUpdatedEvent,
    MultiAgentInitializedEvent,
)
from strands.session.session_manager import SessionManager
from strands.types.content import Message
from strands.types.exceptions import SessionException
from strands.types.session import SessionAgent, SessionMessage

from . import _codec as codec
from . import _compat
from ._client_options import check_client_options
from ._clients import DEFAULT_COLLECTION_NAME, DEFAULT_DATABASE_NAME
from ._runtime import running_loop
from ._sync_client import SyncClientSource
from ._types import Document
from ._validation import validate_id
from .audit import redaction_record, summary_update
from .errors import (
    AlreadyExistsError,
    ClosedError,
    ConcurrentModificationError,
    DuplicateMessageError,
    InvalidInputError,
    NotFoundError,
    WrongLoopError,
)
from .guardrails import GUARDRAIL_STOP_REASONS
from .hooks import Hook, call_with_hook, flush_session, flush_session_async
from .repository import AsyncMongoDBSessionRepository
from .sync_repository import MongoDBSessionRepository
from .usage import INVOCATION_FIELD, UsageTracker

if TYPE_CHECKING:
    from strands.agent.agent import Agent
    from strands.multiagent.base import MultiAgentBase
    from strands.types.agent import LocalAgent
    from strands.types.tools import AgentTool

logger = logging.getLogger(__name__)

T = TypeVar("T")

# How many times a message is renumbered after colliding with another writer's before giving up.
# Each collision means another writer's insert succeeded, so the system progresses; the cap only bounds
# how long one writer may keep losing.
_MAX_RENUMBERING = 100


@dataclass
class _AgentTracking:
    """What the manager remembers about one initialized agent."""

    agent: LocalAgent
    latest: SessionMessage | None = None
    # Messages still in agent.messages, to find a message again for redaction or streaming updates.
    held: list[SessionMessage] = field(default_factory=list)
    synced: Document | None = None
    # Set when the agent was initialized from preloaded data without a stored record yet: the record
    # (and any messages the agent started with) is written before the agent's first write.
    pending_create: bool = False
    # The stored record's version this manager last saw or wrote (optimistic concurrency).
    version: int = 0
    # The configuration (model id, system prompt) last read or written; None until known.
    config: Document | None = None

    @property
    def next_message_id(self) -> int:
        return 0 if self.latest is None else self.latest.message_id + 1


@dataclass
class _Preloaded:
    offset: int
    messages: list[SessionMessage]


class MongoDBSessionManager(SessionManager):
    """Persist Strands agents, multi-agent orchestrators, metadata and feedback in MongoDB.

    Create it from a connection string (it then owns its client and :meth:`close` closes it), from a
    borrowed ``client`` (``pymongo.AsyncMongoClient``, ``pymongo.MongoClient`` or Motor's
    ``AsyncIOMotorClient``; left open), or, the fast way, from
    :meth:`MongoDBSessionManagerFactory.create_session_manager`, which shares one client.

    Construction does no I/O. Pass the manager to ``strands.Agent(session_manager=...)``.

    With ``ttl_seconds``, the session (messages and feedback included) is removed at least that many
    seconds after its last activity; activity pushes the expiry back at most once per
    ``touch_after`` seconds. A manager whose session expired meanwhile raises
    :class:`SessionExpiredError` instead of writing.

    ``application_name`` is a label stored on the session when it is created (and indexed);
    ``isolate_application=True`` additionally hides sessions stored under another name or none.
    ``metadataHook=`` / ``feedbackHook=`` are deprecated spellings of the hook arguments. Any other
    keyword must be a MongoDB client option: an unknown one raises :class:`InvalidInputError` here.
    """

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
        **kwargs: Any,
    ) -> None:
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
                **kwargs,
            )
            self._owns_repository = True
            if sync_client is None:
                sync_client = SyncClientSource.for_arguments(connection_string, client, kwargs)
                owns_sync_client = True
        else:
            if ttl_seconds is not None or touch_after is not None or isolate_application:
                raise InvalidInputError(
                    "ttl_seconds, touch_after and isolate_application belong to the repository when one is given"
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
        self._preloaded: dict[str, _Preloaded] = {}
        self._preloaded_session = False
        self._agents: dict[str, _AgentTracking] = {}
        self._multi_agent_states: dict[str, Document] = {}
        self._deferred: list[asyncio.Task[None]] = []
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
        if not self.repository.runtime.is_home_loop(running_loop()):
            self._run_blocking(function, *args)
            return
        self._deferred.append(asyncio.get_running_loop().create_task(function(*args)))

    async def _flush_deferred(self) -> None:
        while self._deferred:
            await self._deferred.pop(0)

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
            if created:
                logger.debug("session_id=<%s> | created session", self.session_id)
        return self._session_document

    @property
    def session_repository(self) -> MongoDBSessionRepository:
        """A blocking repository over this manager's storage, as the earlier library exposed it.

        Its ``client``, ``database`` and ``collection`` (the sessions collection) are blocking PyMongo
        objects for direct queries: the ``MongoClient`` this manager was given, or one created from the
        connection string on first access (closed with the manager or factory that owns it).

        The earlier library created the session when the manager was built, and code that queries the
        collection directly relies on that: the first access loads the session, creating it if missing
        (one round trip; skipped on the event loop an async client passed in is bound to).
        """
        if self._session_repository is None:
            if self._session_document is None and not self.repository.runtime.is_home_loop(running_loop()):
                self.ensure_session()
            self._session_repository = MongoDBSessionRepository.wrapping(self.repository, self._sync_client)
        return self._session_repository

    # -- loading ----------------------------------------------------------------------------------

    def ensure_session(self) -> None:
        """Blocking :meth:`ensure_session_async`."""
        self._run_blocking(self.ensure_session_async)

    async def ensure_session_async(self) -> None:
        """Read the session, creating it if it does not exist (one round trip; none once this manager
        holds it). The earlier library created the session when a manager was built;
        :func:`create_mongodb_session_manager` and :attr:`session_repository` keep that through this."""
        self._check_open()
        await self._session()

    async def load_async(self, *, messages: bool = True) -> None:
        """Fetch the session (creating it if missing) and, if asked, its agents' messages, so that
        the blocking :meth:`initialize` Strands calls from ``Agent(...)`` needs no round trip."""
        self._check_open()
        document = await self._session()
        self._preloaded_session = True
        if not messages:
            return
        for record in document.get("agents") or ():
            agent_id = record["agent_id"]
            # The conversation manager's own count of removed messages is the usual restore offset.
            offset = (record.get("conversation_manager_state") or {}).get("removed_message_count", 0)
            offset = offset if isinstance(offset, int) and offset >= 0 else 0
            listed = await self.repository.list_messages(
                self.session_id, agent_id, offset=offset, session_verified=True
            )
            self._preloaded[agent_id] = _Preloaded(offset, listed)

    # -- agents -----------------------------------------------------------------------------------

    def initialize(self, agent: LocalAgent, **kwargs: Any) -> None:
        """Restore ``agent`` from the session, or record it as a new agent of the session.

        Initializing the same agent object again is a no-op (the factory API's documented examples do it).
        """
        self._check_open()
        if not self._initialize_without_io(agent):
            if self.repository.runtime.is_home_loop(running_loop()):
                raise WrongLoopError(
                    "Agent(...) initializes its session synchronously, and this manager's MongoDB client is "
                    "bound to the running event loop: load the session first with "
                    "`await factory.create_session_manager(..., preload=True)` or `await manager.load_async()`"
                )
            self._run_blocking(self.initialize_async, agent)

    async def initialize_async(self, agent: LocalAgent, **kwargs: Any) -> None:
        """Awaitable :meth:`initialize`."""
        self._check_open()
        if self._initialize_without_io(agent):
            return
        document = await self._session()
        record = codec.find_record(document.get("agents"), "agent_id", agent.agent_id)
        if record is None:
            try:
                await self._create_agent(agent)
                return
            except AlreadyExistsError:
                # Another writer created this agent since the session was read: restore theirs.
                record = await self._reload_agent_record(agent.agent_id)
        offset, prepend = self._restore_agent_state(agent, record)
        listed = await self.repository.list_messages(
            self.session_id, agent.agent_id, offset=offset, session_verified=True
        )
        self._restore_messages(agent, prepend, offset, listed, _version(record))

    def _initialize_without_io(self, agent: LocalAgent) -> bool:
        """Handle a repeated initialize, or a restore from preloaded data; False if I/O is needed."""
        # Validated first: an unhashable id would otherwise fail the lookup with a bare TypeError.
        tracking = self._agents.get(validate_id(agent.agent_id, "agent"))
        if tracking is not None:
            if tracking.agent is agent:
                return True
            raise SessionException(f"agent_id {agent.agent_id!r} is already used by another agent in this session")
        if self._session_document is None:
            return False
        record = codec.find_record(self._session_document.get("agents"), "agent_id", agent.agent_id)
        if record is None:
            if not self._preloaded_session:
                return False
            # Preloaded session without this agent: record it on its first write, not now (no I/O here).
            # ``synced`` remembers the agent as it was created, to tell whether it changed before that write.
            self._agents[agent.agent_id] = _AgentTracking(agent, pending_create=True, synced=_sync_marker(agent))
            return True
        preloaded = self._preloaded.pop(agent.agent_id, None)
        if preloaded is None:
            return False
        offset, prepend = self._restore_agent_state(agent, record)
        if offset < preloaded.offset:
            return False
        self._restore_messages(
            agent, prepend, offset, preloaded.messages[offset - preloaded.offset :], _version(record)
        )
        return True

    async def _create_agent(self, agent: LocalAgent, messages: list[Message] | None = None) -> None:
        session_agent = SessionAgent.from_agent(agent)
        config = _agent_config(agent)
        await self.repository.create_agent(self.session_id, session_agent, config=config)
        initial = agent.messages if messages is None else messages
        existing = [SessionMessage.from_message(message, index) for index, message in enumerate(initial)]
        await self.repository.create_messages(self.session_id, agent.agent_id, existing, session_verified=True)
        tracking = _AgentTracking(agent, latest=existing[-1] if existing else None, held=existing)
        tracking.synced = _sync_marker(agent)
        tracking.config = config
        self._agents[agent.agent_id] = tracking
        self._remember_agent_record({**codec.agent_record(session_agent), **config})

    async def _reload_agent_record(self, agent_id: str) -> Document:
        document, _ = await self.repository.load_session(self.session_id, create=False)
        record = codec.find_record((document or {}).get("agents"), "agent_id", agent_id)
        if document is None or record is None:
            raise NotFoundError(f"agent {agent_id!r} of session {self.session_id!r} disappeared while initializing")
        self._session_document = document
        return record

    async def _tracking_for_write(self, agent: LocalAgent, *, exclude_latest: bool = False) -> _AgentTracking:
        """The agent's tracking, after writing its deferred record if initialization deferred it."""
        tracking = self._tracking(agent)
        if tracking.pending_create:
            # The message being appended right now is not part of the initial messages.
            initial = agent.messages[:-1] if exclude_latest and agent.messages else agent.messages
            try:
                await self._create_agent(agent, list(initial))
            except AlreadyExistsError:
                # Another writer created it first: restore its state and continue as a second writer of that
                # agent, as initialize does. If this agent's state changed since it was created, that change
                # was based on no stored record: refuse rather than overwrite the other writer's state.
                record = await self._reload_agent_record(agent.agent_id)
                if tracking.synced is not None and _sync_marker(agent) != tracking.synced:
                    raise ConcurrentModificationError(
                        f"agent {agent.agent_id!r} in session {self.session_id!r} was created by another writer "
                        "while this one changed its state; nothing was overwritten"
                    ) from None
                session_agent = codec.agent_from_record(record)
                agent.state = AgentState(session_agent.state)
                session_agent.initialize_internal_state(agent)
                tracking.pending_create = False
                tracking.version = _version(record)
                tracking.synced = _sync_marker(agent)
            tracking = self._agents[agent.agent_id]
        return tracking

    def _restore_agent_state(self, agent: LocalAgent, record: Document) -> tuple[int, list[Message]]:
        """Apply the stored state; returns the message offset the conversation manager asks for and
        the messages it wants prepended."""
        from strands.agent.agent import Agent

        session_agent = codec.agent_from_record(record)
        agent.state = AgentState(session_agent.state)
        session_agent.initialize_internal_state(agent)
        self._restored_configs[agent.agent_id] = _stored_config(record)
        if not isinstance(agent, Agent):
            return 0, []
        prepend = agent.conversation_manager.restore_from_session(session_agent.conversation_manager_state) or []
        return int(agent.conversation_manager.removed_message_count), prepend

    def _restore_messages(
        self, agent: LocalAgent, prepend: list[Message], offset: int, listed: list[SessionMessage], version: int
    ) -> None:
        from strands.agent.agent import Agent

        tracking = _AgentTracking(agent, latest=listed[-1] if listed else None, held=list(listed), version=version)
        if not listed and offset:
            # Every stored message was dropped by the conversation manager; numbering continues after them.
            tracking.latest = SessionMessage({"role": "user", "content": []}, offset - 1)
        if not (isinstance(agent, Agent) and agent.model.stateful):
            restored = prepend + [message.to_message() for message in listed]
            agent.messages = _compat.repair_tool_pairs(restored)
        tracking.synced = _sync_marker(agent)
        self._agents[agent.agent_id] = tracking
        logger.debug(
            "session_id=<%s> | agent_id=<%s> | restored %d messages", self.session_id, agent.agent_id, len(listed)
        )

    def _remember_agent_record(self, record: Document) -> None:
        if self._session_document is not None:
            self._session_document.setdefault("agents", []).append(record)

    def _tracking(self, agent: LocalAgent) -> _AgentTracking:
        tracking = self._agents.get(validate_id(agent.agent_id, "agent"))
        if tracking is None:
            raise SessionException(f"agent {agent.agent_id!r} was not initialized with this session manager")
        return tracking

    def append_message(self, message: Message, agent: LocalAgent, **kwargs: Any) -> None:
        """Store a message the agent just added (one insert)."""
        self._run_blocking(self.append_message_async, message, agent)

    async def append_message_async(self, message: Message, agent: LocalAgent, **kwargs: Any) -> None:
        """Awaitable :meth:`append_message`."""
        self._check_open()
        await self._flush_deferred()
        tracking = await self._tracking_for_write(
            agent, exclude_latest=bool(agent.messages) and agent.messages[-1] is message
        )
        session_message = SessionMessage.from_message(message, tracking.next_message_id)
        usage_fields = self._usage.fields_for(agent.agent_id, message)
        await self._keep_alive()
        for _ in range(_MAX_RENUMBERING):
            try:
                await self.repository.create_message(
                    self.session_id, agent.agent_id, session_message, session_verified=True, fields=usage_fields
                )
                break
            except DuplicateMessageError:
                # Another writer (process or task) stored a message under this id. Strands numbers
                # messages in memory, so renumber after the highest stored id; never overwrite.
                last = await self.repository.last_message_id(self.session_id, agent.agent_id, session_verified=True)
                renumbered = 0 if last is None else last + 1
                logger.warning(
                    "session_id=<%s> | agent_id=<%s> | message id %d taken by another writer, storing as %d",
                    self.session_id,
                    agent.agent_id,
                    session_message.message_id,
                    renumbered,
                )
                session_message.message_id = renumbered
                # Racers that collided together compute the same next id; a little jitter spreads them.
                await asyncio.sleep(random.uniform(0, 0.002))  # noqa: S311 - not cryptographic
        else:
            raise ConcurrentModificationError(
                f"could not store a message of agent {agent.agent_id!r} in session {self.session_id!r}: "
                f"{_MAX_RENUMBERING} concurrent writers took every id tried"
            )
        tracking.latest = session_message
        tracking.held.append(session_message)
        self._usage.stored(agent.agent_id, session_message.message_id, usage_fields)

    def redact_latest_message(self, redact_message: Message, agent: LocalAgent, **kwargs: Any) -> None:
        """Store a redaction (e.g. from a guardrail) of the latest message.

        Only ``redact_message`` is written: the stored ``message`` keeps the content as first stored,
        and a restored agent sees the redaction. An audit record goes with it (the message document's
        ``redaction``: ``action``, default ``"BLOCKED"``, ``timestamp``, and ``stop_reason``,
        ``policies_triggered`` and ``guardrail_trace`` when known), and the session's ``guardrails``
        summary counts it (see :mod:`mongodb_session_manager.audit`)."""
        redact = functools.partial(self.redact_latest_message_async, **kwargs)
        self._run_blocking_or_defer(redact, redact_message, agent)

    async def redact_latest_message_async(self, redact_message: Message, agent: LocalAgent, **kwargs: Any) -> None:
        """Awaitable :meth:`redact_latest_message` (keywords ``action``, ``stop_reason``, ``guardrail_trace``)."""
        self._check_open()
        record = redaction_record(
            at=codec.utc_now(),
            action=kwargs.get("action"),
            stop_reason=kwargs.get("stop_reason"),
            guardrail_trace=kwargs.get("guardrail_trace"),
        )
        tracking = await self._tracking_for_write(agent)
        latest = tracking.latest
        if latest is None or latest.message_id < 0 or not tracking.held:
            raise SessionException("No message to redact.")
        # A retried prompt may have stored the same message object in an earlier record too.
        records = [latest] + [
            record for record in tracking.held if record is not latest and record.to_message() is redact_message
        ]
        await self._keep_alive()
        for stored in records:
            stored.redact_message = redact_message
            await self.repository.redact_message(
                self.session_id,
                agent.agent_id,
                stored.message_id,
                redact_message,
                session_verified=True,
                redaction=record,
            )
        await self.repository.update_session_summary(self.session_id, summary_update(record))
        if "stop_reason" not in record and self._usage.in_invocation(agent.agent_id):
            self._redactions_without_stop_reason.setdefault(agent.agent_id, []).extend(
                stored.message_id for stored in records
            )

    async def update_streamed_message_async(self, tracking_id: str, message: Message, agent: LocalAgent) -> None:
        """Store the final content of a message Strands replaced after appending it."""
        tracking = self._tracking(agent)
        for record in reversed(tracking.held):
            if record.message.get("tracking_id") == tracking_id:
                record.message = message
                await self._keep_alive()
                await self.repository.update_message(self.session_id, agent.agent_id, record, session_verified=True)
                return

    def sync_agent(self, agent: LocalAgent, **kwargs: Any) -> None:
        """Write the agent's state, and its model id and system prompt, if they changed since the last
        write (else no I/O). An agent this manager has not initialized is recorded in the session."""
        self._check_open()
        tracking = self._agents.get(validate_id(agent.agent_id, "agent"))
        if (
            tracking is not None
            and not tracking.pending_create
            and tracking.synced is not None
            and _sync_marker(agent) == tracking.synced
            and not self._config_changes(agent, tracking)
        ):
            _prune_held(tracking)
            return
        self._run_blocking_or_defer(self.sync_agent_async, agent)

    async def sync_agent_async(self, agent: LocalAgent, **kwargs: Any) -> None:
        """Awaitable :meth:`sync_agent`."""
        self._check_open()
        await self._flush_deferred()
        if validate_id(agent.agent_id, "agent") not in self._agents:
            await self._adopt_agent(agent)
        tracking = await self._tracking_for_write(agent)
        _prune_held(tracking)
        marker = _sync_marker(agent)
        if tracking.synced is None or marker != tracking.synced:
            await self._keep_alive()
            new_version = await self.repository.update_agent_versioned(
                self.session_id, SessionAgent.from_agent(agent), tracking.version
            )
            tracking.version = new_version if new_version is not None else tracking.version + 1
            tracking.synced = copy.deepcopy(marker)
        changes = self._config_changes(agent, tracking)
        if changes:
            await self.repository.set_agent_config(self.session_id, agent.agent_id, changes)
            tracking.config = {**(tracking.config or {}), **changes}

    def _config_changes(self, agent: LocalAgent, tracking: _AgentTracking) -> Document:
        """The agent's model id / system prompt values that differ from the stored ones."""
        if tracking.config is None:
            tracking.config = self._restored_configs.pop(agent.agent_id, {})
        stored = tracking.config
        return {name: value for name, value in _agent_config(agent).items() if stored.get(name) != value}

    async def _adopt_agent(self, agent: LocalAgent) -> None:
        """Record an agent synced without having been initialized here (the earlier library's
        ``sync_agent`` did): create its record, or take over the stored one without restoring it."""
        await self._session()
        try:
            await self._create_agent(agent)
            return
        except AlreadyExistsError:
            record = await self._reload_agent_record(agent.agent_id)
        last = await self.repository.last_message_id(self.session_id, agent.agent_id, session_verified=True)
        tracking = _AgentTracking(agent, version=_version(record), config=_stored_config(record))
        if last is not None:
            tracking.latest = SessionMessage({"role": "user", "content": []}, last)
        self._agents[agent.agent_id] = tracking

    # -- multi-agent ------------------------------------------------------------------------------

    def initialize_multi_agent(self, source: MultiAgentBase, **kwargs: Any) -> None:
        """Restore a Graph or Swarm from the session, or record its initial state."""
        self._run_blocking(self.initialize_multi_agent_async, source)

    async def initialize_multi_agent_async(self, source: MultiAgentBase, **kwargs: Any) -> None:
        """Awaitable :meth:`initialize_multi_agent`."""
        self._check_open()
        state: Document | None
        if source.id in self._multi_agent_states:
            # This manager already created or restored an orchestrator with this id (e.g. a new Graph per
            # request on a long-lived manager): the session document it read back then is stale.
            state = await self.repository.read_multi_agent(self.session_id, source.id)
        else:
            document = await self._session()
            record = codec.find_record(document.get("multi_agents"), "multi_agent_id", source.id)
            state = None if record is None else record["state"]
        if state is None:
            await self._keep_alive()
            await self.repository.create_multi_agent(self.session_id, source)
            self._multi_agent_states[source.id] = copy.deepcopy(source.serialize_state())
        else:
            logger.debug("session_id=<%s> | restoring multi-agent %s", self.session_id, source.id)
            source.deserialize_state(copy.deepcopy(state))
            self._multi_agent_states[source.id] = copy.deepcopy(state)

    def sync_multi_agent(self, source: MultiAgentBase, **kwargs: Any) -> None:
        """Write the orchestrator's state if it changed."""
        self._run_blocking(self.sync_multi_agent_async, source)

    async def sync_multi_agent_async(self, source: MultiAgentBase, **kwargs: Any) -> None:
        """Awaitable :meth:`sync_multi_agent`."""
        self._check_open()
        state = source.serialize_state()
        if self._multi_agent_states.get(source.id) == state:
            return
        await self._keep_alive()
        await self.repository.update_multi_agent(self.session_id, source)
        self._multi_agent_states[source.id] = copy.deepcopy(state)

    # -- hooks into the agent ---------------------------------------------------------------------

    def register_hooks(self, registry: HookRegistry, **kwargs: Any) -> None:
        """Subscribe to the agent's and orchestrator's lifecycle events.

        Strands requires ``AgentInitializedEvent`` callbacks to be sync; every other callback is
        ``async`` so that persisting a turn never blocks the agent's event loop.
        """
        registry.add_callback(AgentInitializedEvent, self._on_agent_initialized)
        registry.add_callback(MessageAddedEvent, self._on_message_added)
        registry.add_callback(MessageUpdatedEvent, self._on_message_updated)
        registry.add_callback(AfterInvocationEvent, self._on_after_invocation)
        registry.add_callback(BeforeInvocationEvent, self._usage.on_invocation_start)
        registry.add_callback(AfterModelCallEvent, self._on_model_call)
        registry.add_callback(AfterToolCallEvent, self._usage.on_tool_call)
        registry.add_callback(MultiAgentInitializedEvent, self._on_multi_agent_initialized)
        registry.add_callback(AfterNodeCallEvent, self._on_multi_agent_progress)
        registry.add_callback(AfterMultiAgentInvocationEvent, self._on_multi_agent_progress)

    def _on_agent_initialized(self, event: AgentInitializedEvent) -> None:
        self.initialize(event.agent)

    async def _on_message_added(self, event: MessageAddedEvent) -> None:
        await self.append_message_async(event.message, event.agent)
        await self.sync_agent_async(event.agent)

    async def _on_message_updated(self, event: MessageUpdatedEvent) -> None:
        await self.update_streamed_message_async(event.tracking_id, event.message, event.agent)

    async def _on_after_invocation(self, event: AfterInvocationEvent) -> None:
        await self.sync_agent_async(event.agent)
        update = self._usage.finish(event.agent.agent_id)
        if update is not None:
            # Only when the invocation did not end with a model response (see docs/usage-and-audit.md).
            writes = [
                self.repository.annotate_message(
                    self.session_id, event.agent.agent_id, update.message_id, {INVOCATION_FIELD: update.totals}
                )
            ]
            if update.stale_message_id is not None:
                writes.append(
                    self.repository.annotate_message(
                        self.session_id, event.agent.agent_id, update.stale_message_id, {}, [INVOCATION_FIELD]
                    )
                )
            await asyncio.gather(*writes)

    async def _on_model_call(self, event: AfterModelCallEvent) -> None:
        self._usage.on_model_call(event)
        pending = self._redactions_without_stop_reason.pop(event.agent.agent_id, None)
        response = event.stop_response
        if pending and response is not None and response.stop_reason in GUARDRAIL_STOP_REASONS:
            # Strands redacts mid-stream, before the stop reason reaches any hook: complete the audit record.
            await self._flush_deferred()
            for message_id in pending:
                await self.repository.annotate_message(
                    self.session_id, event.agent.agent_id, message_id, {"redaction.stop_reason": response.stop_reason}
                )

    async def _on_multi_agent_initialized(self, event: MultiAgentInitializedEvent) -> None:
        await self.initialize_multi_agent_async(event.source)

    async def _on_multi_agent_progress(self, event: AfterNodeCallEvent | AfterMultiAgentInvocationEvent) -> None:
        await self.sync_multi_agent_async(event.source)

    # -- metadata ---------------------------------------------------------------------------------

    def update_metadata(self, metadata: Mapping[str, Any]) -> None:
        """Merge keys into the session's metadata; nested dicts keep their sibling keys."""
        self._run_blocking(self.update_metadata_async, metadata)

    async def update_metadata_async(self, metadata: Mapping[str, Any]) -> None:
        """Awaitable :meth:`update_metadata`."""
        self._check_open()
        await call_with_hook(
            self.metadata_hook,
            "update",
            self.session_id,
            self._update_metadata,
            self.repository.runtime.blocking(self._update_metadata),
            metadata,
            metadata=metadata,
        )

    async def _update_metadata(self, metadata: Mapping[str, Any]) -> None:
        await self._keep_alive()
        await self.repository.update_metadata(self.session_id, metadata)

    def get_metadata(self) -> Document:
        """``{"_id": session_id, "metadata": {...}}``, as the earlier library returned it (the metadata
        is empty while the session has none or does not exist yet)."""
        return self._run_blocking(self.get_metadata_async)

    async def get_metadata_async(self) -> Document:
        """Awaitable :meth:`get_metadata`."""
        self._check_open()
        result: Document = await call_with_hook(
            self.metadata_hook,
            "get",
            self.session_id,
            self._get_metadata,
            self.repository.runtime.blocking(self._get_metadata),
        )
        return result

    async def _get_metadata(self) -> Document:
        stored = await self.repository.get_metadata(self.session_id)
        return stored if stored is not None else {"_id": self.session_id, "metadata": {}}

    def delete_metadata(self, keys: Sequence[str]) -> None:
        """Remove metadata keys."""
        self._run_blocking(self.delete_metadata_async, keys)

    async def delete_metadata_async(self, keys: Sequence[str]) -> None:
        """Awaitable :meth:`delete_metadata`."""
        self._check_open()
        await call_with_hook(
            self.metadata_hook,
            "delete",
            self.session_id,
            self._delete_metadata,
            self.repository.runtime.blocking(self._delete_metadata),
            keys,
            keys=keys,
        )

    async def _delete_metadata(self, keys: Sequence[str]) -> None:
        await self.repository.delete_metadata(self.session_id, keys)

    def get_metadata_tool(self) -> AgentTool:
        """The ``manage_metadata`` tool (actions ``get``, ``set``/``update``, ``delete``; ``keys`` filters a
        ``get``), bound to this session. It returns a result string; user code may call it directly."""
        from .metadata_tool import metadata_tool

        return metadata_tool(self)

    # -- feedback ---------------------------------------------------------------------------------

    def add_feedback(self, feedback: Mapping[str, Any]) -> None:
        """Store a feedback dict (stamped with ``created_at``)."""
        self._run_blocking(self.add_feedback_async, feedback)

    async def add_feedback_async(self, feedback: Mapping[str, Any]) -> None:
        """Awaitable :meth:`add_feedback`."""
        self._check_open()
        await call_with_hook(
            self.feedback_hook,
            "add",
            self.session_id,
            self._add_feedback,
            self.repository.runtime.blocking(self._add_feedback),
            feedback,
            session_manager=self,
            feedback=feedback,
        )

    async def _add_feedback(
        self, feedback: Mapping[str, Any], session_manager: MongoDBSessionManager | None = None
    ) -> None:
        # ``session_manager`` is accepted so that a hook may forward all its keyword arguments.
        await self._keep_alive()
        await self.repository.add_feedback(self.session_id, feedback)

    def get_feedbacks(self) -> list[Document]:
        """The session's feedback, oldest first."""
        return self._run_blocking(self.get_feedbacks_async)

    async def get_feedbacks_async(self) -> list[Document]:
        """Awaitable :meth:`get_feedbacks`."""
        self._check_open()
        return await self.repository.get_feedbacks(self.session_id)

    # -- inspection and agent configuration ------------------------------------------------------

    def list_agents(self) -> list[Document]:
        """``[{"agent_id", "model", "system_prompt", "prompt_metadata"}, ...]`` for the session's agents."""
        return self._run_blocking(self.list_agents_async)

    async def list_agents_async(self) -> list[Document]:
        """Awaitable :meth:`list_agents`."""
        self._check_open()
        records = await self.repository.read_agent_records(self.session_id)
        return [_agent_config_view(record) for record in records or ()]

    def get_message_count(self, agent_id: str) -> int:
        """How many messages are stored for ``agent_id``."""
        return self._run_blocking(self.get_message_count_async, agent_id)

    async def get_message_count_async(self, agent_id: str) -> int:
        """Awaitable :meth:`get_message_count`."""
        self._check_open()
        return await self.repository.count_messages(self.session_id, agent_id)

    def get_agent_config(self, agent_id: str) -> Document | None:
        """``{"agent_id", "model", "system_prompt", "prompt_metadata"}`` of ``agent_id``, or None."""
        return self._run_blocking(self.get_agent_config_async, agent_id)

    async def get_agent_config_async(self, agent_id: str) -> Document | None:
        """Awaitable :meth:`get_agent_config`."""
        self._check_open()
        records = await self.repository.read_agent_records(self.session_id, validate_id(agent_id, "agent"))
        record = codec.find_record(records, "agent_id", agent_id)
        return None if record is None else _agent_config_view(record)

    def update_agent_config(
        self,
        agent_id: str,
        model: str | None = None,
        system_prompt: str | None = None,
        prompt_metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Set the stored model id, system prompt and/or prompt metadata of ``agent_id`` (None leaves a
        field alone). Raises :class:`NotFoundError` if the agent is not stored."""
        self._run_blocking(self.update_agent_config_async, agent_id, model, system_prompt, prompt_metadata)

    async def update_agent_config_async(
        self,
        agent_id: str,
        model: str | None = None,
        system_prompt: str | None = None,
        prompt_metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Awaitable :meth:`update_agent_config`."""
        self._check_open()
        if prompt_metadata is not None and not isinstance(prompt_metadata, Mapping):
            raise InvalidInputError(f"prompt_metadata must be a dict, got {type(prompt_metadata).__name__}")
        given = {"model": model, "system_prompt": system_prompt, "prompt_metadata": prompt_metadata}
        config = {name: value for name, value in given.items() if value is not None}
        if prompt_metadata is not None:
            config["prompt_metadata"] = dict(prompt_metadata)
        if not config:
            return
        await self._session()  # a session stored by the original manager is migrated first
        await self._keep_alive()
        await self.repository.set_agent_config(self.session_id, agent_id, config)
        tracking = self._agents.get(agent_id)
        if tracking is not None and tracking.config is not None:
            tracking.config = {**tracking.config, **config}

    def set_prompt_metadata(self, agent_id: str, prompt_metadata: Mapping[str, Any]) -> None:
        """Store prompt lineage for ``agent_id`` (``prompt_id``, ``prompt_name``, ``prompt_version``,
        ``deployment_id``, ``deployment_name``, ``temperature``...), replacing earlier prompt metadata."""
        self._run_blocking(self.set_prompt_metadata_async, agent_id, prompt_metadata)

    async def set_prompt_metadata_async(self, agent_id: str, prompt_metadata: Mapping[str, Any]) -> None:
        """Awaitable :meth:`set_prompt_metadata`."""
        if not isinstance(prompt_metadata, Mapping):
            raise InvalidInputError(f"prompt_metadata must be a dict, got {type(prompt_metadata).__name__}")
        await self.update_agent_config_async(agent_id, prompt_metadata=prompt_metadata)

    def get_application_name(self) -> str | None:
        """The application name the session was created with (or, before it exists, the one it will get)."""
        return self._run_blocking(self.get_application_name_async)

    async def get_application_name_async(self) -> str | None:
        """Awaitable :meth:`get_application_name`."""
        self._check_open()
        document = await self.repository.read_session_fields(self.session_id, ["application_name"])
        return self.repository.application_name if document is None else document.get("application_name")

    def get_session_viewer_password(self) -> str | None:
        """Legacy: the random token the earlier library generated for its session viewer when the session
        was created; None while the session does not exist. Treat it as a secret (it is never logged)."""
        return self._run_blocking(self.get_session_viewer_password_async)

    async def get_session_viewer_password_async(self) -> str | None:
        """Awaitable :meth:`get_session_viewer_password`."""
        self._check_open()
        return await self.repository.get_session_viewer_password(self.session_id)

    # -- lifecycle --------------------------------------------------------------------------------

    def close(self) -> None:
        """Release the manager. Closes the client only if this manager created it (a standalone manager,
        which cannot be used afterwards); a factory-made manager stays usable. Idempotent."""
        if self._closed or not self._owns_repository:
            return
        # This session's pending AWS notifications go out (or are reported) before the client closes.
        flush_session((self.metadata_hook, self.feedback_hook), self.session_id)
        self._closed = True
        if self._owns_sync_client:
            self._sync_client.close()
        self.repository.runtime.close()

    async def close_async(self) -> None:
        """Awaitable :meth:`close`; first waits for writes scheduled by blocking calls on the home loop."""
        await self._flush_deferred()
        if self._closed or not self._owns_repository:
            return
        await flush_session_async((self.metadata_hook, self.feedback_hook), self.session_id)
        self._closed = True
        if self._owns_sync_client:
            self._sync_client.close()
        await self.repository.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(session_id={self.session_id!r}, repository={self.repository!r})"


def _renamed_argument(kwargs: dict[str, Any], old: str, new: str, value: Any) -> Any:
    """Take the deprecated spelling ``old`` out of ``kwargs`` (warning), unless ``new`` was given too."""
    if old not in kwargs:
        return value
    warnings.warn(f"{old}= is deprecated, use {new}=", DeprecationWarning, stacklevel=3)
    legacy = kwargs.pop(old)
    return value if value is not None else legacy


def _model_id(agent: LocalAgent) -> str | None:
    """The agent's model identifier: its configured ``model_id``, else the model class name."""
    model = getattr(agent, "model", None)
    if not model:
        return None
    config = getattr(model, "config", None)
    if not isinstance(config, Mapping):
        get_config = getattr(model, "get_config", None)
        config = get_config() if callable(get_config) else None
    if isinstance(config, Mapping) and isinstance(config.get("model_id"), str) and config["model_id"]:
        return str(config["model_id"])
    model_id = getattr(model, "model_id", None)
    return model_id if isinstance(model_id, str) and model_id else type(model).__name__


def _agent_config(agent: LocalAgent) -> Document:
    """What the manager records of an agent's configuration: model id and system prompt, when set."""
    config: Document = {}
    model_id = _model_id(agent)
    if model_id:
        config["model"] = model_id
    system_prompt = getattr(agent, "system_prompt", None)
    if system_prompt and isinstance(system_prompt, (str, list)):
        config["system_prompt"] = system_prompt
    return config


def _stored_config(record: Document) -> Document:
    return {name: record[name] for name in ("model", "system_prompt") if record.get(name) is not None}


def _agent_config_view(record: Document) -> Document:
    """An agent record in the earlier library's ``list_agents`` / ``get_agent_config`` shape."""
    return {"agent_id": record["agent_id"], **{name: record.get(name) for name in codec.AGENT_CONFIG_FIELDS}}


def create_mongodb_session_manager(
    session_id: str,
    connection_string: str | None = None,
    database_name: str = DEFAULT_DATABASE_NAME,
    collection_name: str = DEFAULT_COLLECTION_NAME,
    client: Any = None,
    application_name: str | None = None,
    **kwargs: Any,
) -> MongoDBSessionManager:
    """A standalone :class:`MongoDBSessionManager`, the earlier library's convenience entry point.

    As there, the session exists when this returns (it is read, or created, in one round trip),
    except when called on the event loop an async client passed in is bound to: the session is then
    created on first use. ``kwargs`` go to :class:`MongoDBSessionManager`. For many sessions, prefer a
    :class:`MongoDBSessionManagerFactory`, which shares one client.
    """
    manager = MongoDBSessionManager(
        session_id,
        connection_string,
        database_name,
        collection_name,
        client,
        application_name=application_name,
        **kwargs,
    )
    try:
        manager.ensure_session()
    except WrongLoopError:
        logger.debug("session_id=<%s> | on the client's own loop: the session is created on first use", session_id)
    except BaseException:
        manager.close()
        raise
    return manager


def _version(record: Document) -> int:
    version = record.get("version")
    return version if isinstance(version, int) else 0


def _sync_marker(agent: LocalAgent) -> Document:
    """What ``sync_agent`` compares to decide whether the stored agent is stale."""
    from strands.agent.agent import Agent

    if not isinstance(agent, Agent):
        return {"state": copy.deepcopy(agent.state.get())}
    return {
        "state_version": _compat.state_version(agent.state),
        # Content, not version: Strands bumps the version in every tool cycle even when nothing changed.
        "interrupt_state": _compat.interrupt_state(agent),
        "conversation_manager_state": copy.deepcopy(agent.conversation_manager.get_state()),
        "model_state": copy.deepcopy(_compat.model_state(agent)),
    }


def _prune_held(tracking: _AgentTracking) -> None:
    """Forget records whose message left ``agent.messages`` (keeps memory bounded)."""
    messages = tracking.agent.messages
    tracking_ids = {message.get("tracking_id") for message in messages} - {None}
    identities = {id(message) for message in messages}
    tracking.held = [
        record
        for record in tracking.held
        if record.to_message().get("tracking_id") in tracking_ids or id(record.to_message()) in identities
    ]


__all__ = ["MongoDBSessionManager", "create_mongodb_session_manager"]

if TYPE_CHECKING:
    _check: type[SessionManager[Agent]] = MongoDBSessionManager
