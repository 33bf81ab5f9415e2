"""Messages of :class:`~.repository.AsyncMongoDBSessionRepository`: Strands' message CRUD and the
extra fields (usage, invocation, redaction) stored with a message."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from strands.types.content import Message
from strands.types.session import SessionMessage

from . import _codec as codec
from ._messages import missing as missing_message
from ._repository_base import RepositoryBase
from ._runtime import on_home_loop
from ._types import Document
from ._validation import (
    validate_id,
    validate_message_id,
)
from .errors import (
    InvalidInputError,
)

logger = logging.getLogger(__name__)


class MessageOperations(RepositoryBase):
    """Message methods of :class:`~.repository.AsyncMongoDBSessionRepository`."""

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
    async def last_message(
        self, session_id: str, agent_id: str, *, session_verified: bool = False
    ) -> tuple[SessionMessage, Document] | None:
        """The agent's last stored message with the message document's extra fields (``turn``,
        ``usage``, ...), or None (one indexed read)."""
        validate_id(session_id, "session")
        validate_id(agent_id, "agent")
        if not await self.documents.owns(session_id, session_verified):
            return None
        document = await self.messages.last(session_id, agent_id)
        if document is None and not session_verified:
            document = next(reversed(await self._original_messages(session_id, agent_id)), None)
        if document is None:
            return None
        extra = {name: document[name] for name in _EXTRA_MESSAGE_FIELDS if name in document}
        return codec.message_from_document(document), extra

    @on_home_loop
    async def last_message_id(self, session_id: str, agent_id: str, *, session_verified: bool = False) -> int | None:
        """The highest stored message id of the agent, or None (one indexed read)."""
        validate_id(session_id, "session")
        validate_id(agent_id, "agent")
        if not await self.documents.owns(session_id, session_verified):
            return None
        last = await self.messages.last_id(session_id, agent_id)
        if last is None and not session_verified:
            stored = await self._original_messages(session_id, agent_id)
            last = stored[-1]["message_id"] if stored else None
        return last

    @on_home_loop
    async def read_message(
        self, session_id: str, agent_id: str, message_id: int, **kwargs: Any
    ) -> SessionMessage | None:
        """The message, or None if it does not exist.

        Like every message read, it also sees a session the original manager (v0.9) stored and nobody
        restored yet: read from its original document when our layout has nothing (nothing written).
        """
        validate_id(session_id, "session")
        validate_id(agent_id, "agent")
        validate_message_id(message_id)
        if not await self.documents.owns(session_id, False):
            return None
        document = await self.messages.read(session_id, agent_id, message_id)
        if document is None:
            stored = await self._original_messages(session_id, agent_id)
            document = next((message for message in stored if message["message_id"] == message_id), None)
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
            stored = await self._original_messages(session_id, agent_id)
            documents = stored[offset : None if limit is None else offset + limit]
        return [codec.message_from_document(document) for document in documents]

    @on_home_loop
    async def count_messages(self, session_id: str, agent_id: str) -> int:
        """How many messages are stored for this agent (in a session still in the original manager's
        layout, how many a migration would store)."""
        validate_id(session_id, "session")
        validate_id(agent_id, "agent")
        if not await self.documents.owns(session_id, False):
            return 0
        count = await self.messages.count(session_id, agent_id)
        return count or len(await self._original_messages(session_id, agent_id))

    async def _original_messages(self, session_id: str, agent_id: str) -> list[Document]:
        """The agent's messages from the session's original document, for a read that found none in our
        layout: the session may be one the original manager (v0.9) stored and nobody restored yet.
        One read, nothing written; empty if the session is not in the original layout."""
        from ._legacy.gate import original_messages

        return await original_messages(self, session_id, agent_id) or []


# Top-level message fields a caller may add to the stored document (the rest belong to the codec).
_EXTRA_MESSAGE_FIELDS = frozenset({"usage", "invocation", "redaction", "turn"})


def _extra_message_fields(fields: Mapping[str, Any] | None) -> Mapping[str, Any]:
    unknown = sorted(set(fields or ()) - _EXTRA_MESSAGE_FIELDS)
    if unknown:
        raise InvalidInputError(f"unknown extra message fields {unknown}; allowed: {sorted(_EXTRA_MESSAGE_FIELDS)}")
    return fields or {}
