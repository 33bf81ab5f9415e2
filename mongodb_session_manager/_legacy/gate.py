"""The core's one hook into the original layout: called when a loaded session document is in it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from strands.types.session import SessionMessage

from .. import _codec as codec
from .._types import Document
from .layout import LEGACY_MARK, decode_session, is_legacy
from .migrator import LegacyMigrator, view

if TYPE_CHECKING:
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
        return view(document) if is_legacy(document) else document
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


async def original_messages(repository: RepositoryBase, session_id: str, agent_id: str) -> list[SessionMessage] | None:
    """The agent's messages, in id order, if the session is still in the original layout (else None).

    Decoded from the original document; nothing is written.
    """
    document = await repository.namespace.sessions.find_one(
        {**repository.namespace.live(session_id), LEGACY_MARK: {"$exists": True}}
    )
    if document is None or not is_legacy(document):
        return None
    for agent in decode_session(document).agents:
        if agent.record["agent_id"] == agent_id:
            return [codec.message_from_document(message) for message in agent.messages]
    return []
