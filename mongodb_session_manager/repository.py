"""The async core: every read and write of session data goes through this module."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from strands.types.content import Message
from strands.types.session import Session, SessionAgent, SessionMessage

from . import _codec as codec
from ._clients import DEFAULT_COLLECTION_NAME, DEFAULT_DATABASE_NAME, runtime_for
from ._expiry import Expiry
from ._indexes import ensure_indexes
from ._legacy.layout import LEGACY_MARK, needs_upgrade
from ._message_blobs import MessageBlobs
from ._messages import MessageStore
from ._messages import missing as missing_message
from ._namespace import SessionNamespace
from ._runtime import ClientRuntime, on_home_loop
from ._session_documents import GENERATION, SessionDocuments, last_activity
from ._types import Document
from ._validation import (
    check_nested_keys,
    flatten_metadata_update,
    validate_field_names,
    validate_id,
    validate_message_id,
    validate_metadata_keys,
    validate_name,
)
from ._write_errors import BSON_LIMIT, encoded_size, storing, too_large_message
from .errors import (
    ConcurrentModificationError,
    DocumentTooLargeError,
    InvalidInputError,
    NotFoundError,
)
from .retention import EXPIRES_AT, Retention, live

if TYPE_CHECKING:
    from strands.multiagent.base import MultiAgentBase

logger = logging.getLogger(__name__)


_NO_ID = {"_id": 0}


class AsyncMongoDBSessionRepository:
    """Strands' ``SessionRepository`` contract as coroutines, on MongoDB.

    Every method may be awaited from any event loop: it runs on the client's home loop and never
    blocks the caller's loop. Ids are validated before any I/O; a rejected call writes nothing.

    Args:
        connection_string: MongoDB URI; the repository then creates and owns its client.
        database_name: Database holding the collections.
        collection_name: Sessions collection; messages and feedback live in
            ``<collection_name>.messages`` and ``<collection_name>.feedback``.
        client: A ``pymongo.AsyncMongoClient``, Motor ``AsyncIOMotorClient`` or ``pymongo.MongoClient``
            to borrow; it is left open by :meth:`close`.
        metadata_fields: Metadata keys to index.
        application_name: A label stored on sessions this repository creates (and indexed). Sessions
            stored under another application name, or none, stay readable, as in the earlier library.
        isolate_application: Opt in to strict per-application isolation: sessions not stored under
            ``application_name`` are then invisible to this repository.
        ensure_indexes: Create the indexes on first use (once per client and namespace). Turn off when
            the database user may not create indexes, or manages them itself.
        ttl_seconds: Remove a session, with its messages and feedback, at least this many seconds
            after its last activity (see :mod:`mongodb_session_manager.retention`). None keeps
            sessions until they are deleted.
        touch_after: Refresh a session's expiry at most once per this many seconds of activity;
            defaults to a tenth of ``ttl_seconds`` (at most an hour).
        **kwargs: Client options, used only when a connection string is given.
    """

    def __init__(
        self,
        connection_string: str | None = None,
        database_name: str = DEFAULT_DATABASE_NAME,
        collection_name: str = DEFAULT_COLLECTION_NAME,
        client: Any = None,
        metadata_fields: Sequence[str] | None = None,
        application_name: str | None = None,
        *,
        isolate_application: bool = False,
        ensure_indexes: bool = True,
        ttl_seconds: int | None = None,
        touch_after: int | None = None,
        runtime: ClientRuntime | None = None,
        **kwargs: Any,
    ) -> None:
        self.database_name = validate_name(database_name, "database_name")
        self.collection_name = validate_name(collection_name, "collection_name")
        self.metadata_fields = validate_field_names(metadata_fields)
        self.application_name = None if application_name is None else validate_id(application_name, "application")
        if isolate_application and self.application_name is None:
            raise InvalidInputError("isolate_application needs an application_name")
        self.isolate_application = bool(isolate_application)
        self.retention = Retention.of(ttl_seconds, touch_after)
        self._ensure_indexes = ensure_indexes
        self._owns_runtime = runtime is None
        self.runtime = runtime or runtime_for(connection_string, client, kwargs, name="mongodb-session-repository")
        self._indexes_ready = not ensure_indexes
        # The building blocks, shared with the catalog (see docs/architecture.md).
        self.namespace = SessionNamespace(
            self.runtime, self.database_name, self.collection_name, self.application_name, self.isolate_application
        )
        self.blobs = MessageBlobs(self.namespace)
        self.expiry = Expiry(self.namespace, self.blobs, self.retention)
        self.documents = SessionDocuments(self.namespace, self.expiry)
        self.messages = MessageStore(self.namespace, self.blobs, self.expiry)

    # -- plumbing ---------------------------------------------------------------------------------

    @property
    def owns_runtime(self) -> bool:
        """Whether :meth:`close` closes the client (this repository created it)."""
        return self._owns_runtime

    @property
    def application_scope(self) -> str | None:
        """The application name sessions must carry to be visible here (only with ``isolate_application``)."""
        return self.namespace.application_scope

    async def _ready(self) -> None:
        if not self._indexes_ready:
            await ensure_indexes(
                self.runtime.port,
                self.database_name,
                self.collection_name,
                self.metadata_fields,
                ttl=self.retention is not None,
                application=self.application_name is not None,
            )
            self._indexes_ready = True

    # -- expiry -----------------------------------------------------------------------------------

    @on_home_loop
    async def touch_session(
        self, session_id: str, *, generation: str | None = None, known_expiry: datetime | None = None
    ) -> datetime:
        """Push the session's expiry, and its messages', feedback's and blobs', to ``ttl_seconds +
        touch_after`` from now. Returns the new expiry.

        Args:
            session_id: The session.
            generation: The ``created_at`` of the session as the caller read it: a session re-created
                since is not touched.
            known_expiry: The expiry the caller last saw. While it has not passed, the session is
                certainly alive and its children are extended first, so that an interrupted touch
                never leaves children expiring before their session.

        Raises:
            SessionExpiredError: the session expired, was deleted or was re-created meanwhile; its
                document is left as it was.
        """
        validate_id(session_id, "session")
        if self.retention is None:
            raise InvalidInputError("touch_session needs a repository created with ttl_seconds")
        return await self.expiry.touch(session_id, generation, known_expiry)

    async def touch_if_due(self, session_id: str, document: Document) -> Document:
        """Touch the session if its ``document`` (as last read or touched) says a touch is due, and
        record the new expiry in ``document``; a no-op without ``ttl_seconds``. Returns ``document``.

        Raises:
            SessionExpiredError: see :meth:`touch_session`.
        """
        if self.expiry.touch_due(document):
            document[EXPIRES_AT] = await self.touch_session(
                session_id, generation=document.get("created_at"), known_expiry=document.get(EXPIRES_AT)
            )
        return document

    # -- sessions ---------------------------------------------------------------------------------

    @on_home_loop
    async def create_session(self, session: Session, **kwargs: Any) -> Session:
        """Insert a new session; raises :class:`AlreadyExistsError` if the id is taken."""
        session_id = validate_id(session.session_id, "session")
        if not isinstance(session.session_type, str):
            raise InvalidInputError(f"session_type must be a string, got {type(session.session_type).__name__}")
        document = codec.session_document(session)
        if self.application_name is not None:
            document["application_name"] = self.application_name
        self.expiry.stamp(document, document["last_activity_at"])
        await self._ready()
        await self.documents.insert(session_id, document)
        return session

    @on_home_loop
    async def read_session(self, session_id: str, **kwargs: Any) -> Session | None:
        """The session, or None if there is none."""
        document = await self.namespace.sessions.find_one(
            self.namespace.live(validate_id(session_id, "session")), {"agents": 0, "multi_agents": 0, "metadata": 0}
        )
        return None if document is None else codec.session_from_document(document)

    @on_home_loop
    async def load_session(self, session_id: str, *, create: bool = True) -> tuple[Document | None, bool]:
        """Read the whole session document (agents included) in one round trip, creating it if asked.

        Returns the document (None only when ``create`` is false and there is none) and whether this
        call created it. With ``ttl_seconds``, loading with ``create`` is activity: it pushes the
        session's expiry back when a touch is due.
        """
        validate_id(session_id, "session")
        await self._ready()
        if not create:
            # A read: it does not push the expiry back (the caller's next write does, when due).
            document, created = await self.namespace.sessions.find_one(self.namespace.live(session_id)), False
        else:
            document, created = await self.documents.load_or_create(session_id)
        if document is not None and needs_upgrade(document):
            # Stored by the original manager (v0.9): read through it, and migrate it when it is about to be used.
            from ._legacy.gate import upgrade

            document = await upgrade(self, session_id, document, migrate=create)
        return document, created

    @on_home_loop
    async def delete_session(self, session_id: str, **kwargs: Any) -> None:
        """Delete the session, its messages and its feedback. Deleting a missing session is a no-op."""
        validate_id(session_id, "session")
        scope = self.namespace.scope(session_id)  # an expired session is deleted too
        if self.application_scope is not None and await self.namespace.sessions.find_one(scope, {"_id": 1}) is None:
            return
        # Children first: an interrupted delete never leaves messages a re-created session would inherit.
        await self.namespace.messages.delete_many({"session_id": session_id})
        await self.blobs.delete_where({"metadata.session_id": session_id})
        await self.namespace.feedback.delete_many({"session_id": session_id})
        await self.namespace.sessions.delete_many(scope)

    # -- agents -----------------------------------------------------------------------------------

    @on_home_loop
    async def create_agent(
        self,
        session_id: str,
        session_agent: SessionAgent,
        *,
        config: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Add an agent record to an existing session; an existing agent is never overwritten.

        ``config``: configuration fields (see :meth:`set_agent_config`) stored with the record.
        """
        validate_id(session_id, "session")
        agent_id = validate_id(session_agent.agent_id, "agent")
        record = codec.agent_record(session_agent)
        if config:
            _check_agent_config(config)
            record.update(config)
        await self.documents.add_record(session_id, "agents", "agent_id", record, f"agent {agent_id!r}")

    @on_home_loop
    async def read_agent(self, session_id: str, agent_id: str, **kwargs: Any) -> SessionAgent | None:
        """The agent, or None if the session or the agent does not exist."""
        validate_id(session_id, "session")
        validate_id(agent_id, "agent")
        record = await self.documents.read_record(session_id, "agents", "agent_id", agent_id)
        if record is None and await self.namespace.sessions.find_one(
            {"_id": session_id, LEGACY_MARK: {"$exists": True}}, {"_id": 1}
        ):
            # Stored by the original manager (v0.9). This is how Strands' own session manager restores: migrate.
            from ._legacy.gate import upgrade

            document = await upgrade(self, session_id, {"_id": session_id, LEGACY_MARK: session_id}, migrate=True)
            record = codec.find_record(document.get("agents") if document else None, "agent_id", agent_id)
        return None if record is None else codec.agent_from_record(record)

    @on_home_loop
    async def update_agent(self, session_id: str, session_agent: SessionAgent, **kwargs: Any) -> None:
        """Replace the agent's state; keeps its ``created_at``. Raises :class:`NotFoundError` if missing."""
        await self.update_agent_versioned(session_id, session_agent, None)

    @on_home_loop
    async def update_agent_versioned(
        self, session_id: str, session_agent: SessionAgent, expected_version: int | None
    ) -> int | None:
        """Replace the agent's state if its stored version is ``expected_version`` (any, if None).

        Returns the new version (None when no version was expected). Raises
        :class:`ConcurrentModificationError` if another writer updated the agent in between, and
        :class:`NotFoundError` if the agent does not exist.
        """
        validate_id(session_id, "session")
        agent_id = validate_id(session_agent.agent_id, "agent")
        record = codec.agent_record(session_agent)
        skipped = ("agent_id", "created_at", "version")
        changes = {field: value for field, value in record.items() if field not in skipped}
        match: Document = {"agent_id": agent_id}
        if expected_version is not None:
            # Records written before versioning have no version field: they count as version 0.
            match["version"] = expected_version if expected_version else {"$in": [0, None]}
        updated = await self.documents.update_record(
            session_id, "agents", match, changes, None, f"agent {agent_id!r}", versioned=True
        )
        if not updated:
            if expected_version is not None and await self.read_agent(session_id, agent_id) is not None:
                raise ConcurrentModificationError(
                    f"agent {agent_id!r} in session {session_id!r} was changed by another writer since this "
                    f"manager read it (expected version {expected_version}); nothing was overwritten"
                )
            raise NotFoundError(f"agent {agent_id!r} in session {session_id!r} does not exist")
        return None if expected_version is None else expected_version + 1

    # -- messages ---------------------------------------------------------------------------------

    @on_home_loop
    async def create_message(
        self,
        session_id: str,
        agent_id: str,
        session_message: SessionMessage,
        *,
        session_verified: bool = False,
        fields: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Insert a message; raises :class:`DuplicateMessageError` if its id is already stored.

        ``fields``: extra top-level fields stored with it (``usage``, ``invocation``; see
        :mod:`mongodb_session_manager.usage`), never read back by a restore.
        """
        await self.create_messages(
            session_id, agent_id, [session_message], session_verified=session_verified, fields=[fields]
        )

    @on_home_loop
    async def create_messages(
        self,
        session_id: str,
        agent_id: str,
        session_messages: Sequence[SessionMessage],
        *,
        session_verified: bool = False,
        fields: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Insert several messages in one round trip (ordered; stops at the first duplicate).

        With ``isolate_application``, the session must exist under its application name
        (:class:`NotFoundError` otherwise) unless ``session_verified`` says the caller already read it
        through this repository.
        """
        validate_id(session_id, "session")
        validate_id(agent_id, "agent")
        for message in session_messages:
            validate_message_id(message.message_id)
        if not session_messages:
            return
        documents = [
            self.expiry.stamp(codec.message_document(session_id, agent_id, message)) for message in session_messages
        ]
        for document, extra in zip(documents, fields or [None] * len(documents), strict=True):
            document.update(_extra_message_fields(extra))
        await self._ready()
        if not await self.documents.owns(session_id, session_verified, touch=True):
            raise self.namespace.not_owned(session_id)
        await self.messages.insert(session_id, agent_id, documents)

    @on_home_loop
    async def last_message_id(self, session_id: str, agent_id: str, *, session_verified: bool = False) -> int | None:
        """The highest stored message id of the agent, or None (one indexed read)."""
        validate_id(session_id, "session")
        validate_id(agent_id, "agent")
        if not await self.documents.owns(session_id, session_verified):
            return None
        return await self.messages.last_id(session_id, agent_id)

    @on_home_loop
    async def read_message(
        self, session_id: str, agent_id: str, message_id: int, **kwargs: Any
    ) -> SessionMessage | None:
        """The message, or None if it does not exist."""
        validate_id(session_id, "session")
        validate_id(agent_id, "agent")
        validate_message_id(message_id)
        if not await self.documents.owns(session_id, False):
            return None
        document = await self.messages.read(session_id, agent_id, message_id)
        return None if document is None else codec.message_from_document(document)

    @on_home_loop
    async def update_message(
        self,
        session_id: str,
        agent_id: str,
        session_message: SessionMessage,
        *,
        session_verified: bool = False,
        **kwargs: Any,
    ) -> None:
        """Replace a message's content and redaction; keeps ``created_at``. Raises if it is missing."""
        validate_id(session_id, "session")
        validate_id(agent_id, "agent")
        message_id = validate_message_id(session_message.message_id)
        changes: Document = {
            "session_id": session_id,
            "agent_id": agent_id,
            "message_id": message_id,
            "message": session_message.message,
            "redact_message": session_message.redact_message,
            "updated_at": codec.iso_now(),
        }
        if not await self.documents.owns(session_id, session_verified, touch=True):
            raise self.namespace.not_owned(session_id)
        await self.messages.replace_content(session_id, agent_id, message_id, changes)

    @on_home_loop
    async def redact_message(
        self,
        session_id: str,
        agent_id: str,
        message_id: int,
        redact_message: Message,
        *,
        session_verified: bool = False,
        redaction: Mapping[str, Any] | None = None,
    ) -> None:
        """Set a message's ``redact_message`` only, keeping the originally stored content.

        ``redaction``: the audit record (see :mod:`mongodb_session_manager.audit`), stored in the
        message document's ``redaction`` field.
        """
        validate_id(session_id, "session")
        validate_id(agent_id, "agent")
        validate_message_id(message_id)
        if not await self.documents.owns(session_id, session_verified):
            raise self.namespace.not_owned(session_id)
        changes: Document = {"redact_message": redact_message, "updated_at": codec.iso_now()}
        if redaction is not None:
            changes["redaction"] = dict(redaction)
        if not await self.messages.update(session_id, agent_id, message_id, {"$set": changes}, changes):
            raise missing_message(session_id, agent_id, message_id)

    @on_home_loop
    async def annotate_message(
        self,
        session_id: str,
        agent_id: str,
        message_id: int,
        fields: Mapping[str, Any],
        unset: Sequence[str] = (),
    ) -> bool:
        """Set extra top-level fields of a stored message (``usage``, ``invocation``, ``redaction`` or
        paths inside them) and remove others; the content is untouched. False if the message is missing."""
        validate_id(session_id, "session")
        validate_id(agent_id, "agent")
        validate_message_id(message_id)
        _extra_message_fields({path.split(".", 1)[0]: None for path in [*fields, *unset]})
        update: Document = {}
        if fields:
            update["$set"] = dict(fields)
        if unset:
            update["$unset"] = {path: "" for path in unset}
        if not update:
            return True
        return await self.messages.update(session_id, agent_id, message_id, update, fields)

    @on_home_loop
    async def update_session_summary(self, session_id: str, update: Mapping[str, Any]) -> None:
        """Apply an update of the session document's ``guardrails`` summary (see
        :func:`mongodb_session_manager.audit.summary_update`); a missing session is left alone."""
        validate_id(session_id, "session")
        for operator, paths in update.items():
            if operator not in ("$inc", "$max", "$addToSet") or any(
                not str(path).startswith("guardrails.") for path in paths
            ):
                raise InvalidInputError(f"not a guardrail summary update: {operator} {list(paths)}")
        await self.namespace.sessions.update_one(self.namespace.live(session_id), dict(update))

    @on_home_loop
    async def list_messages(
        self,
        session_id: str,
        agent_id: str,
        limit: int | None = None,
        offset: int = 0,
        *,
        session_verified: bool = False,
        **kwargs: Any,
    ) -> list[SessionMessage]:
        """Messages in id order, skipping ``offset`` and returning at most ``limit``; one round trip."""
        validate_id(session_id, "session")
        validate_id(agent_id, "agent")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit < 2**63):
            raise InvalidInputError(f"limit must be None or a non-negative int below 2**63, got {limit!r}")
        if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset < 2**63:
            raise InvalidInputError(f"offset must be a non-negative int below 2**63, got {offset!r}")
        if limit == 0 or not await self.documents.owns(session_id, session_verified):
            return []
        documents = await self.messages.list(session_id, agent_id, offset, limit)
        if not documents and not session_verified:
            # Nothing stored here: the session may be one the original manager (v0.9) stored and nobody
            # restored yet. Read its messages from that document (writes nothing).
            from ._legacy.gate import original_messages

            stored = await original_messages(self, session_id, agent_id)
            if stored:
                return stored[offset : None if limit is None else offset + limit]
        return [codec.message_from_document(document) for document in documents]

    @on_home_loop
    async def count_messages(self, session_id: str, agent_id: str) -> int:
        """How many messages are stored for this agent."""
        validate_id(session_id, "session")
        validate_id(agent_id, "agent")
        if not await self.documents.owns(session_id, False):
            return 0
        return await self.messages.count(session_id, agent_id)

    # -- multi-agent ------------------------------------------------------------------------------

    @on_home_loop
    async def create_multi_agent(self, session_id: str, multi_agent: MultiAgentBase, **kwargs: Any) -> None:
        """Store a Graph's or Swarm's state; raises if one with that id exists."""
        validate_id(session_id, "session")
        multi_agent_id = validate_id(multi_agent.id, "multi-agent")
        record = codec.multi_agent_record(multi_agent_id, multi_agent.serialize_state())
        await self.documents.add_record(
            session_id, "multi_agents", "multi_agent_id", record, f"multi-agent {multi_agent_id!r}"
        )

    @on_home_loop
    async def read_multi_agent(self, session_id: str, multi_agent_id: str, **kwargs: Any) -> Document | None:
        """The orchestrator's serialized state, or None."""
        validate_id(session_id, "session")
        validate_id(multi_agent_id, "multi-agent")
        record = await self.documents.read_record(session_id, "multi_agents", "multi_agent_id", multi_agent_id)
        return None if record is None else dict(record["state"])

    @on_home_loop
    async def update_multi_agent(self, session_id: str, multi_agent: MultiAgentBase, **kwargs: Any) -> None:
        """Replace the orchestrator's state; raises :class:`NotFoundError` if it was never created."""
        validate_id(session_id, "session")
        multi_agent_id = validate_id(multi_agent.id, "multi-agent")
        state = multi_agent.serialize_state()
        match = {"multi_agent_id": multi_agent_id}
        what = f"multi-agent {multi_agent_id!r}"
        if not await self.documents.update_record(
            session_id, "multi_agents", match, {"state": state}, {"state": state}, what
        ):
            raise NotFoundError(f"multi-agent {multi_agent_id!r} in session {session_id!r} does not exist")

    # -- metadata and feedback --------------------------------------------------------------------

    @on_home_loop
    async def update_metadata(self, session_id: str, metadata: Mapping[str, Any]) -> None:
        """Merge ``metadata`` into the session's metadata (nested dicts merge key by key)."""
        validate_id(session_id, "session")
        paths = flatten_metadata_update(metadata)
        if not paths:
            return
        encoded_size("metadata", session_id, paths)  # every value checked before anything is written
        fresh = self.documents.fresh_fields(session_id)
        for field in ("metadata", "last_activity_at"):
            del fresh[field]
        await self._ready()
        with storing("metadata", session_id, paths):
            await self.documents.upsert(session_id, {"$set": {**paths, **last_activity()}, "$setOnInsert": fresh})

    @on_home_loop
    async def get_metadata(self, session_id: str) -> Document | None:
        """``{"_id": session_id, "metadata": {...}}`` (the earlier library's shape), or None if the
        session does not exist."""
        document = await self.read_session_fields(session_id, ["metadata"])
        if document is None:
            return None
        return {"_id": document["_id"], "metadata": dict(document.get("metadata") or {})}

    @on_home_loop
    async def read_session_fields(self, session_id: str, names: Sequence[str]) -> Document | None:
        """The named top-level fields of the session document (with ``_id``), or None; one read."""
        validate_id(session_id, "session")
        return await self.namespace.sessions.find_one(self.namespace.live(session_id), dict.fromkeys(names, 1))

    @on_home_loop
    async def get_session_viewer_password(self, session_id: str) -> str | None:
        """The session's legacy viewer token (random, generated at creation), or None."""
        document = await self.read_session_fields(session_id, ["session_viewer_password"])
        return None if document is None else document.get("session_viewer_password")

    @on_home_loop
    async def get_application_name(self, session_id: str) -> str | None:
        """The application name the session was created with, or None."""
        document = await self.read_session_fields(session_id, ["application_name"])
        return None if document is None else document.get("application_name")

    @on_home_loop
    async def read_agent_records(self, session_id: str, agent_id: str | None = None) -> list[Document] | None:
        """The stored agent records (configuration fields included) of the session, or only
        ``agent_id``'s; None if the session does not exist. One read."""
        validate_id(session_id, "session")
        if agent_id is not None:
            validate_id(agent_id, "agent")
        document = await self.namespace.sessions.find_one(self.namespace.live(session_id), {"agents": 1})
        if document is not None and isinstance(document.get("agents"), Mapping):
            # Stored by the original manager (v0.9): read through its decoder, as load_session does.
            document, _ = await self.load_session(session_id, create=False)
        if document is None:
            return None
        records = list(document.get("agents") or [])
        return records if agent_id is None else [record for record in records if record.get("agent_id") == agent_id]

    @on_home_loop
    async def set_agent_config(self, session_id: str, agent_id: str, config: Mapping[str, Any]) -> None:
        """Set configuration fields (``model``, ``system_prompt``, ``prompt_metadata``) of a stored agent.

        Raises :class:`NotFoundError` if the session or the agent does not exist.
        """
        validate_id(session_id, "session")
        validate_id(agent_id, "agent")
        _check_agent_config(config)
        if not config:
            return
        changes = {f"agents.$.{field}": value for field, value in config.items()}
        with storing(f"agent {agent_id!r} configuration", session_id, changes):
            result = await self.namespace.sessions.update_one(
                {**self.namespace.live(session_id), "agents.agent_id": agent_id},
                {"$set": {**changes, **last_activity()}},
            )
        if result.matched_count == 0:
            raise NotFoundError(f"agent {agent_id!r} in session {session_id!r} does not exist")

    @on_home_loop
    async def delete_metadata(self, session_id: str, keys: Sequence[str]) -> None:
        """Remove top-level metadata keys; missing keys are ignored."""
        validate_id(session_id, "session")
        fields = validate_metadata_keys(keys)
        if fields:
            await self.namespace.sessions.update_one(
                self.namespace.live(session_id),
                {"$unset": {f"metadata.{field}": "" for field in fields}, "$set": last_activity()},
            )

    @on_home_loop
    async def add_feedback(self, session_id: str, feedback: Mapping[str, Any]) -> None:
        """Store one feedback document, stamped with ``created_at``."""
        validate_id(session_id, "session")
        if not isinstance(feedback, Mapping):
            raise InvalidInputError(f"feedback must be a dict, got {type(feedback).__name__}")
        check_nested_keys(feedback, 0)
        document = self.expiry.stamp(codec.feedback_document(session_id, dict(feedback)))
        if encoded_size("feedback", session_id, document) > BSON_LIMIT:
            raise DocumentTooLargeError(too_large_message("feedback", session_id, feedback, "refused before writing"))
        await self._ready()
        if self.application_scope is not None or self.retention is not None:
            # Feedback carries no application name and must not outlive its session: anchor it to a live
            # session of this application, created if missing (like update_metadata does), touched if due.
            await self.documents.load_or_create(session_id, GENERATION)
        with storing("feedback", session_id, feedback):
            await self.namespace.feedback.insert_one(document)

    @on_home_loop
    async def get_feedbacks(self, session_id: str) -> list[Document]:
        """The session's feedback, oldest first."""
        validate_id(session_id, "session")
        if not await self.documents.owns(session_id, False):
            return []
        documents = await self.namespace.feedback.find(
            {"session_id": session_id, **live(codec.utc_now())}, sort=[("created_at", 1), ("_id", 1)]
        )
        return [codec.feedback_from_document(document) for document in documents]

    # -- lifecycle --------------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the client if this repository created it; borrowed clients stay open. Idempotent."""
        if self._owns_runtime:
            await self.runtime.aclose()

    async def __aenter__(self) -> AsyncMongoDBSessionRepository:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(database_name={self.database_name!r}, "
            f"collection_name={self.collection_name!r}, client={self.runtime.kind!r})"
        )


# Top-level message fields a caller may add to the stored document (the rest belong to the codec).
_EXTRA_MESSAGE_FIELDS = frozenset({"usage", "invocation", "redaction"})


def _extra_message_fields(fields: Mapping[str, Any] | None) -> Mapping[str, Any]:
    unknown = sorted(set(fields or ()) - _EXTRA_MESSAGE_FIELDS)
    if unknown:
        raise InvalidInputError(f"unknown extra message fields {unknown}; allowed: {sorted(_EXTRA_MESSAGE_FIELDS)}")
    return fields or {}


def _check_agent_config(config: Mapping[str, Any]) -> None:
    unknown = sorted(set(config) - set(codec.AGENT_CONFIG_FIELDS))
    if unknown:
        raise InvalidInputError(f"unknown agent configuration fields {unknown}")
