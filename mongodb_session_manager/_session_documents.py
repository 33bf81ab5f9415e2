"""The session document: existence and ownership checks, creation races, embedded agent records."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from pymongo.errors import DuplicateKeyError
from strands.types.session import Session, SessionType

from ._codec import find_record, iso_now, session_document, utc_now
from ._encryption import PlainCipher
from ._expiry import Expiry
from ._namespace import SessionNamespace
from ._types import Document
from ._write_errors import storing
from .errors import AlreadyExistsError, ConcurrentModificationError, NotFoundError
from .retention import EXPIRES_AT

# What expiry bookkeeping reads of a session document: its generation and its expiry.
GENERATION = {"created_at": 1, EXPIRES_AT: 1}

# Attempts of an upsert of a session document that loses a creation race to another writer.
UPSERT_ATTEMPTS = 3


def last_activity() -> Document:
    """The ``$set`` fields that record activity on a session."""
    return {"last_activity_at": utc_now()}


class SessionDocuments:
    """Reads and writes of whole session documents and of the records embedded in them (``agents``,
    ``multi_agents``), within one namespace. Coroutines must run on the client's home loop."""

    def __init__(self, namespace: SessionNamespace, expiry: Expiry, cipher: PlainCipher | None = None) -> None:
        self.namespace = namespace
        self.expiry = expiry
        self.cipher = cipher or PlainCipher()

    async def _created(self, session_id: str, document: Mapping[str, Any]) -> None:
        """A new session document was just inserted: clear what an expired one of that id left, and
        create its data key (per-session encryption), concurrently."""
        await asyncio.gather(
            self.expiry.created(session_id, document.get("last_activity_at") or utc_now()),
            self.cipher.session_created(session_id),
        )

    async def exists(self, session_id: str) -> bool:
        return await self.namespace.sessions.find_one(self.namespace.live(session_id), {"_id": 1}) is not None

    async def owns(self, session_id: str, verified: bool, *, touch: bool = False) -> bool:
        """Whether the repository may read or write the session's messages and feedback.

        Always, unless ``isolate_application`` is on: then only if the session exists under its name:
        messages and feedback carry no application name of their own, so another application's
        session must not be reachable through them. ``verified``: the caller already read the session
        through this repository (the session manager does, when it loads an agent), which saves the check.
        With expiring sessions, likewise only if the session exists and has not expired; ``touch``
        (for writes) then pushes its expiry back if due.
        """
        if verified or (self.namespace.application_scope is None and self.expiry.retention is None):
            return True
        document = await self.namespace.sessions.find_one(self.namespace.live(session_id), GENERATION)
        if document is None:
            return False
        if touch:
            # A write through the plain repository is activity too; the read above makes it free to check.
            await self.expiry.touch_if_due(session_id, document)
        return True

    def fresh_fields(self, session_id: str) -> Document:
        """``$setOnInsert`` fields of a session created by an upsert (``_id`` comes from the filter)."""
        fresh = session_document(Session(session_id=session_id, session_type=SessionType.AGENT))
        del fresh["_id"]
        if self.namespace.application_name is not None:
            fresh["application_name"] = self.namespace.application_name
        return self.expiry.stamp(fresh)

    async def insert(self, session_id: str, document: Document) -> None:
        """Insert a new session document; replaces an expired one of that id that the TTL monitor has
        not removed yet. Raises :class:`AlreadyExistsError` if the id is taken."""
        for attempt in range(UPSERT_ATTEMPTS):
            try:
                with storing("session", session_id, document):
                    await self.namespace.sessions.insert_one(document)
                break
            except DuplicateKeyError as error:
                if attempt == UPSERT_ATTEMPTS - 1 or await self.expiry.replace_expired(session_id) is None:
                    raise AlreadyExistsError(f"session {session_id!r} already exists") from error
        await self._created(session_id, document)

    async def load_or_create(
        self, session_id: str, projection: Mapping[str, Any] | None = None
    ) -> tuple[Document, bool]:
        """The live session (``projection`` of it), created if missing or expired, touched if due;
        and whether this call created it."""
        sessions = self.namespace.sessions
        for _ in range(UPSERT_ATTEMPTS):
            fresh = self.fresh_fields(session_id)
            try:
                document = await sessions.find_one_and_upsert(
                    self.namespace.live(session_id), {"$setOnInsert": fresh}, projection
                )
            except DuplicateKeyError:
                # Another writer inserted the session between this upsert's match and its insert, the id
                # belongs to another application, or the session expired and awaits the TTL monitor.
                # (Some servers answer a lost race with no document.)
                document = None
            if document is not None:
                if document.get("created_at") == fresh["created_at"]:
                    await self._created(session_id, fresh)
                    return document, True
                return await self.expiry.touch_if_due(session_id, document), False
            document = await sessions.find_one(self.namespace.live(session_id), projection)
            if document is not None:
                return await self.expiry.touch_if_due(session_id, document), False
            if await self.expiry.replace_expired(session_id) is not None:
                continue
            if await sessions.find_one({"_id": session_id}, {"_id": 1}) is not None:
                raise AlreadyExistsError(f"session {session_id!r} belongs to another application")
        raise ConcurrentModificationError(f"session {session_id!r} kept being created and deleted by other writers")

    async def upsert(self, session_id: str, update: Document) -> None:
        """Update the session, creating it if missing (``update`` carries the ``$setOnInsert`` fields)."""
        for attempt in range(UPSERT_ATTEMPTS):
            try:
                result = await self.namespace.sessions.update_one(self.namespace.live(session_id), update, upsert=True)
            except DuplicateKeyError as error:
                # Two upserts of a new session race: the loser's insert collides, and retrying updates the
                # winner's document; or the session expired and awaits the TTL monitor. A collision that
                # persists means the id belongs to another application.
                if attempt == UPSERT_ATTEMPTS - 1:
                    raise AlreadyExistsError(f"session {session_id!r} belongs to another application") from error
                await self.expiry.replace_expired(session_id)
                continue
            if result.upserted_id is not None:
                await self._created(session_id, update.get("$setOnInsert") or {})
            return

    async def add_record(self, session_id: str, array: str, key: str, record: Document, what: str) -> None:
        """Append ``record`` to the session's ``array`` unless one with its ``key`` exists already.

        Raises :class:`AlreadyExistsError` if it does, :class:`NotFoundError` if there is no session.
        ``what`` names the record in errors (``"agent 'a'"``).
        """
        scope = {**self.namespace.live(session_id), f"{array}.{key}": {"$ne": record[key]}}
        with storing(what, session_id, record):
            result = await self.namespace.sessions.update_one(
                scope, {"$push": {array: record}, "$set": last_activity()}
            )
        if result.matched_count == 0:
            if await self.exists(session_id):
                raise AlreadyExistsError(f"{what} already exists in session {session_id!r}")
            raise NotFoundError(f"session {session_id!r} does not exist")

    async def read_record(self, session_id: str, array: str, key: str, value: str) -> Document | None:
        """The record of the session's ``array`` whose ``key`` is ``value``, or None."""
        document = await self.namespace.sessions.find_one(
            self.namespace.live(session_id), {array: {"$elemMatch": {key: value}}}
        )
        return find_record(document.get(array) if document else None, key, value)

    async def update_record(
        self,
        session_id: str,
        array: str,
        match: Document,
        changes: Document,
        stored: Any,
        what: str,
        *,
        versioned: bool = False,
    ) -> bool:
        """Set ``changes`` (field: value) on the record of the session's ``array`` that ``match``es,
        stamping its ``updated_at`` (and incrementing its ``version`` if ``versioned``). ``stored`` is
        what the update writes, for error messages. False if no live session has such a record."""
        fields = {f"{array}.$.{field}": value for field, value in changes.items()}
        fields[f"{array}.$.updated_at"] = iso_now()
        update: Document = {"$set": {**fields, **last_activity()}}
        if versioned:
            update["$inc"] = {f"{array}.$.version": 1}
        with storing(what, session_id, stored if stored is not None else fields):
            result = await self.namespace.sessions.update_one(
                {**self.namespace.live(session_id), array: {"$elemMatch": match}}, update
            )
        return bool(result.matched_count)
