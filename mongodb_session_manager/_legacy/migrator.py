"""Moving one session from the original manager's layout into ours.

In place (source and target are the same namespace; the original and this library both keep the
session document at ``_id`` = session id in the configured collection):

1. **Claim**: a conditional update marks the original document with ``legacy_migration: {token,
   since}``. The document is otherwise untouched, so every reader (ours decodes it, an original
   process reads it as before) still sees the whole session.
2. **Back up** the original document verbatim into ``<collection>.legacy`` (for verification and roll back).
3. **Copy** messages and feedback into their collections. Copies are idempotent: message documents are
   unique per (session, agent, message id), feedback documents get ids derived from their content and
   position, and a re-copy updates a message whose content changed since.
4. **Commit**: one conditional update replaces the original fields by ours, fenced on the claim token
   and on what an original process writes (``updated_at``, metadata, feedback, guardrail events, each
   agent's data and message count, the latest message's dates, redaction, metrics and guardrail
   event). If an original process wrote meanwhile (a rolling
   deploy), the fence fails, and the migrator copies again from the new content; after
   :data:`COMMIT_ATTEMPTS` failures it releases the claim and raises :class:`LegacySessionConflictError`.

A crash anywhere before the commit leaves the original document (with a claim that goes stale after
``lease_seconds``) and some copied children: the session still reads as before, and the next
migrator takes the stale claim over and copies again without duplicates. Two migrators of the same
session: one holds the claim, the other waits for its commit (at most ``lease_seconds``).

To another namespace (``--target-*``), the source is only read; the target session document records
the source's fingerprint, so that a second run skips sessions that did not change.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import bson
from pymongo.errors import BulkWriteError, DuplicateKeyError
from strands.types.session import SessionMessage

from .. import _codec as codec
from .._driver import CollectionPort
from .._indexes import ensure_indexes as create_indexes
from .._types import Document
from ..errors import DuplicateMessageError, LegacySessionConflictError
from ..retention import as_utc
from .layout import (
    BACKUP_SUFFIX,
    CLAIM_FIELD,
    LEGACY_FIELD,
    LEGACY_FILTER,
    STRAY_FEEDBACK,
    LegacyAgent,
    LegacySession,
    Problem,
    decode_session,
    feedback_documents,
    is_legacy,
    removed_fields,
)

if TYPE_CHECKING:
    from ..repository import AsyncMongoDBSessionRepository

logger = logging.getLogger(__name__)

# Called at named points of a migration (``claimed``, ``agent-copied``, ``copied``); tests use it to
# interrupt a migration where a crash could happen.
Checkpoint = Callable[[str, str], Awaitable[None]]

COMMIT_ATTEMPTS = 5
DEFAULT_LEASE_SECONDS = 30.0
# How much longer than a lease a migrator waits for another one's claim before giving up.
_CLAIM_SLACK_SECONDS = 5.0
_MESSAGE_KEYS = ("message", "redact_message", "updated_at", "redaction", LEGACY_FIELD)


@dataclass
class SessionOutcome:
    """What happened to one session."""

    session_id: str
    status: str  # "migrated", "already", "missing", "skipped" or "checked" (dry run)
    agents: int = 0
    messages: int = 0
    feedback: int = 0
    bytes: int = 0
    problems: list[Problem] = field(default_factory=list)
    reason: str | None = None

    @classmethod
    def of(cls, session: LegacySession, status: str) -> SessionOutcome:
        return cls(
            session.session_id,
            status,
            agents=len(session.agents),
            messages=session.message_count,
            feedback=len(session.feedback),
            bytes=session.source_bytes,
            problems=list(session.problems),
        )


class LegacyMigrator:
    """Migrates sessions of the original layout into the namespace of ``repository``.

    Args:
        repository: The repository of the target namespace (its messages, feedback and GridFS bucket
            receive the copies; large messages go through its ``create_message``).
        source_database: Database of the original sessions; the repository's by default.
        source_collection: Collection of the original sessions; the repository's by default.
        lease_seconds: How long a migration claim stays valid; a claim older than this is taken over.
        checkpoint: Awaited at named points of each migration (fault injection in tests).
        ensure_indexes: Create the target's indexes first (the unique message index makes copies
            idempotent). Off for a migration on touch: the repository already did, or may not.
    """

    def __init__(
        self,
        repository: AsyncMongoDBSessionRepository,
        *,
        source_database: str | None = None,
        source_collection: str | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        checkpoint: Checkpoint | None = None,
        ensure_indexes: bool = False,
    ) -> None:
        self.repository = repository
        port = repository.runtime.port
        database = repository.database_name
        collection = repository.collection_name
        self.source_database = source_database or database
        self.source_collection = source_collection or collection
        self.in_place = (self.source_database, self.source_collection) == (database, collection)
        self.source: CollectionPort = port.collection(self.source_database, self.source_collection)
        self.backup: CollectionPort = port.collection(self.source_database, self.source_collection + BACKUP_SUFFIX)
        self.sessions: CollectionPort = port.collection(database, collection)
        self.messages: CollectionPort = port.collection(database, collection + codec.MESSAGES_SUFFIX)
        self.feedback: CollectionPort = port.collection(database, collection + codec.FEEDBACK_SUFFIX)
        self.lease = timedelta(seconds=lease_seconds)
        self._checkpoint = checkpoint
        self._indexes_ready = not ensure_indexes

    async def _point(self, name: str, session_id: str) -> None:
        if self._checkpoint is not None:
            await self._checkpoint(name, session_id)

    async def _ready(self) -> None:
        if not self._indexes_ready:
            repository = self.repository
            await create_indexes(
                repository.runtime.port,
                repository.database_name,
                repository.collection_name,
                repository.metadata_fields,
                ttl=repository.retention is not None,
            )
            self._indexes_ready = True

    # -- one session ------------------------------------------------------------------------------

    async def migrate(self, session_id: str) -> SessionOutcome:
        """Move the session into our layout. Idempotent: a migrated session reports ``already``.

        Raises:
            LegacySessionConflictError: an original-version process kept writing to the session
                during every attempt; the session stays readable in the original layout.
        """
        await self._ready()
        if not self.in_place:
            return await self._copy_to_target(session_id)
        token = secrets.token_hex(8)
        for attempt in range(COMMIT_ATTEMPTS):
            document, fresh = await self._claim(session_id, token)
            if document is None:
                return SessionOutcome(session_id, "missing")
            if not is_legacy(document):
                return SessionOutcome(session_id, "already")
            session = decode_session(document)
            await self._point("claimed", session_id)
            await self._back_up(document)
            await self._copy_children(session, lookup=not (fresh and attempt == 0))
            await self._point("copied", session_id)
            if await self._commit(document, session, token):
                logger.info(
                    "session_id=<%s> | migrated from the original layout: %d agent(s), %d message(s), %d feedback",
                    session_id,
                    len(session.agents),
                    session.message_count,
                    len(session.feedback),
                )
                return SessionOutcome.of(session, "migrated")
            logger.info("session_id=<%s> | changed while migrated (attempt %d); copying again", session_id, attempt)
        await self.source.update_one({"_id": session_id, f"{CLAIM_FIELD}.token": token}, {"$unset": {CLAIM_FIELD: ""}})
        raise LegacySessionConflictError(
            f"session {session_id!r} kept changing in the original layout while it was migrated "
            f"({COMMIT_ATTEMPTS} attempts): a process of the original manager is still writing it. "
            "Nothing was lost; stop the original processes and retry"
        )

    async def _claim(self, session_id: str, token: str) -> tuple[Document | None, bool]:
        """Claim the original document for ``token``; returns it as claimed (or, if it is missing or
        no longer in the original layout, as it is) and whether the claim is the first one ever."""
        delay = 0.02
        # Waiting ends when the other claim commits or goes stale; the slack covers lost races.
        deadline = time.monotonic() + self.lease.total_seconds() + _CLAIM_SLACK_SECONDS
        while time.monotonic() < deadline:
            now = codec.utc_now()
            claim = {"token": token, "since": now}
            result = await self.source.update_one(
                {"_id": session_id, **LEGACY_FILTER, CLAIM_FIELD: {"$exists": False}}, {"$set": {CLAIM_FIELD: claim}}
            )
            fresh = result.matched_count == 1
            if not fresh:
                document = await self.source.find_one({"_id": session_id})
                if document is None or not is_legacy(document):
                    return document, False
                held = document.get(CLAIM_FIELD)
                if not isinstance(held, Mapping):
                    continue  # released meanwhile
                if held.get("token") != token:
                    since = held.get("since")
                    if isinstance(since, datetime) and now - as_utc(since) < self.lease:
                        # Another migrator is at work: wait for its commit.
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, 0.5)
                        continue
                    taken = await self.source.update_one(
                        {"_id": session_id, f"{CLAIM_FIELD}.token": held.get("token")}, {"$set": {CLAIM_FIELD: claim}}
                    )
                    if taken.matched_count == 0:
                        continue
                    logger.info("session_id=<%s> | took over a stale migration claim", session_id)
            document = await self.source.find_one({"_id": session_id})
            if document is None or not is_legacy(document):
                return document, False
            if (document.get(CLAIM_FIELD) or {}).get("token") == token:
                return document, fresh
        raise LegacySessionConflictError(
            f"session {session_id!r}: another migrator held it for longer than its lease; nothing was written"
        )

    async def _back_up(self, document: Document) -> None:
        copy = {key: value for key, value in document.items() if key != CLAIM_FIELD}
        try:
            await self.backup.insert_one(copy)
        except DuplicateKeyError:
            # An earlier attempt backed up an older version of the document: keep the newest.
            await self.backup.delete_many({"_id": document["_id"]})
            await self.backup.insert_one(copy)

    def _fence(self, document: Document, token: str) -> Document:
        """The filter of the commit: our claim, and everything an original process changes when it writes."""
        fence: Document = {"_id": document["_id"], f"{CLAIM_FIELD}.token": token}
        for name in ("updated_at", "metadata", "feedbacks", "guardrail_events"):
            fence[name] = document.get(name)
        for agent_id, entry in document["agents"].items():
            if "." in agent_id or agent_id.startswith("$") or not isinstance(entry, Mapping):
                continue  # not a path the original could have written through
            prefix = f"agents.{agent_id}"
            fence[f"{prefix}.agent_data"] = entry.get("agent_data")
            messages = entry.get("messages")
            if isinstance(messages, list):
                fence[f"{prefix}.messages"] = {"$size": len(messages)}
                last = messages[-1] if messages else None
                if isinstance(last, Mapping):
                    # What the original changes on the latest message (not its content: that may be huge,
                    # and a change of it comes with a new updated_at).
                    for name in ("message_id", "updated_at", "redact_message", "event_loop_metrics", "guardrail_event"):
                        fence[f"{prefix}.messages.{len(messages) - 1}.{name}"] = last.get(name)
        return fence

    async def _commit(self, document: Document, session: LegacySession, token: str) -> bool:
        update: Document = {"$set": session.document()}
        removed = removed_fields(document, session)
        if removed:
            update["$unset"] = {name: "" for name in removed}
        result = await self.source.update_one(self._fence(document, token), update)
        return result.matched_count == 1

    # -- children ---------------------------------------------------------------------------------

    async def _copy_children(self, session: LegacySession, *, lookup: bool) -> None:
        for agent in session.agents:
            await self._copy_messages(session.session_id, agent, lookup=lookup)
            await self._point("agent-copied", session.session_id)
        await self._copy_feedback(session.feedback, lookup=lookup)

    async def _copy_messages(self, session_id: str, agent: LegacyAgent, *, lookup: bool) -> None:
        from .._message_blobs import LARGE_MESSAGE_BYTES

        agent_id = agent.record["agent_id"]
        pending = agent.messages
        if lookup:
            stored = {
                document["message_id"]: document
                for document in await self.messages.find(
                    {"session_id": session_id, "agent_id": agent_id},
                    projection={"_id": 0, "message_id": 1, "message_blob": 1, **{key: 1 for key in _MESSAGE_KEYS}},
                )
            }
            pending = []
            for document in agent.messages:
                existing = stored.get(document["message_id"])
                if existing is None:
                    pending.append(document)
                elif existing.get("message_blob") is None and any(
                    existing.get(key) != document.get(key) for key in _MESSAGE_KEYS
                ):
                    # Redacted or annotated by an original process after an earlier copy.
                    await self.messages.update_one(
                        {"session_id": session_id, "agent_id": agent_id, "message_id": document["message_id"]},
                        {"$set": {key: document[key] for key in _MESSAGE_KEYS if key in document}},
                    )
        small: list[Document] = []
        large: list[Document] = []
        for document in pending:
            (large if len(bson.encode(document)) > LARGE_MESSAGE_BYTES else small).append(dict(document))
        if small:
            try:
                await self.messages.insert_many(small)
            except (BulkWriteError, DuplicateKeyError):
                if lookup:
                    raise
                # Another migrator took a stale claim over and copied some of them: copy the rest.
                await self._copy_messages(session_id, agent, lookup=True)
                return
        for document in large:
            # The repository's own path for oversized messages (GridFS), so that reads find them as usual.
            message = SessionMessage(
                message=document["message"],
                message_id=document["message_id"],
                redact_message=document["redact_message"],
                created_at=document["created_at"],
                updated_at=document["updated_at"],
            )
            try:
                await self.repository.create_message(session_id, agent_id, message, session_verified=True)
            except DuplicateMessageError:
                continue
            annotations = {key: document[key] for key in ("redaction", LEGACY_FIELD) if key in document}
            if annotations:
                await self.messages.update_one(
                    {"session_id": session_id, "agent_id": agent_id, "message_id": document["message_id"]},
                    {"$set": annotations},
                )

    async def _copy_feedback(self, documents: list[Document], *, lookup: bool) -> None:
        pending = documents
        if lookup and pending:
            ids = [document["_id"] for document in pending]
            stored = await self.feedback.find({"_id": {"$in": ids}}, projection={"_id": 1})
            have = {document["_id"] for document in stored}
            pending = [document for document in pending if document["_id"] not in have]
        if not pending:
            return
        try:
            await self.feedback.insert_many([dict(document) for document in pending])
        except (BulkWriteError, DuplicateKeyError):
            if lookup:
                raise
            await self._copy_feedback(documents, lookup=True)

    async def adopt_stray_feedback(self, session_id: str, document: Document) -> None:
        """Move feedback an original-version process pushed onto a migrated session into the
        feedback collection (and its ``updated_at`` date back to an ISO string)."""
        stray = document.get(STRAY_FEEDBACK)
        if not isinstance(stray, list):
            return
        problems: list[Problem] = []
        await self._copy_feedback(feedback_documents(session_id, stray, problems, codec.utc_now()), lookup=True)
        for problem in problems:
            logger.warning("not migrated: %s", problem.describe())
        fence: Document = {"_id": session_id, STRAY_FEEDBACK: stray}
        update: Document = {"$unset": {STRAY_FEEDBACK: ""}}
        updated = document.get("updated_at")
        if isinstance(updated, datetime):
            fence["updated_at"] = updated
            update["$set"] = {"updated_at": as_utc(updated).isoformat()}
        # If more feedback arrived meanwhile, the fence fails and the next load adopts it all.
        await self.sessions.update_one(fence, update)
        logger.info("session_id=<%s> | adopted %d feedback an original-version process added", session_id, len(stray))

    # -- to another namespace ---------------------------------------------------------------------

    async def _copy_to_target(self, session_id: str) -> SessionOutcome:
        document = await self.source.find_one({"_id": session_id})
        if document is None:
            return SessionOutcome(session_id, "missing")
        if not is_legacy(document):
            return SessionOutcome(session_id, "skipped", reason="not in the original layout")
        session = decode_session(document)
        existing = await self.sessions.find_one({"_id": session_id}, {f"{LEGACY_FIELD}.fingerprint": 1})
        if existing is not None:
            previous = (existing.get(LEGACY_FIELD) or {}).get("fingerprint")
            if previous == session.fingerprint:
                return SessionOutcome(session_id, "already")
            if previous is None:
                return SessionOutcome(
                    session_id, "skipped", reason="the target holds a session of this id that was not migrated"
                )
        await self._copy_children(session, lookup=existing is not None)
        await self._point("copied", session_id)
        for attempt in range(2):
            try:
                await self.sessions.update_one({"_id": session_id}, {"$set": session.document()}, upsert=True)
                break
            except DuplicateKeyError:
                if attempt:
                    raise  # two upserts raced: the retry updates the winner's document
        return SessionOutcome.of(session, "migrated")


def view(document: Document) -> Document:
    """An original session document as our session document would be (read only, nothing written)."""
    return {"_id": document["_id"], **decode_session(document).document()}


__all__ = ["LEGACY_FILTER", "LegacyMigrator", "SessionOutcome", "view"]
