"""The core's one hook into the original layout: called when a loaded session document is in it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .migrator import LegacyMigrator, view

if TYPE_CHECKING:
    from ..repository import AsyncMongoDBSessionRepository

Document = dict[str, Any]


async def upgrade(
    repository: AsyncMongoDBSessionRepository, session_id: str, document: Document, *, migrate: bool
) -> Document | None:
    """The session ``document`` (in the original layout) as our layout has it.

    With ``migrate`` (a restore, or a write about to happen), the session is first migrated in place
    and read back; otherwise it is decoded in memory and nothing is written (reads never write).
    """
    if not migrate:
        return view(document)
    await LegacyMigrator(repository).migrate(session_id)
    migrated, _ = await repository.load_session(session_id, create=False)
    if migrated is None:  # deleted meanwhile: a restore starts it afresh, as for any missing session
        migrated, _ = await repository.load_session(session_id)
    return migrated
