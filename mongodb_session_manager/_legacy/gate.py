"""The core's one hook into the original layout: called when a loaded session document is in it, and
by the reads that find nothing of a session in our layout."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import bson

from .._types import Document
from .layout import LEGACY_FILTER, LEGACY_MARK, LegacySession, decode_session, is_legacy
from .migrator import LegacyMigrator, view

if TYPE_CHECKING:
    from .._driver import CollectionPort
    from .._repository_base import RepositoryBase
    from ..repository import AsyncMongoDBSessionRepository

logger = logging.getLogger(__name__)

T = TypeVar("T")
# Migrations whose caller was cancelled, kept referenced until they finish.
_orphans: set[asyncio.Task[Any]] = set()


def _forget(task: asyncio.Task[Any]) -> None:
    _orphans.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.info("a migration whose caller had gone failed: %r", task.exception())


async def _finishing(work: Coroutine[Any, Any, T]) -> T:
    """Await ``work`` in a task of its own that the caller's cancellation does not cancel."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():
            _orphans.add(task)
            task.add_done_callback(_forget)
        raise


def as_ours(repository: RepositoryBase, document: Document) -> Document:
    """A session document, or a projection of one with :data:`LEGACY_MARK`, as our layout has it: an
    original one is decoded in memory (nothing written), as reading it back once migrated would return it."""
    if not is_legacy(document) and (LEGACY_MARK not in document or "agents" in document):
        return document
    return _as_read_back(repository.namespace.sessions, [view(document)])[0]


async def as_ours_all(repository: RepositoryBase, documents: list[Document]) -> list[Document]:
    """Session documents (projections with :data:`LEGACY_MARK`) with each original-layout one replaced by
    its whole document as our layout has it: one more read when there is any, none otherwise; nothing
    is written. (A projection cannot name the agents of an original document: they are its keys.)"""
    originals = [document["_id"] for document in documents if LEGACY_MARK in document]
    if not originals:
        return documents
    found = await repository.namespace.sessions.find({"_id": {"$in": originals}, **LEGACY_FILTER})
    decoded = {document["_id"]: as_ours(repository, document) for document in found}
    return [decoded.get(document["_id"], document) for document in documents]


async def upgrade(
    repository: AsyncMongoDBSessionRepository, session_id: str, document: Document, *, migrate: bool
) -> Document | None:
    """The session ``document`` (in the original layout, or migrated but with feedback an
    original-version process added since) as our layout has it.

    With ``migrate`` (a restore, or a write about to happen), the session is first migrated in place
    and read back; otherwise it is decoded in memory and nothing is written (reads never write).
    ``document`` may be a projection: with :data:`LEGACY_MARK` in it, it is an original document.
    """
    legacy = is_legacy(document) or LEGACY_MARK in document
    if not migrate:
        return as_ours(repository, document)
    migrator = LegacyMigrator(repository)
    if legacy:
        # Shielded: a caller cancelled mid-way does not leave the session claimed (others would wait
        # for the claim to go stale); the migration finishes for whoever restores the session next.
        outcome = await _finishing(migrator.migrate(session_id))
        for problem in outcome.problems:  # the bulk command reports them itself
            logger.warning("not migrated (kept in %s): %s", migrator.backup.full_name, problem.describe())
        if repository.retention is not None:
            # The copies carry no expiry yet: give them the session's, as any write would.
            await repository.touch_session(session_id)
    else:
        await migrator.adopt_stray_feedback(session_id, document)
    migrated, _ = await repository.load_session(session_id, create=False)
    if migrated is None:  # deleted meanwhile: a restore starts it afresh, as for any missing session
        migrated, _ = await repository.load_session(session_id)
    return migrated


async def original_session(repository: RepositoryBase, session_id: str) -> LegacySession | None:
    """The session decoded from its original document if it is still in the original layout, else None.

    One read (it matches only an original document, so a session in our layout is not fetched);
    nothing is written. What it returns is what a migration would store.
    """
    document = await repository.namespace.sessions.find_one(
        {**repository.namespace.live(session_id), LEGACY_MARK: {"$exists": True}}
    )
    return decode_session(document) if document is not None and is_legacy(document) else None


async def original_messages(repository: RepositoryBase, session_id: str, agent_id: str) -> list[Document] | None:
    """The agent's message documents (as a migration would store them, in id order) if the session is
    still in the original layout, else None. One read; nothing is written."""
    session = await original_session(repository, session_id)
    if session is None:
        return None
    messages = next((agent.messages for agent in session.agents if agent.record["agent_id"] == agent_id), [])
    return _as_read_back(repository.namespace.messages, messages)


async def original_feedback(repository: RepositoryBase, session_id: str) -> list[Document] | None:
    """The session's feedback documents (as a migration would store them, oldest first) if the session
    is still in the original layout, else None. One read; nothing is written."""
    session = await original_session(repository, session_id)
    if session is None:
        return None
    feedback = sorted(session.feedback, key=lambda document: (document["created_at"], document["_id"]))
    return _as_read_back(repository.namespace.feedback, feedback)


def _as_read_back(collection: CollectionPort, documents: list[Document]) -> list[Document]:
    """``documents`` as reading them back from ``collection`` after storing them would return them
    (dates naive or aware as the client decodes them, bytes, the client's document class)."""
    options = collection.codec_options
    return [bson.decode(bson.encode(document), codec_options=options) for document in documents]
