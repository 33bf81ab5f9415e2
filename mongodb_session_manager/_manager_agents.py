"""Restoring and storing agents and their conversations: the part of the session manager Strands' agent
events drive (initialize, append, redact, sync)."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from strands.agent.state import AgentState
from strands.types.content import Message
from strands.types.exceptions import SessionException
from strands.types.session import SessionAgent, SessionMessage

from . import _codec as codec
from . import _compat
from ._manager_base import AgentTracking, Preloaded, in_sync, record_version, sync_marker
from ._manager_turns import MAX_RENUMBERING, TurnCoordination, insert_before
from ._must_finish import must_finish
from ._runtime import running_loop
from ._turns import (
    answers,
    closes_turn,
    open_marker,
    repair_fields,
    repairs_after,
)
from ._types import Document
from ._validation import validate_id
from .audit import redaction_record, summary_update
from .errors import (
    AlreadyExistsError,
    ConcurrentModificationError,
    DuplicateMessageError,
    WrongLoopError,
)

if TYPE_CHECKING:
    from strands.types.agent import LocalAgent


logger = logging.getLogger(__name__)


class AgentPersistence(TurnCoordination):
    """Agents and their messages (see :class:`~.session_manager.MongoDBSessionManager`)."""

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
        """Fetch the session and, if asked, its agents' messages, so that the blocking
        :meth:`initialize` Strands calls from ``Agent(...)`` needs no round trip.

        Only reads: a session that does not exist is not created here but by the first write (the
        agent's first message, metadata, feedback), so a request that only reads leaves no trace
        (:meth:`ensure_session_async` creates it at once).
        """
        self._check_open()
        if self._session_document is None:
            document, _ = await self.repository.load_session(self.session_id, create=False)
            self._preloaded_session = True
            if document is None:
                self._session_absent = True
                return
            self._session_document = document
            self._session_absent = False
        document = self._session_document
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
            self._preloaded[agent_id] = Preloaded(offset, listed)

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
        self._restore_messages(agent, prepend, offset, listed, record_version(record))

    def _initialize_without_io(self, agent: LocalAgent) -> bool:
        """Handle a repeated initialize, or a restore from preloaded data; False if I/O is needed."""
        # Validated first: an unhashable id would otherwise fail the lookup with a bare TypeError.
        tracking = self._agents.get(validate_id(agent.agent_id, "agent"))
        if tracking is not None:
            if tracking.agent is agent:
                return True
            raise SessionException(f"agent_id {agent.agent_id!r} is already used by another agent in this session")
        if self._session_document is None:
            if not self._session_absent:
                return False
            record = None
        else:
            record = codec.find_record(self._session_document.get("agents"), "agent_id", agent.agent_id)
        if record is None:
            if not self._preloaded_session:
                return False
            # Preloaded session without this agent: record it on its first write, not now (no I/O here).
            # ``synced`` remembers the agent as it was created, to tell whether it changed before that write.
            self._agents[agent.agent_id] = AgentTracking(agent, pending_create=True, synced=sync_marker(agent))
            return True
        preloaded = self._preloaded.pop(agent.agent_id, None)
        if preloaded is None:
            return False
        offset, prepend = self._restore_agent_state(agent, record)
        if offset < preloaded.offset:
            return False
        self._restore_messages(
            agent, prepend, offset, preloaded.messages[offset - preloaded.offset :], record_version(record)
        )
        return True

    async def _create_agent(self, agent: LocalAgent, messages: list[Message] | None = None) -> None:
        session_agent = SessionAgent.from_agent(agent)
        config = _agent_config(agent)
        await self.repository.create_agent(self.session_id, session_agent, config=config)
        initial = agent.messages if messages is None else messages
        existing = [SessionMessage.from_message(message, index) for index, message in enumerate(initial)]
        await self.repository.create_messages(self.session_id, agent.agent_id, existing, session_verified=True)
        tracking = AgentTracking(agent, latest=existing[-1] if existing else None, held=existing)
        tracking.synced = sync_marker(agent)
        tracking.config = config
        self._agents[agent.agent_id] = tracking
        self._remember_agent_record({**codec.agent_record(session_agent), **config})

    async def _tracking_for_write(self, agent: LocalAgent, *, exclude_latest: bool = False) -> AgentTracking:
        """The agent's tracking, after writing its deferred record if initialization deferred it."""
        tracking = self._tracking(agent)
        if tracking.pending_create:
            await self._session()  # creates the session if the preload found none
            # The message being appended right now is not part of the initial messages.
            initial = agent.messages[:-1] if exclude_latest and agent.messages else agent.messages
            try:
                await self._create_agent(agent, list(initial))
            except AlreadyExistsError:
                # Another writer created it first: restore its state and continue as a second writer of that
                # agent, as initialize does. If this agent's state changed since it was created, that change
                # was based on no stored record: refuse rather than overwrite the other writer's state.
                record = await self._reload_agent_record(agent.agent_id)
                if tracking.synced is not None and not in_sync(agent, tracking.synced):
                    raise ConcurrentModificationError(
                        f"agent {agent.agent_id!r} in session {self.session_id!r} was created by another writer "
                        "while this one changed its state; nothing was overwritten"
                    ) from None
                session_agent = codec.agent_from_record(record)
                agent.state = AgentState(session_agent.state)
                session_agent.initialize_internal_state(agent)
                tracking.pending_create = False
                tracking.version = record_version(record)
                tracking.synced = sync_marker(agent)
            created, tracking = tracking, self._agents[agent.agent_id]
            tracking.turn = created.turn  # the turn running when the record was written goes on
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

        tracking = AgentTracking(agent, latest=listed[-1] if listed else None, held=list(listed), version=version)
        if not listed and offset:
            # Every stored message was dropped by the conversation manager; numbering continues after them.
            tracking.latest = SessionMessage({"role": "user", "content": []}, offset - 1)
        if not (isinstance(agent, Agent) and agent.model.stateful):
            restored = prepend + [message.to_message() for message in listed]
            agent.messages = _compat.repair_tool_pairs(restored)
        tracking.synced = sync_marker(agent)
        self._agents[agent.agent_id] = tracking
        logger.debug(
            "session_id=<%s> | agent_id=<%s> | restored %d messages", self.session_id, agent.agent_id, len(listed)
        )

    def _remember_agent_record(self, record: Document) -> None:
        if self._session_document is not None:
            self._session_document.setdefault("agents", []).append(record)

    def _tracking(self, agent: LocalAgent) -> AgentTracking:
        tracking = self._agents.get(validate_id(agent.agent_id, "agent"))
        if tracking is None:
            raise SessionException(f"agent {agent.agent_id!r} was not initialized with this session manager")
        return tracking

    def append_message(self, message: Message, agent: LocalAgent, **kwargs: Any) -> None:
        """Store a message the agent just added (one insert)."""
        self._run_blocking(self.append_message_async, message, agent)

    @must_finish
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
        if tracking.turn is None and tracking.latest is not None and answers(tracking.latest.message, message):
            # Strands answers an interrupted toolUse before the invocation starts: that is the turn's start.
            tracking.turn = uuid.uuid4().hex
        if tracking.turn is not None and not tracking.turn_started:
            if await self._start_turn(agent, tracking, message, session_message, usage_fields):
                self._usage.stored(agent.agent_id, session_message.message_id, usage_fields)
            return
        fields = dict(usage_fields or {})
        closing = closes_turn(message)
        if tracking.turn is not None and not closing:
            fields.update(open_marker(tracking.turn, self._turn_lease))
        notes: list[SessionMessage] = []
        latest = tracking.latest
        if (
            tracking.turn is not None
            and latest is not None
            and latest.message.get("role") == message.get("role") == "user"
        ):
            # The prompt after Strands' answer to an interrupted toolUse: keep the roles alternating.
            notes = [SessionMessage.from_message(repairs_after(latest.message)[-1], session_message.message_id)]
            session_message.message_id += 1
            insert_before(agent.messages, message, [note.to_message() for note in notes])
        turn = tracking.turn
        for _ in range(MAX_RENUMBERING):
            try:
                await self.repository.create_messages(
                    self.session_id,
                    agent.agent_id,
                    [*notes, session_message],
                    session_verified=True,
                    fields=[*(repair_fields("interrupted") for _ in notes), fields or None],
                )
                break
            except DuplicateMessageError:
                # Another writer (process or task) stored a message under this id. Strands numbers
                # messages in memory, so renumber after the highest stored id; never overwrite.
                last = await self.repository.last_message_id(self.session_id, agent.agent_id, session_verified=True)
                renumbered = 0 if last is None else last + 1
                for note in notes:
                    note.message_id = renumbered
                    renumbered += 1
                logger.info(
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
                f"{MAX_RENUMBERING} concurrent writers took every id tried"
            )
        tracking.latest = session_message
        tracking.held.extend([*notes, session_message])
        if turn is not None and not closing and tracking.turn != turn:
            await self._release_late(agent, session_message.message_id)
        elif tracking.turn is not None:
            tracking.turn_open = not closing
        tracking.tail_free = tracking.turn is not None or closing
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

    @must_finish
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

    @must_finish
    async def update_streamed_message_async(self, tracking_id: str, message: Message, agent: LocalAgent) -> None:
        """Store the final content of a message Strands replaced after appending it."""
        await self._drain_writes(agent, recover=True)  # the message's insert may still be queued
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
            and in_sync(agent, tracking.synced)
            and not self._config_changes(agent, tracking)
        ):
            _prune_held(tracking)
            return
        self._run_blocking_or_defer(self.sync_agent_async, agent)

    @must_finish
    async def sync_agent_async(self, agent: LocalAgent, **kwargs: Any) -> None:
        """Awaitable :meth:`sync_agent`."""
        self._check_open()
        await self._flush_deferred()
        if validate_id(agent.agent_id, "agent") not in self._agents:
            await self._adopt_agent(agent)
        tracking = await self._tracking_for_write(agent)
        _prune_held(tracking)
        if not in_sync(agent, tracking.synced):
            marker = sync_marker(agent)
            await self._keep_alive()
            new_version = await self.repository.update_agent_versioned(
                self.session_id, SessionAgent.from_agent(agent), tracking.version
            )
            tracking.version = new_version if new_version is not None else tracking.version + 1
            tracking.synced = marker
        changes = self._config_changes(agent, tracking)
        if changes:
            await self.repository.set_agent_config(self.session_id, agent.agent_id, changes)
            tracking.config = {**(tracking.config or {}), **changes}

    def _config_changes(self, agent: LocalAgent, tracking: AgentTracking) -> Document:
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
        tracking = AgentTracking(agent, version=record_version(record), config=_stored_config(record))
        if last is not None:
            tracking.latest = SessionMessage({"role": "user", "content": []}, last)
        self._agents[agent.agent_id] = tracking


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


def _prune_held(tracking: AgentTracking) -> None:
    """Forget records whose message left ``agent.messages`` (keeps memory bounded).

    A pass reads the whole conversation, so it runs only once ``held`` has doubled since the last
    one: memory stays within twice what is needed, and the cost per message stays constant instead
    of growing with the conversation. Records kept meanwhile are of messages no longer in the
    conversation; redaction and streaming updates look messages up by identity or tracking id, so
    they are never found by mistake.
    """
    if len(tracking.held) < max(2 * tracking.held_pruned_at, _PRUNE_MINIMUM):
        return
    messages = tracking.agent.messages
    tracking_ids = {message.get("tracking_id") for message in messages} - {None}
    identities = {id(message) for message in messages}
    tracking.held = [
        record
        for record in tracking.held
        if record.to_message().get("tracking_id") in tracking_ids or id(record.to_message()) in identities
    ]
    tracking.held_pruned_at = len(tracking.held)


# Below this many records, pruning is not worth a pass over the conversation.
_PRUNE_MINIMUM = 64
