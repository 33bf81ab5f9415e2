"""Expiring sessions (``ttl_seconds``): stamping, touching, leftovers of expired generations, purging.

The rules (when a session expires, how often it is touched) are :class:`~.retention.Retention`'s;
this module applies them to the stored documents. The repository and the catalog both use it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ._codec import utc_now
from ._encryption import PlainCipher
from ._message_blobs import MessageBlobs
from ._namespace import SessionNamespace
from ._types import Document
from .errors import SessionExpiredError
from .retention import EXPIRES_AT, Retention, as_utc, expired

logger = logging.getLogger(__name__)

# Sessions purged at a time, and per find.
_PURGE_CONCURRENCY = 8
_PURGE_BATCH = 200


class Expiry:
    """Expiry bookkeeping of one namespace. ``retention`` is None for sessions that never expire;
    a repository without retention still removes expired sessions it finds (another repository on the
    same namespace may have set their expiry)."""

    def __init__(
        self,
        namespace: SessionNamespace,
        blobs: MessageBlobs,
        retention: Retention | None,
        cipher: PlainCipher | None = None,
    ) -> None:
        self.namespace = namespace
        self.blobs = blobs
        self.retention = retention
        # The session's data key expires with it, and is deleted when an expired session is removed.
        self.cipher = cipher or PlainCipher()

    def stamp(self, document: Document, now: datetime | None = None) -> Document:
        """Give a document its expiry, counted from ``now`` (when sessions expire)."""
        if self.retention is not None:
            document[EXPIRES_AT] = self.retention.expiry(utc_now() if now is None else now)
        return document

    def touch_due(self, document: Mapping[str, Any]) -> bool:
        """Whether the session ``document`` (as last read or touched) says a touch is due."""
        return self.retention is not None and self.retention.touch_due(document.get(EXPIRES_AT), utc_now())

    async def touch(self, session_id: str, generation: str | None, known_expiry: datetime | None) -> datetime:
        """Push the session's expiry, and its messages', feedback's and blobs', to ``ttl_seconds +
        touch_after`` from now; see :meth:`AsyncMongoDBSessionRepository.touch_session`."""
        assert self.retention is not None
        now = utc_now()
        expiry = self.retention.expiry(now)
        scope = self.namespace.live(session_id)
        if generation is not None:
            scope["created_at"] = generation

        async def session() -> None:
            result = await self.namespace.sessions.update_one(scope, {"$max": {EXPIRES_AT: expiry}})
            if result.matched_count == 0:
                raise SessionExpiredError(f"session {session_id!r} has expired or was deleted; nothing was written")

        async def children() -> None:
            older = {"$not": {"$gte": expiry}}
            extend = {"$set": {EXPIRES_AT: expiry}}
            await asyncio.gather(
                self.namespace.messages.update_many({"session_id": session_id, EXPIRES_AT: older}, extend),
                self.namespace.feedback.update_many({"session_id": session_id, EXPIRES_AT: older}, extend),
                self.namespace.blob_files.update_many(
                    {"metadata.session_id": session_id, f"metadata.{EXPIRES_AT}": older},
                    {"$set": {f"metadata.{EXPIRES_AT}": expiry}},
                ),
            )

        if known_expiry is not None and now < as_utc(known_expiry):
            await children()
            await session()
        else:
            await session()
            await children()
        logger.debug("session_id=<%s> | expiry pushed to %s", session_id, expiry.isoformat())
        return expiry

    async def touch_if_due(self, session_id: str, document: Document) -> Document:
        """Touch the session if ``document`` says a touch is due, recording the new expiry in it."""
        if self.touch_due(document):
            document[EXPIRES_AT] = await self.touch(
                session_id, generation=document.get("created_at"), known_expiry=document.get(EXPIRES_AT)
            )
        return document

    async def remove_leftovers(self, session_id: str, before: datetime) -> tuple[int, int, int]:
        """Delete the messages, feedback and blobs of an earlier, expired generation of the session:
        those expiring before ``before`` (see :meth:`Retention.leftover_before`). Returns the counts."""
        stale = {"session_id": session_id, EXPIRES_AT: {"$lt": before}}
        return await asyncio.gather(
            self.namespace.messages.delete_many(stale),
            self.namespace.feedback.delete_many(stale),
            self.blobs.delete_where({"metadata.session_id": session_id, f"metadata.{EXPIRES_AT}": {"$lt": before}}),
        )

    async def replace_expired(self, session_id: str) -> tuple[int, int, int] | None:
        """Remove the session if it has expired, its leftovers first; returns how many messages,
        feedback and blobs went with it, or None if there was no expired session.

        Run when a live-session query found nothing but the id is taken (the TTL monitor had not
        removed the session yet), and by :meth:`purge`.
        """
        now = utc_now()
        sessions = self.namespace.sessions
        document = await sessions.find_one(
            {**self.namespace.scope(session_id), **expired(now)}, {EXPIRES_AT: 1, "created_at": 1}
        )
        if document is None:
            return None
        expiry = as_utc(document[EXPIRES_AT])
        # Without retention settings of its own, this repository only knows the session is over.
        before = now if self.retention is None else self.retention.leftover_before(expiry)
        removed = await self.remove_leftovers(session_id, before)
        await self.cipher.erase(session_id)
        await sessions.delete_many({"_id": session_id, "created_at": document.get("created_at"), **expired(now)})
        logger.debug("session_id=<%s> | removed the expired session", session_id)
        return removed

    async def created(self, session_id: str, created_at: datetime) -> None:
        """A new session document was just inserted: clear what an expired one of that id left."""
        if self.retention is not None:
            await self.remove_leftovers(session_id, self.retention.leftover_before(created_at))

    async def purge(self, expired_sessions: Document, now: datetime) -> tuple[int, int, int, int]:
        """Remove the sessions matching ``expired_sessions`` (a filter of sessions expired at ``now``)
        with their children, then every message, feedback and blob of the namespace expired at ``now``.
        Returns how many sessions, messages, feedback and blobs were removed."""
        totals = [0, 0, 0, 0]
        while True:
            documents = await self.namespace.sessions.find(expired_sessions, limit=_PURGE_BATCH, projection={"_id": 1})
            for start in range(0, len(documents), _PURGE_CONCURRENCY):
                chunk = documents[start : start + _PURGE_CONCURRENCY]
                for removed in await asyncio.gather(
                    *(self.replace_expired(str(document["_id"])) for document in chunk)
                ):
                    if removed is not None:
                        totals[0] += 1
                        for position, count in enumerate(removed, start=1):
                            totals[position] += count
            if len(documents) < _PURGE_BATCH:
                break
        messages, feedback, blobs, _ = await asyncio.gather(
            self.namespace.messages.delete_many(expired(now)),
            self.namespace.feedback.delete_many(expired(now)),
            self.blobs.delete_where({f"metadata.{EXPIRES_AT}": {"$lte": now}}),
            # Data keys of sessions the TTL monitor removed (it cannot delete key vault documents).
            self.cipher.erase_orphans(self.namespace),
        )
        return totals[0], totals[1] + messages, totals[2] + feedback, totals[3] + blobs
