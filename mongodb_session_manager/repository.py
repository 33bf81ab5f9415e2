"""The async core: every read and write of session data goes through this module."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from strands.types.session import Session, SessionAgent

from . import _codec as codec
from ._encryption import AGENT_FIELDS, MULTI_AGENT_FIELDS
from ._legacy.layout import LEGACY_MARK
from ._repository_base import RepositoryBase, check_agent_config
from ._repository_messages import MessageOperations
from ._repository_records import SessionRecordOperations
from ._runtime import on_home_loop
from ._types import Document
from ._validation import (
    validate_id,
)
from .errors import (
    ConcurrentModificationError,
    InvalidInputError,
    NotFoundError,
)

if TYPE_CHECKING:
    from strands.multiagent.base import MultiAgentBase


logger = logging.getLogger(__name__)


class AsyncMongoDBSessionRepository(MessageOperations, SessionRecordOperations, RepositoryBase):
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
        encryption: Encrypt conversations, state and feedback in this process before they are stored
            (:class:`~mongodb_session_manager.EncryptionOptions`, ``docs/encryption.md``).
        **kwargs: Client options, used only when a connection string is given.
    """

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
        if document is None:
            return None
        if LEGACY_MARK in document:  # stored by the original manager (v0.9): its dates are BSON dates
            from ._legacy.gate import as_ours

            document = as_ours(self, document)
        return codec.session_from_document(document)

    @on_home_loop
    async def delete_session(self, session_id: str, **kwargs: Any) -> None:
        """Delete the session, its messages and its feedback. Deleting a missing session is a no-op."""
        validate_id(session_id, "session")
        scope = self.namespace.scope(session_id)  # an expired session is deleted too
        if self.application_scope is not None and await self.namespace.sessions.find_one(scope, {"_id": 1}) is None:
            return
        # The data key first (per-session encryption): once it is gone, every copy of the session's data,
        # backups included, is unreadable, whatever happens to the deletes below.
        await self.cipher.erase(session_id)
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
            check_agent_config(config)
            record.update(config)
        await self.cipher.seal(session_id, record, AGENT_FIELDS)
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
        if record is None:
            return None
        return codec.agent_from_record(await self.cipher.open(session_id, record, AGENT_FIELDS))

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
        record = await self.cipher.seal(session_id, codec.agent_record(session_agent), AGENT_FIELDS)
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

    # -- multi-agent ------------------------------------------------------------------------------

    @on_home_loop
    async def create_multi_agent(self, session_id: str, multi_agent: MultiAgentBase, **kwargs: Any) -> None:
        """Store a Graph's or Swarm's state; raises if one with that id exists."""
        validate_id(session_id, "session")
        multi_agent_id = validate_id(multi_agent.id, "multi-agent")
        record = codec.multi_agent_record(multi_agent_id, multi_agent.serialize_state())
        await self.cipher.seal(session_id, record, MULTI_AGENT_FIELDS)
        await self.documents.add_record(
            session_id, "multi_agents", "multi_agent_id", record, f"multi-agent {multi_agent_id!r}"
        )

    @on_home_loop
    async def read_multi_agent(self, session_id: str, multi_agent_id: str, **kwargs: Any) -> Document | None:
        """The orchestrator's serialized state, or None."""
        validate_id(session_id, "session")
        validate_id(multi_agent_id, "multi-agent")
        record = await self.documents.read_record(session_id, "multi_agents", "multi_agent_id", multi_agent_id)
        if record is None:
            return None
        return dict((await self.cipher.open(session_id, record, MULTI_AGENT_FIELDS))["state"])

    @on_home_loop
    async def update_multi_agent(self, session_id: str, multi_agent: MultiAgentBase, **kwargs: Any) -> None:
        """Replace the orchestrator's state; raises :class:`NotFoundError` if it was never created."""
        validate_id(session_id, "session")
        multi_agent_id = validate_id(multi_agent.id, "multi-agent")
        sealed = await self.cipher.seal(session_id, {"state": multi_agent.serialize_state()}, MULTI_AGENT_FIELDS)
        state = sealed["state"]
        match = {"multi_agent_id": multi_agent_id}
        what = f"multi-agent {multi_agent_id!r}"
        if not await self.documents.update_record(
            session_id, "multi_agents", match, {"state": state}, {"state": state}, what
        ):
            raise NotFoundError(f"multi-agent {multi_agent_id!r} in session {session_id!r} does not exist")

    # -- encryption -------------------------------------------------------------------------------

    @on_home_loop
    async def rewrap_data_keys(
        self, kms_provider: str | None = None, master_key: Mapping[str, Any] | None = None
    ) -> int:
        """Key rotation: re-wrap every data key of the key vault with a new master key (of ``kms_provider``,
        one of the configured providers; the current one by default). The data itself is not touched:
        only the key vault documents are rewritten. Returns how many keys were re-wrapped.

        Raises:
            InvalidInputError: the repository has no ``encryption=``, or the provider is not configured.
            MasterKeyError: a data key could not be unwrapped with the current master key.
        """
        rewrapped = await self.cipher.rewrap(kms_provider, master_key)
        logger.info("rewrapped %d data key(s) with a new master key", rewrapped)
        return rewrapped

    @on_home_loop
    async def erase_orphaned_keys(self) -> int:
        """Delete the per-session data keys of this namespace whose session no longer exists: sessions
        removed by the TTL monitor (it cannot delete key vault documents) or deleted without
        ``encryption=``. :meth:`AsyncSessionCatalog.purge_expired` does it too. Returns how many."""
        return await self.cipher.erase_orphans(self.namespace)

    # -- lifecycle --------------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the client if this repository created it; borrowed clients stay open. Idempotent."""
        if self._owns_runtime:
            if not self.runtime.closed:
                await self.runtime.run(self.cipher.close)
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
