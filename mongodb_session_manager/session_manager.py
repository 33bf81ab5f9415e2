"""``MongoDBSessionManager``: a Strands session manager persisting agents in MongoDB.

Strands calls a session manager at fixed points of an agent's life. The data path:

* ``Agent(...)`` fires ``AgentInitializedEvent`` (sync by Strands' rules) -> :meth:`initialize`:
  one read of the session document (agents included, created if missing) and one read of the
  messages, or none when :meth:`load_async` already fetched them.
* Every new message fires ``MessageAddedEvent`` -> an ``async`` callback: the message's insert into
  ``<collection>.messages`` (and an agent-state write if the state changed) goes into the
  conversation's ordered write queue (:mod:`._manager_pipeline`) and the agent continues; the queue
  sends one command at a time, grouping what waits into one ``insert_many``. With
  ``pipelined_writes=False`` each write is awaited before the agent continues.
* ``AfterInvocationEvent`` -> ``async`` callback: drains the queue (raising the first failure), then
  an agent-state write only if something changed.

The async callbacks await the core on the client's home loop, so ``await agent.invoke_async(...)``
never blocks its loop on MongoDB. Each public method has an awaitable ``*_async`` twin holding the
logic; the blocking variant runs that twin on the home loop.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import TYPE_CHECKING, Any

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

from . import _codec as codec
from ._clients import DEFAULT_COLLECTION_NAME, DEFAULT_DATABASE_NAME
from ._manager_pipeline import PipelinedWrites
from ._manager_records import SessionRecords
from ._must_finish import must_finish
from ._runtime import running_loop
from ._turns import TURN_FIELD
from ._types import Document
from .errors import (
    MongoDBSessionError,
    WrongLoopError,
)
from .guardrails import GUARDRAIL_STOP_REASONS
from .hooks import flush_session, flush_session_async
from .sync_repository import MongoDBSessionRepository
from .usage import INVOCATION_FIELD

if TYPE_CHECKING:
    from strands.agent.agent import Agent
    from strands.multiagent.base import MultiAgentBase
    from strands.types.tools import AgentTool

logger = logging.getLogger(__name__)


class MongoDBSessionManager(PipelinedWrites, SessionRecords, SessionManager):
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

    ``pipelined_writes`` (default True): the writes of an agent invocation go into one ordered queue per
    conversation without the agent waiting for each; the invocation waits for all of them before it
    returns, and a failed write leaves a prefix of the turn stored. ``pipelined_writes=False`` awaits
    each write before the agent continues. See docs/sync-and-async.md for the exact guarantee of each.
    """

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

    # -- multi-agent ------------------------------------------------------------------------------

    def initialize_multi_agent(self, source: MultiAgentBase, **kwargs: Any) -> None:
        """Restore a Graph or Swarm from the session, or record its initial state."""
        self._run_blocking(self.initialize_multi_agent_async, source)

    @must_finish
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

    @must_finish
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
        registry.add_callback(BeforeInvocationEvent, self._on_before_invocation)
        registry.add_callback(AfterModelCallEvent, self._on_model_call)
        registry.add_callback(AfterToolCallEvent, self._usage.on_tool_call)
        registry.add_callback(MultiAgentInitializedEvent, self._on_multi_agent_initialized)
        registry.add_callback(AfterNodeCallEvent, self._on_multi_agent_progress)
        registry.add_callback(AfterMultiAgentInvocationEvent, self._on_multi_agent_progress)

    def _on_agent_initialized(self, event: AgentInitializedEvent) -> None:
        self.initialize(event.agent)

    async def _on_message_added(self, event: MessageAddedEvent) -> None:
        try:
            if await self._queue_message(event.message, event.agent):
                return
            await self.append_message_async(event.message, event.agent)
            await self.sync_agent_async(event.agent)
        except MongoDBSessionError as error:
            self._remember_turn_error(event.agent, error)
            raise

    async def _on_message_updated(self, event: MessageUpdatedEvent) -> None:
        await self.update_streamed_message_async(event.tracking_id, event.message, event.agent)

    async def _on_after_invocation(self, event: AfterInvocationEvent) -> None:
        try:
            await self._drain_writes(event.agent, recover=True)
        except BaseException:
            self._take_turn_error(event.agent)  # the drain's failure is the one reported
            # A queued write failed (or this caller was cancelled while waiting): end the turn, release
            # what it stored, and fail the invocation with the first failure.
            held = self._end_turn(event.agent)
            self._abandon_writes(event.agent)
            self._usage.finish(event.agent.agent_id)
            if held is not None:
                try:
                    await self._release_turn(event.agent, held)
                except Exception as error:
                    logger.debug("session_id=<%s> | could not release the turn: %r", self.session_id, error)
            raise
        # A message hook failed mid-turn: Strands raises its own wrapper unless this hook raises the
        # library's typed error again (below, once the turn is ended and released).
        turn_error = self._take_turn_error(event.agent)
        held = self._end_turn(event.agent)
        update = self._usage.finish(event.agent.agent_id)
        if held is not None and (update is None or update.message_id != held):
            await self._release_turn(event.agent, held)
        await self.sync_agent_async(event.agent)
        if update is not None:
            # Only when the invocation did not end with a model response (see docs/usage-and-audit.md).
            # The turn's release, when due on that message, rides on the same update.
            writes = [
                self.repository.annotate_message(
                    self.session_id,
                    event.agent.agent_id,
                    update.message_id,
                    {INVOCATION_FIELD: update.totals},
                    [TURN_FIELD] if held == update.message_id else [],
                )
            ]
            if update.stale_message_id is not None:
                writes.append(
                    self.repository.annotate_message(
                        self.session_id, event.agent.agent_id, update.stale_message_id, {}, [INVOCATION_FIELD]
                    )
                )
            await asyncio.gather(*writes)
        if turn_error is not None:
            raise turn_error

    async def _on_model_call(self, event: AfterModelCallEvent) -> None:
        self._usage.on_model_call(event)
        response = event.stop_response
        guardrail = response is not None and response.stop_reason in GUARDRAIL_STOP_REASONS
        if guardrail and self._deferred:
            await self._flush_deferred()  # a redaction scheduled mid-stream records what to complete
        pending = self._redactions_without_stop_reason.pop(event.agent.agent_id, None)
        if pending and response is not None and guardrail:
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

    # -- tools ----------------------------------------------------------------------------------

    def get_metadata_tool(self) -> AgentTool:
        """The ``manage_metadata`` tool (actions ``get``, ``set``/``update``, ``delete``; ``keys`` filters a
        ``get``), bound to this session. It returns a result string; user code may call it directly."""
        from .metadata_tool import metadata_tool

        return metadata_tool(self)

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


__all__ = ["MongoDBSessionManager", "create_mongodb_session_manager"]

if TYPE_CHECKING:
    _check: type[SessionManager[Agent]] = MongoDBSessionManager
