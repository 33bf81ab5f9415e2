"""The awaitable catalog: listing, counting, bulk deletion, purging, index checks and analytics of the
sessions of a repository's namespace. Public through :mod:`mongodb_session_manager.catalog`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pymongo import IndexModel
from pymongo.errors import OperationFailure

from . import _codec as codec
from . import analytics
from ._catalog_model import (
    DEFAULT_PAGE_SIZE,
    SUMMARY_PROJECTION,
    CollectionStats,
    IndexStatus,
    PurgeReport,
    SessionPage,
    SessionSummary,
    check_limit,
    decode_cursor,
    encode_cursor,
    filter_clauses,
    index_shape,
)
from ._indexes import feedback_indexes, message_indexes, session_indexes
from ._legacy.gate import as_ours, as_ours_all
from ._runtime import on_home_loop
from ._types import Document
from ._validation import validate_field_names, validate_id
from .repository import AsyncMongoDBSessionRepository
from .retention import expired, live

if TYPE_CHECKING:
    from .analytics import GuardrailReport, UsageReport


# Sessions deleted concurrently by delete_sessions (each delete is a few round trips).
_DELETE_CONCURRENCY = 8
_DELETE_BATCH = 200


# -- the catalog ----------------------------------------------------------------------------------


class AsyncSessionCatalog:
    """Listing, counting and bulk deletion of the sessions of a repository's namespace.

    Every method may be awaited from any event loop: it runs on the client's home loop, like the
    repository's. Sessions of another application are invisible when the repository has an
    ``application_name``. Filters are validated before any I/O.

    Filters (shared by :meth:`list_sessions`, :meth:`count_sessions` and :meth:`delete_sessions`;
    all given filters must match):

    * ``application_name``: sessions created with this application name.
    * ``metadata``: ``{key: value}``; each top-level metadata key must equal its value. Keys follow
      the metadata key rules (no ``$`` prefix, no ``.``); values must be scalars (str, number, bool,
      datetime or None). Keys listed in the repository's ``metadata_fields`` are indexed.
    * ``active_after`` / ``active_before``: ``active_after <= last_activity_at < active_before``.
      Naive datetimes are taken as UTC (PyMongo's convention).

    Args:
        repository: The repository whose namespace, client and scope the catalog uses.
    """

    def __init__(self, repository: AsyncMongoDBSessionRepository) -> None:
        if not isinstance(repository, AsyncMongoDBSessionRepository):
            raise TypeError(f"repository must be an AsyncMongoDBSessionRepository, got {type(repository).__name__}")
        self.repository = repository
        self.runtime = repository.runtime

    def _scoped(self, clauses: list[Document], *, include_expired: bool = False) -> Document:
        scope = list(clauses)
        if not include_expired:
            scope.insert(0, live(codec.utc_now()))
        if self.repository.application_scope is not None:
            scope.insert(0, {"application_name": self.repository.application_scope})
        if not scope:
            return {}
        return scope[0] if len(scope) == 1 else {"$and": scope}

    # -- sessions ---------------------------------------------------------------------------------

    @on_home_loop
    async def list_sessions(
        self,
        *,
        application_name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        active_after: datetime | None = None,
        active_before: datetime | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
    ) -> SessionPage:
        """One page of matching sessions, in session-id order; one round trip (two when the page holds
        sessions the original manager (v0.9) stored and nobody restored yet: they are read whole).

        Args:
            application_name: Only sessions of this application.
            metadata: Only sessions whose metadata has these key/value pairs.
            active_after: Only sessions last active at or after this time.
            active_before: Only sessions last active before this time.
            limit: Page size, 1 to 1000.
            cursor: The ``next_cursor`` of the previous page; None for the first page.

        Returns:
            The page; its ``next_cursor`` is None when there are no more matching sessions.

        Raises:
            InvalidInputError: a filter, the limit or the cursor is not acceptable.
        """
        clauses = filter_clauses(application_name, metadata, active_after, active_before)
        page_size = check_limit(limit)
        if cursor is not None:
            clauses.append({"_id": {"$gt": decode_cursor(cursor)}})
        documents = await self.repository.namespace.sessions.find(
            self._scoped(clauses), sort=[("_id", 1)], limit=page_size + 1, projection=SUMMARY_PROJECTION
        )
        page = await as_ours_all(self.repository, documents[:page_size])
        sessions = [SessionSummary.from_document(document) for document in page]
        more = len(documents) > page_size
        return SessionPage(sessions=sessions, next_cursor=encode_cursor(sessions[-1].session_id) if more else None)

    @on_home_loop
    async def count_sessions(
        self,
        *,
        application_name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        active_after: datetime | None = None,
        active_before: datetime | None = None,
    ) -> int:
        """How many sessions match the filters (see the class documentation)."""
        clauses = filter_clauses(application_name, metadata, active_after, active_before)
        return await self.repository.namespace.sessions.count_documents(self._scoped(clauses))

    @on_home_loop
    async def delete_sessions(
        self,
        *,
        application_name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        active_after: datetime | None = None,
        active_before: datetime | None = None,
    ) -> int:
        """Delete every matching session with its messages, feedback and GridFS blobs.

        Each session goes through the repository's ``delete_session`` (children first), so no
        orphaned message, feedback or blob is left behind. With no filter at all, every session of
        the namespace (of the repository's application, if it has one) is deleted. Expired sessions
        that match are deleted too.

        Returns:
            The number of sessions deleted.
        """
        clauses = filter_clauses(application_name, metadata, active_after, active_before)
        sessions = self.repository.namespace.sessions
        deleted = 0
        last: str | None = None
        while True:
            page_clauses = clauses if last is None else [*clauses, {"_id": {"$gt": last}}]
            documents = await sessions.find(
                self._scoped(page_clauses, include_expired=True),
                sort=[("_id", 1)],
                limit=_DELETE_BATCH,
                projection={"_id": 1},
            )
            ids = [str(document["_id"]) for document in documents]
            for start in range(0, len(ids), _DELETE_CONCURRENCY):
                chunk = ids[start : start + _DELETE_CONCURRENCY]
                await asyncio.gather(*(self.repository.delete_session(session_id) for session_id in chunk))
                deleted += len(chunk)
            if len(ids) < _DELETE_BATCH:
                return deleted
            last = ids[-1]

    @on_home_loop
    async def purge_expired(self) -> PurgeReport:
        """Remove what has expired now, without waiting for the TTL monitor.

        Removes the expired sessions (of the repository's application, if it has one) with their
        messages, feedback and blobs, then any expired message, feedback or GridFS blob left in the
        namespace. GridFS blobs (messages over 15 MiB) have no TTL index, since their chunks cannot
        carry one: run this periodically when such messages are stored with ``ttl_seconds``, or
        when the TTL indexes are not created (``ensure_indexes=False``).
        """
        now = codec.utc_now()
        expired_sessions = self._scoped([expired(now)], include_expired=True)
        return PurgeReport(*await self.repository.expiry.purge(expired_sessions, now))

    @on_home_loop
    async def get_session(self, session_id: str) -> SessionSummary | None:
        """The summary of one session (no agent state), or None if there is no such session."""
        document = await self.repository.namespace.sessions.find_one(
            self.repository.namespace.live(validate_id(session_id, "session")), SUMMARY_PROJECTION
        )
        if document is None:
            return None
        return SessionSummary.from_document((await as_ours_all(self.repository, [document]))[0])

    @on_home_loop
    async def read_session_document(self, session_id: str) -> Document | None:
        """The whole stored session document (agents' and orchestrators' state included, decrypted with
        the repository's ``encryption=``), or None. A session the original manager (v0.9) stored and
        nobody restored yet comes back as a migration would store it (decoded in memory, nothing written)."""
        document = await self.repository.namespace.sessions.find_one(
            self.repository.namespace.live(validate_id(session_id, "session"))
        )
        if document is None:
            return None
        return await self.repository.cipher.open_session_document(session_id, as_ours(self.repository, document))

    # -- namespace --------------------------------------------------------------------------------

    def _collection_names(self) -> list[str]:
        base = self.repository.collection_name
        return [base, base + codec.MESSAGES_SUFFIX, base + codec.FEEDBACK_SUFFIX]

    @on_home_loop
    async def collection_stats(self) -> list[CollectionStats]:
        """Document counts and sizes of the sessions, messages and feedback collections.

        Counts are exact and cover the whole collection (every application). Sizes come from the
        ``collStats`` command; they are None where the server does not support it.
        """
        return list(await asyncio.gather(*(self._stats_of(name) for name in self._collection_names())))

    async def _stats_of(self, name: str) -> CollectionStats:
        count = await self.runtime.port.collection(self.repository.database_name, name).count_documents({})
        try:
            stats = await self.runtime.port.command(self.repository.database_name, {"collStats": name})
        except OperationFailure:  # no such collection yet, or collStats not supported/allowed
            return CollectionStats(name=name, count=count)
        return CollectionStats(
            name=name,
            count=count,
            size_bytes=_int_or_none(stats.get("size")),
            storage_bytes=_int_or_none(stats.get("storageSize")),
            index_bytes=_int_or_none(stats.get("totalIndexSize")),
        )

    @on_home_loop
    async def server_status(self) -> Document:
        """Ping the server and describe the client.

        Returns:
            ``{"ping_ms": float, "server_version": str, "client": str, "pool": {...}}``; ``pool`` holds
            ``max_pool_size`` and ``min_pool_size`` when the client exposes them.

        Raises:
            pymongo.errors.PyMongoError: the server cannot be reached.
        """
        port = self.runtime.port
        started = time.perf_counter()
        await port.command("admin", {"ping": 1})
        ping_ms = (time.perf_counter() - started) * 1000
        info = await port.command("admin", {"buildInfo": 1})
        pool: Document = {}
        pool_options = getattr(getattr(port.client, "options", None), "pool_options", None)
        if pool_options is not None:
            pool = {"max_pool_size": pool_options.max_pool_size, "min_pool_size": pool_options.min_pool_size}
        return {
            "ping_ms": round(ping_ms, 3),
            "server_version": str(info.get("version", "unknown")),
            "client": self.runtime.kind,
            "pool": pool,
        }

    def _expected_indexes(self, metadata_fields: Sequence[str] | None, ttl: bool | None) -> dict[str, list[IndexModel]]:
        fields = self.repository.metadata_fields if metadata_fields is None else validate_field_names(metadata_fields)
        with_ttl = self.repository.retention is not None if ttl is None else bool(ttl)
        base = self.repository.collection_name
        return {
            base: session_indexes(fields, with_ttl, self.repository.application_name is not None),
            base + codec.MESSAGES_SUFFIX: message_indexes(with_ttl),
            base + codec.FEEDBACK_SUFFIX: feedback_indexes(with_ttl),
        }

    async def _existing_indexes(self, name: str) -> list[Document]:
        database = self.repository.database_name
        try:
            reply = await self.runtime.port.command(database, {"listIndexes": name})
        except OperationFailure as error:
            if error.code == 26:  # NamespaceNotFound: no collection, so no index
                return []
            raise
        cursor = reply["cursor"]
        indexes: list[Document] = list(cursor.get("firstBatch") or [])
        while cursor.get("id"):
            reply = await self.runtime.port.command(database, {"getMore": cursor["id"], "collection": name})
            cursor = reply["cursor"]
            indexes.extend(cursor.get("nextBatch") or [])
        return indexes

    @on_home_loop
    async def verify_indexes(
        self, metadata_fields: Sequence[str] | None = None, *, ttl: bool | None = None
    ) -> list[IndexStatus]:
        """Compare the indexes the library needs with those on the server.

        Args:
            metadata_fields: The metadata keys that should be indexed; defaults to the repository's.
            ttl: Whether the TTL indexes of expiring sessions are needed; defaults to whether the
                repository has ``ttl_seconds``.

        Returns:
            One entry per expected index (``present`` tells whether it exists), then one per extra
            index found on the server (``expected=False``; the ``_id`` index is left out).
        """
        report: list[IndexStatus] = []
        for name, expected in self._expected_indexes(metadata_fields, ttl).items():
            existing = await self._existing_indexes(name)
            matched: set[int] = set()
            for model in expected:
                wanted = model.document
                shape = index_shape(wanted)
                hit = next((position for position, index in enumerate(existing) if index_shape(index) == shape), None)
                if hit is not None:
                    matched.add(hit)
                report.append(IndexStatus(name, str(wanted["name"]), *shape[:2], True, hit is not None, shape[2]))
            for position, index in enumerate(existing):
                if position not in matched and index.get("name") != "_id_":
                    keys, unique, expire_after = index_shape(index)
                    report.append(IndexStatus(name, str(index.get("name")), keys, unique, False, True, expire_after))
        return report

    @on_home_loop
    async def create_indexes(
        self, metadata_fields: Sequence[str] | None = None, *, ttl: bool | None = None
    ) -> list[IndexStatus]:
        """Create the indexes the library needs (existing ones are left alone), then verify them.

        Args:
            metadata_fields: The metadata keys to index; defaults to the repository's.
            ttl: Create the TTL indexes of expiring sessions too; defaults to whether the repository
                has ``ttl_seconds``.

        Returns:
            The report of :meth:`verify_indexes` after creation.
        """
        fields = self.repository.metadata_fields if metadata_fields is None else validate_field_names(metadata_fields)
        for name, indexes in self._expected_indexes(fields, ttl).items():
            if indexes:
                await self.runtime.port.collection(self.repository.database_name, name).create_indexes(indexes)
        return await self.verify_indexes(fields, ttl=ttl)

    # -- usage and guardrail analytics (docs/usage-and-audit.md) ------------------------------------

    async def _aggregate_one(self, collection: str, pipeline: list[Document]) -> Document | None:
        """The single result document of a ``$facet`` pipeline (one round trip)."""
        reply = await self.runtime.port.command(
            self.repository.database_name,
            {"aggregate": collection, "pipeline": pipeline, "cursor": {}, "allowDiskUse": True},
        )
        batch = (reply.get("cursor") or {}).get("firstBatch") or []
        return batch[0] if batch else None

    async def _session_ids(self, application_name: str | None, metadata: Mapping[str, Any] | None) -> list[str] | None:
        """Ids of the sessions matching session-level filters, or None when there are none to apply."""
        clauses = filter_clauses(application_name, metadata, None, None)
        if not clauses:
            return None
        documents = await self.runtime.port.collection(
            self.repository.database_name, self.repository.collection_name
        ).find(self._scoped(clauses, include_expired=True), projection={"_id": 1})
        return [str(document["_id"]) for document in documents]

    def _application(self, application_name: str | None) -> str | None:
        if application_name is not None:
            return validate_id(application_name, "application")
        return self.repository.application_scope

    @on_home_loop
    async def usage(
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
        """Token and latency totals and percentiles of model calls, grouped server-side; one aggregation
        (two round trips with a ``metadata`` filter, which first reads the matching session ids).

        Args:
            by: ``"session"``, ``"agent"``, ``"model"``, ``"application"``, ``"day"`` or ``"hour"`` (UTC);
                None for the total only.
            since: Calls at or after this time (``usage.at``).
            until: Calls before this time.
            application_name: Calls made under this application name (``usage.application``).
            metadata: Calls of sessions whose metadata has these key/value pairs.
            session_id: Calls of this session. agent_id: of this agent. model: of this model id.
            limit: At most this many rows (1 to 10000); ``truncated`` says when there were more.

        Raises:
            InvalidInputError: a filter, the grouping or the limit is not acceptable.
        """
        grouping = analytics.check_grouping(by, analytics.USAGE_GROUPINGS, optional=True)
        start, end = analytics.check_range(since, until)
        rows = analytics.check_limit(limit)
        application = self._application(application_name)
        session_ids = await self._session_ids(None, metadata) if metadata is not None else None
        if session_id is not None:
            wanted = validate_id(session_id, "session")
            session_ids = [wanted] if session_ids is None or wanted in session_ids else []
        match = analytics.usage_match(
            start,
            end,
            application_name=application,
            session_ids=session_ids,
            agent_id=None if agent_id is None else validate_id(agent_id, "agent"),
            model=None if model is None else validate_id(model, "model"),
        )
        pipeline = analytics.usage_pipeline(match, grouping, limit=rows)
        result = await self._aggregate_one(self.repository.collection_name + codec.MESSAGES_SUFFIX, pipeline)
        return analytics.usage_report(result, grouping, start, end, rows)

    @on_home_loop
    async def guardrail_interventions(
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
        """Guardrail interventions (redactions with an audit record) grouped by ``"policy"``,
        ``"session"``, ``"agent"``, ``"action"``, ``"day"`` or ``"hour"``, with per-policy counts; one
        aggregation (plus one read of session ids with an ``application_name`` or ``metadata`` filter)."""
        grouping = analytics.check_grouping(by, analytics.GUARDRAIL_GROUPINGS, optional=False)
        assert grouping is not None
        start, end = analytics.check_range(since, until)
        rows = analytics.check_limit(limit)
        application = self._application(application_name)
        session_ids = (
            await self._session_ids(application, metadata) if application is not None or metadata is not None else None
        )
        if session_id is not None:
            wanted = validate_id(session_id, "session")
            session_ids = [wanted] if session_ids is None or wanted in session_ids else []
        match = analytics.guardrail_match(
            start, end, session_ids=session_ids, agent_id=None if agent_id is None else validate_id(agent_id, "agent")
        )
        pipeline = analytics.guardrail_pipeline(match, grouping, limit=rows)
        result = await self._aggregate_one(self.repository.collection_name + codec.MESSAGES_SUFFIX, pipeline)
        return analytics.guardrail_report(result, grouping, start, end)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.repository!r})"


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)
