"""What the catalog returns (summaries, pages, stats, reports) and how it turns the caller's filters
and cursors into queries, validated before any I/O."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ._legacy.layout import LEGACY_MARK
from ._types import Document
from ._validation import validate_id, validate_metadata_key
from .audit import GUARDRAIL_SUMMARY_FIELD
from .errors import InvalidInputError, InvalidMetadataError
from .retention import EXPIRES_AT

#: The largest ``limit`` :meth:`AsyncSessionCatalog.list_sessions` accepts.
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50

_CURSOR_PREFIX = "c1."
_CURSOR_PAYLOAD = re.compile(r"^[A-Za-z0-9_-]+$")
_MAX_CURSOR_LENGTH = 2048

# Metadata filter values: compared with $eq, so none of them can act as an operator.
_SCALARS = (str, int, float, bool, datetime)

# Everything a summary needs, and nothing else: no agent state, no multi-agent state.
SUMMARY_PROJECTION: Mapping[str, Any] = {
    "application_name": 1,
    "created_at": 1,
    "updated_at": 1,
    "last_activity_at": 1,
    "metadata": 1,
    "agents.agent_id": 1,
    EXPIRES_AT: 1,
    GUARDRAIL_SUMMARY_FIELD: 1,
    # Present only in a session the original manager (v0.9) stored: it is then read whole and decoded.
    LEGACY_MARK: 1,
}


# -- results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionSummary:
    """What a listing returns for one session (no agent state, no messages).

    Attributes:
        session_id: The session id (the document's ``_id``).
        application_name: The application that created the session, if it was given one.
        created_at: Strands' ISO timestamp of the session's creation, as stored.
        updated_at: Strands' ISO timestamp, as stored.
        last_activity_at: When the session document was last written, as an aware UTC datetime.
        metadata: The session's metadata.
        agent_ids: The ids of the session's agents, in creation order.
        expires_at: When the session expires (sessions with ``ttl_seconds``), as an aware UTC datetime.
        guardrails: The guardrail summary (``count``, ``last_at``, ``policies``) once a redaction was
            recorded, else None (see docs/usage-and-audit.md).
    """

    session_id: str
    application_name: str | None
    created_at: str | None
    updated_at: str | None
    last_activity_at: datetime | None
    metadata: dict[str, Any] = field(default_factory=dict)
    agent_ids: list[str] = field(default_factory=list)
    expires_at: datetime | None = None
    guardrails: dict[str, Any] | None = None

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> SessionSummary:
        """Build a summary from a stored session document (or its summary projection)."""
        agents = document.get("agents") or []
        return cls(
            session_id=str(document["_id"]),
            application_name=document.get("application_name"),
            created_at=document.get("created_at"),
            updated_at=document.get("updated_at"),
            last_activity_at=aware(document.get("last_activity_at")),
            metadata=dict(document.get("metadata") or {}),
            agent_ids=[
                str(agent["agent_id"]) for agent in agents if isinstance(agent, Mapping) and "agent_id" in agent
            ],
            expires_at=aware(document.get(EXPIRES_AT)),
            guardrails=_guardrail_summary(document.get(GUARDRAIL_SUMMARY_FIELD)),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (``last_activity_at`` as an ISO string)."""
        return {
            "session_id": self.session_id,
            "application_name": self.application_name,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "last_activity_at": None if self.last_activity_at is None else self.last_activity_at.isoformat(),
            "metadata": self.metadata,
            "agent_ids": list(self.agent_ids),
            "expires_at": None if self.expires_at is None else self.expires_at.isoformat(),
            "guardrails": None
            if self.guardrails is None
            else {
                **self.guardrails,
                "last_at": None if self.guardrails["last_at"] is None else self.guardrails["last_at"].isoformat(),
            },
        }


def _guardrail_summary(value: object) -> dict[str, Any] | None:
    if not isinstance(value, Mapping):
        return None
    count = value.get("count")
    return {
        "count": count if isinstance(count, int) else 0,
        "last_at": aware(value.get("last_at")),
        "policies": sorted(str(policy) for policy in value.get("policies") or ()),
    }


@dataclass(frozen=True)
class SessionPage:
    """One page of a listing.

    Attributes:
        sessions: The sessions of this page, in session-id order.
        next_cursor: Pass it as ``cursor`` to get the next page; None when this is the last page.
    """

    sessions: list[SessionSummary]
    next_cursor: str | None


@dataclass(frozen=True)
class CollectionStats:
    """Document count and sizes of one collection of the namespace.

    Sizes are None when the server does not report them (or the collection does not exist yet).
    """

    name: str
    count: int
    size_bytes: int | None = None
    storage_bytes: int | None = None
    index_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return {
            "name": self.name,
            "count": self.count,
            "size_bytes": self.size_bytes,
            "storage_bytes": self.storage_bytes,
            "index_bytes": self.index_bytes,
        }


@dataclass(frozen=True)
class PurgeReport:
    """What :meth:`AsyncSessionCatalog.purge_expired` removed."""

    sessions: int = 0
    messages: int = 0
    feedback: int = 0
    blobs: int = 0

    def to_dict(self) -> dict[str, int]:
        """A JSON-friendly dict."""
        return {"sessions": self.sessions, "messages": self.messages, "feedback": self.feedback, "blobs": self.blobs}


@dataclass(frozen=True)
class IndexStatus:
    """One index of the namespace: expected by the library, present on the server, or both.

    Attributes:
        collection: The collection's name.
        name: The index name (the library's name for an expected index, else the server's).
        keys: The key pattern as ``(field, direction)`` pairs.
        unique: Whether the index is unique.
        expected: The library needs it (``False``: an extra index found on the server).
        present: It exists on the server (matched by key pattern, uniqueness and TTL, not by name).
        expire_after_seconds: The TTL of a TTL index, else None.
    """

    collection: str
    name: str
    keys: list[tuple[str, Any]]
    unique: bool
    expected: bool
    present: bool
    expire_after_seconds: int | None = None

    @property
    def missing(self) -> bool:
        """Expected but not present."""
        return self.expected and not self.present

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return {
            "collection": self.collection,
            "name": self.name,
            "keys": [[key, direction] for key, direction in self.keys],
            "unique": self.unique,
            "expected": self.expected,
            "present": self.present,
            "expire_after_seconds": self.expire_after_seconds,
        }


# -- cursors and filters --------------------------------------------------------------------------


def encode_cursor(session_id: str) -> str:
    payload = base64.urlsafe_b64encode(session_id.encode("utf-8")).decode("ascii").rstrip("=")
    return _CURSOR_PREFIX + payload


def decode_cursor(cursor: object) -> str:
    """The session id a cursor points after; :class:`InvalidInputError` for anything else."""
    if not isinstance(cursor, str):
        raise InvalidInputError(f"cursor must be a str, got {type(cursor).__name__}")
    payload = cursor[len(_CURSOR_PREFIX) :]
    if len(cursor) > _MAX_CURSOR_LENGTH or not cursor.startswith(_CURSOR_PREFIX) or not _CURSOR_PAYLOAD.match(payload):
        raise InvalidInputError("invalid cursor: pass the next_cursor of a previous page unchanged")
    try:
        session_id = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidInputError("invalid cursor: pass the next_cursor of a previous page unchanged") from None
    if encode_cursor(session_id) != cursor:  # not canonical: tampered with
        raise InvalidInputError("invalid cursor: pass the next_cursor of a previous page unchanged")
    try:
        return validate_id(session_id, "session")
    except InvalidInputError:
        raise InvalidInputError("invalid cursor: pass the next_cursor of a previous page unchanged") from None


def aware(value: object) -> datetime | None:
    """A stored date as an aware UTC datetime (PyMongo returns naive UTC datetimes by default)."""
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _check_datetime(value: object, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidInputError(f"{name} must be a datetime or None, got {type(value).__name__}")
    return value


def _metadata_clauses(metadata: object) -> list[Document]:
    if metadata is None:
        return []
    if not isinstance(metadata, Mapping):
        raise InvalidMetadataError(f"metadata filter must be a dict, got {type(metadata).__name__}")
    clauses: list[Document] = []
    for key, value in metadata.items():
        validate_metadata_key(key)
        if value is not None and not isinstance(value, _SCALARS):
            raise InvalidMetadataError(
                f"metadata filter value of {key!r} must be a str, number, bool, datetime or None, "
                f"got {type(value).__name__}"
            )
        clauses.append({f"metadata.{key}": {"$eq": value}})
    return clauses


def filter_clauses(
    application_name: str | None,
    metadata: Mapping[str, Any] | None,
    active_after: datetime | None,
    active_before: datetime | None,
) -> list[Document]:
    """The caller's filters as query clauses, validated before any I/O."""
    clauses: list[Document] = []
    if application_name is not None:
        clauses.append({"application_name": {"$eq": validate_id(application_name, "application")}})
    clauses.extend(_metadata_clauses(metadata))
    activity: Document = {}
    after = _check_datetime(active_after, "active_after")
    before = _check_datetime(active_before, "active_before")
    if after is not None:
        activity["$gte"] = after
    if before is not None:
        activity["$lt"] = before
    if activity:
        clauses.append({"last_activity_at": activity})
    return clauses


def check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInputError(f"limit must be an int between 1 and {MAX_PAGE_SIZE}, got {limit!r}")
    return limit


def index_keys(document: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [(str(key), direction) for key, direction in dict(document.get("key") or {}).items()]


def index_shape(document: Mapping[str, Any]) -> tuple[list[tuple[str, Any]], bool, int | None]:
    """What makes two index definitions equivalent for the library: keys, uniqueness and TTL."""
    ttl = document.get("expireAfterSeconds")
    return index_keys(document), bool(document.get("unique", False)), None if ttl is None else int(ttl)
