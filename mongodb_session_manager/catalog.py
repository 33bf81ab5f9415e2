"""Listing, searching and bulk-deleting sessions, plus the namespace checks an operator needs.

:class:`AsyncSessionCatalog` works on the namespace of an :class:`AsyncMongoDBSessionRepository`
(same database, collections, client and ``application_name`` scope); :class:`SessionCatalog` is its
blocking facade::

    from mongodb_session_manager import MongoDBSessionRepository
    from mongodb_session_manager.catalog import SessionCatalog

    repository = MongoDBSessionRepository("mongodb://localhost:27017/", "chat_db", "sessions")
    catalog = SessionCatalog(repository)
    page = catalog.list_sessions(metadata={"priority": "high"}, limit=20)
    while True:
        for summary in page.sessions:
            print(summary.session_id, summary.last_activity_at)
        if page.next_cursor is None:
            break
        page = catalog.list_sessions(metadata={"priority": "high"}, limit=20, cursor=page.next_cursor)

Listing is keyset pagination on ``_id`` (the session id, which never changes): a page asks for the
sessions whose id sorts after the last one of the previous page. A session that existed when the
listing started is therefore returned exactly once, whatever is inserted or deleted meanwhile.
Listing projects the summary fields only: agents' state is never read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._async_catalog import AsyncSessionCatalog
from ._catalog_model import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    CollectionStats,
    IndexStatus,
    PurgeReport,
    SessionPage,
    SessionSummary,
)
from ._types import Document
from .repository import AsyncMongoDBSessionRepository
from .sync_repository import MongoDBSessionRepository

if TYPE_CHECKING:
    from .analytics import GuardrailReport, UsageReport


__all__ = [
    "MAX_PAGE_SIZE",
    "AsyncSessionCatalog",
    "CollectionStats",
    "IndexStatus",
    "PurgeReport",
    "SessionCatalog",
    "SessionPage",
    "SessionSummary",
]


class SessionCatalog:
    """The blocking facade of :class:`AsyncSessionCatalog`: same methods, each blocking the calling thread.

    Args:
        repository: A :class:`MongoDBSessionRepository` (or its async core) whose namespace, client and
            application scope the catalog uses.
    """

    def __init__(self, repository: MongoDBSessionRepository | AsyncMongoDBSessionRepository) -> None:
        core = repository.core if isinstance(repository, MongoDBSessionRepository) else repository
        self.core = AsyncSessionCatalog(core)

    def list_sessions(
        self,
        *,
        application_name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        active_after: datetime | None = None,
        active_before: datetime | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
    ) -> SessionPage:
        """One page of matching sessions; see :meth:`AsyncSessionCatalog.list_sessions`."""
        return self.core.runtime.run_blocking(
            self.core.list_sessions,
            application_name=application_name,
            metadata=metadata,
            active_after=active_after,
            active_before=active_before,
            limit=limit,
            cursor=cursor,
        )

    def count_sessions(
        self,
        *,
        application_name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        active_after: datetime | None = None,
        active_before: datetime | None = None,
    ) -> int:
        """How many sessions match; see :meth:`AsyncSessionCatalog.count_sessions`."""
        return self.core.runtime.run_blocking(
            self.core.count_sessions,
            application_name=application_name,
            metadata=metadata,
            active_after=active_after,
            active_before=active_before,
        )

    def delete_sessions(
        self,
        *,
        application_name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        active_after: datetime | None = None,
        active_before: datetime | None = None,
    ) -> int:
        """Delete matching sessions with their children; see :meth:`AsyncSessionCatalog.delete_sessions`."""
        return self.core.runtime.run_blocking(
            self.core.delete_sessions,
            application_name=application_name,
            metadata=metadata,
            active_after=active_after,
            active_before=active_before,
        )

    def purge_expired(self) -> PurgeReport:
        """Remove expired sessions and children now; see :meth:`AsyncSessionCatalog.purge_expired`."""
        return self.core.runtime.run_blocking(self.core.purge_expired)

    def get_session(self, session_id: str) -> SessionSummary | None:
        """One session's summary, or None; see :meth:`AsyncSessionCatalog.get_session`."""
        return self.core.runtime.run_blocking(self.core.get_session, session_id)

    def read_session_document(self, session_id: str) -> Document | None:
        """The whole stored session document (one still in the original manager's layout as a migration
        would store it), or None."""
        return self.core.runtime.run_blocking(self.core.read_session_document, session_id)

    def collection_stats(self) -> list[CollectionStats]:
        """Counts and sizes of the namespace's collections."""
        return self.core.runtime.run_blocking(self.core.collection_stats)

    def server_status(self) -> Document:
        """Ping the server and describe the client; see :meth:`AsyncSessionCatalog.server_status`."""
        return self.core.runtime.run_blocking(self.core.server_status)

    def verify_indexes(
        self, metadata_fields: Sequence[str] | None = None, *, ttl: bool | None = None
    ) -> list[IndexStatus]:
        """Expected versus existing indexes; see :meth:`AsyncSessionCatalog.verify_indexes`."""
        return self.core.runtime.run_blocking(self.core.verify_indexes, metadata_fields, ttl=ttl)

    def create_indexes(
        self, metadata_fields: Sequence[str] | None = None, *, ttl: bool | None = None
    ) -> list[IndexStatus]:
        """Create the library's indexes; see :meth:`AsyncSessionCatalog.create_indexes`."""
        return self.core.runtime.run_blocking(self.core.create_indexes, metadata_fields, ttl=ttl)

    def usage(
        self,
        *,
        by: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        application_name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        agent_id: str | None = None,
        model: str | None = None,
        limit: int = 1000,
    ) -> UsageReport:
        """Usage totals and percentiles; see :meth:`AsyncSessionCatalog.usage`."""
        return self.core.runtime.run_blocking(
            self.core.usage,
            by=by,
            since=since,
            until=until,
            application_name=application_name,
            metadata=metadata,
            session_id=session_id,
            agent_id=agent_id,
            model=model,
            limit=limit,
        )

    def guardrail_interventions(
        self,
        *,
        by: str = "policy",
        since: datetime | None = None,
        until: datetime | None = None,
        application_name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        agent_id: str | None = None,
        limit: int = 1000,
    ) -> GuardrailReport:
        """Guardrail interventions by policy or over time; see :meth:`AsyncSessionCatalog.guardrail_interventions`."""
        return self.core.runtime.run_blocking(
            self.core.guardrail_interventions,
            by=by,
            since=since,
            until=until,
            application_name=application_name,
            metadata=metadata,
            session_id=session_id,
            agent_id=agent_id,
            limit=limit,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.core.repository!r})"
