"""Session metadata, feedback and agent configuration of :class:`~.repository.AsyncMongoDBSessionRepository`."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from . import _codec as codec
from ._encryption import AGENT_FIELDS, feedback_fields
from ._repository_base import RepositoryBase, check_agent_config
from ._runtime import on_home_loop
from ._session_documents import GENERATION, last_activity
from ._types import Document
from ._validation import (
    check_nested_keys,
    flatten_metadata_update,
    validate_id,
    validate_metadata_keys,
)
from ._write_errors import BSON_LIMIT, encoded_size, storing, too_large_message
from .errors import (
    DocumentTooLargeError,
    InvalidInputError,
    NotFoundError,
)
from .retention import live

logger = logging.getLogger(__name__)


class SessionRecordOperations(RepositoryBase):
    """Metadata, feedback and agent-configuration methods of :class:`~.repository.AsyncMongoDBSessionRepository`."""

    # -- metadata and feedback --------------------------------------------------------------------

    @on_home_loop
    async def update_metadata(self, session_id: str, metadata: Mapping[str, Any]) -> None:
        """Merge ``metadata`` into the session's metadata (nested dicts merge key by key)."""
        validate_id(session_id, "session")
        paths = flatten_metadata_update(metadata)
        if not paths:
            return
        encoded_size("metadata", session_id, paths)  # every value checked before anything is written
        paths = await self.cipher.seal_metadata(session_id, metadata, paths)
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
        metadata = await self.cipher.open(session_id, dict(document.get("metadata") or {}))
        return {"_id": document["_id"], "metadata": metadata}

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
        for record in records:
            await self.cipher.open(session_id, record, AGENT_FIELDS)
        return records if agent_id is None else [record for record in records if record.get("agent_id") == agent_id]

    @on_home_loop
    async def set_agent_config(self, session_id: str, agent_id: str, config: Mapping[str, Any]) -> None:
        """Set configuration fields (``model``, ``system_prompt``, ``prompt_metadata``) of a stored agent.

        Raises :class:`NotFoundError` if the session or the agent does not exist.
        """
        validate_id(session_id, "session")
        validate_id(agent_id, "agent")
        check_agent_config(config)
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
        await self.cipher.seal(session_id, document["feedback"], feedback_fields(document["feedback"]))
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
        """The session's feedback, oldest first (of a session still in the original manager's layout,
        read from its original document, writing nothing)."""
        validate_id(session_id, "session")
        if not await self.documents.owns(session_id, False):
            return []
        documents = await self.namespace.feedback.find(
            {"session_id": session_id, **live(codec.utc_now())}, sort=[("created_at", 1), ("_id", 1)]
        )
        if not documents:
            # The session may be one the original manager (v0.9) stored and nobody restored yet: read its
            # feedback from that document (one read, nothing written).
            from ._legacy.gate import original_feedback

            documents = await original_feedback(self, session_id) or []
        for document in documents:
            await self.cipher.open(session_id, document["feedback"])
        return [codec.feedback_from_document(document) for document in documents]
