"""The original manager's session document, and its translation into this library's documents.

The original (v0.9.x) kept a whole session in one document of the sessions collection::

    {_id: <session id>, session_id, session_type, application_name, session_viewer_password,
     created_at: date, updated_at: date, metadata: {...}, feedbacks: [{..., created_at: date}],
     guardrail_events: [{message_id, agent_id, action, timestamp, ...}],
     agents: {<agent id>: {agent_data: {agent_id, state, conversation_manager_state, _internal_state,
                                         created_at: date, updated_at: date, model?, system_prompt?,
                                         prompt_metadata?},
                           created_at: date, updated_at: date,
                           messages: [{message_id, message, redact_message, created_at: date,
                                       updated_at: date, event_loop_metrics?, guardrail_event?}]}}}

Content bytes are either BSON binary or, as older Strands releases wrote them, base64 text wrapped
as ``{"__bytes_encoded__": true, "data": "<base64>"}``; both come back as ``bytes``.

Everything without a field of its own in our layout is kept verbatim under ``legacy`` (see
``docs/migration.md``): on the session (guardrail events, also summarized as the audit's
``guardrails`` field, and unknown fields),
on agent records (the original's agent-level timestamps, unknown ``agent_data`` fields) and on
message documents (``event_loop_metrics`` and any other extra field). A message's ``guardrail_event``
becomes its ``redaction`` record (``trace`` renamed ``guardrail_trace``). Nothing is dropped
silently: what cannot be decoded is returned as a :class:`Problem`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import bson
from bson import ObjectId
from bson.binary import Binary
from strands.types.session import SessionType

from .. import _codec as codec
from .._types import Document
from .._validation import validate_id
from ..audit import GUARDRAIL_SUMMARY_FIELD
from ..errors import InvalidIdError
from ..retention import as_utc

# Matches sessions in the original layout: ``agents`` is an object keyed by agent id, ours an array.
LEGACY_FILTER: Document = {"agents": {"$exists": True, "$not": {"$type": "array"}}}
# Set on an original-layout document while one migrator moves it: ``{token, since}``.
CLAIM_FIELD = "legacy_migration"
# Our documents' field holding what the original stored that has no field of its own here.
LEGACY_FIELD = "legacy"
# ``<collection>.legacy``: the original document, verbatim, of every session migrated in place.
BACKUP_SUFFIX = ".legacy"

# Top-level fields of an original session document that have a home in ours (or are dropped as
# redundant, like ``session_id``, which is ``_id``).
_SESSION_FIELDS = frozenset(
    {
        "_id",
        "session_id",
        "session_type",
        "application_name",
        "session_viewer_password",
        "created_at",
        "updated_at",
        "metadata",
        "feedbacks",
        "guardrail_events",
        "agents",
        CLAIM_FIELD,
        # Fields our own repository may have added to the document before it was migrated.
        "expires_at",
        "last_activity_at",
    }
)
_AGENT_DATA_FIELDS = frozenset(
    {"agent_id", "state", "conversation_manager_state", "_internal_state", "created_at", "updated_at"}
)
# Agent configuration the original captured from the agent; kept as fields of our agent record.
AGENT_CONFIG_FIELDS = ("model", "system_prompt", "prompt_metadata")
_MESSAGE_FIELDS = frozenset({"message_id", "message", "redact_message", "created_at", "updated_at"})
_BYTES_MARKER = "__bytes_encoded__"


@dataclass(frozen=True)
class Problem:
    """Something of an original session that has no place in the new layout; it stays in the backup."""

    session_id: str
    reason: str
    agent_id: str | None = None
    position: int | None = None

    def describe(self) -> str:
        where = [f"session {self.session_id!r}"]
        if self.agent_id is not None:
            where.append(f"agent {self.agent_id!r}")
        if self.position is not None:
            where.append(f"messages[{self.position}]")
        return f"{', '.join(where)}: {self.reason}"


@dataclass
class LegacyAgent:
    """One agent of an original session: our agent record and message documents."""

    record: Document
    messages: list[Document]


@dataclass
class LegacySession:
    """An original session decoded into our documents (nothing written yet)."""

    session_id: str
    fields: Document
    agents: list[LegacyAgent]
    feedback: list[Document]
    problems: list[Problem] = field(default_factory=list)
    source_bytes: int = 0
    fingerprint: str = ""

    @property
    def message_count(self) -> int:
        return sum(len(agent.messages) for agent in self.agents)

    def document(self) -> Document:
        """Our session document (without ``_id``)."""
        return {**self.fields, "agents": [agent.record for agent in self.agents]}


class _Undecodable(Exception):
    """A part of an original document this module cannot translate."""


# A field only original documents have (our layout keeps the id in ``_id`` alone): adding it to a
# projection tells an original document apart at no cost.
LEGACY_MARK = "session_id"
# What an original-version process can still add to a migrated document: it pushes feedback.
STRAY_FEEDBACK = "feedbacks"


def is_legacy(document: Mapping[str, Any]) -> bool:
    """Whether a session document is in the original layout."""
    return isinstance(document.get("agents"), Mapping)


def needs_upgrade(document: Mapping[str, Any]) -> bool:
    """Whether a session document is in the original layout, or is a migrated one to which an
    original-version process has since added feedback in its own way."""
    return is_legacy(document) or isinstance(document.get(STRAY_FEEDBACK), list)


def _encoded(document: Mapping[str, Any]) -> bytes:
    return bson.encode({key: value for key, value in document.items() if key != CLAIM_FIELD})


def fingerprint(document: Mapping[str, Any]) -> str:
    """A digest of an original document's content (its migration claim excluded)."""
    return hashlib.sha256(_encoded(document)).hexdigest()


def _iso(value: Any, default: str) -> str:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    return value if isinstance(value, str) and value else default


def decode_bytes(value: Any) -> Any:
    """``value`` with base64-wrapped and BSON-binary bytes turned back into ``bytes``."""
    if isinstance(value, Binary):
        return bytes(value) if value.subtype == 0 else value
    if isinstance(value, Mapping):
        if value.get(_BYTES_MARKER) is True and "data" in value:
            data = value["data"]
            if not isinstance(data, str):
                raise _Undecodable(f"base64 bytes whose data is a {type(data).__name__}, not text")
            try:
                return base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError) as error:
                raise _Undecodable(f"invalid base64 bytes ({error})") from None
        return {key: decode_bytes(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode_bytes(item) for item in value]
    return value


def _message_body(raw: Mapping[str, Any]) -> Document:
    body = raw.get("message")
    if body is None and "role" in raw:
        # The flattened shape the original's documentation shows (role and content beside message_id).
        content = raw.get("content")
        body = {"role": raw["role"], "content": [{"text": content}] if isinstance(content, str) else content}
    if not isinstance(body, Mapping):
        raise _Undecodable(f"no message content (message is {type(body).__name__})")
    if not isinstance(body.get("role"), str) or not isinstance(body.get("content"), list):
        raise _Undecodable("message lacks a text role or a content list")
    decoded: Document = decode_bytes(body)
    return decoded


def _message_document(session_id: str, agent_id: str, raw: Any, defaults: tuple[str, str]) -> Document:
    if not isinstance(raw, Mapping):
        raise _Undecodable(f"a {type(raw).__name__}, not a message document")
    message_id = raw.get("message_id")
    if isinstance(message_id, bool) or not isinstance(message_id, int) or not 0 <= message_id < 2**63:
        raise _Undecodable(f"message_id {message_id!r} is not a non-negative integer")
    message = _message_body(raw)
    redact = raw.get("redact_message")
    if redact is not None:
        if not isinstance(redact, Mapping):
            raise _Undecodable(f"redact_message is a {type(redact).__name__}")
        redact = decode_bytes(redact)
    created_at = _iso(raw.get("created_at"), defaults[0])
    document: Document = {
        "session_id": session_id,
        "agent_id": agent_id,
        "message_id": message_id,
        "message": message,
        "redact_message": redact,
        "created_at": created_at,
        "updated_at": _iso(raw.get("updated_at"), created_at),
    }
    extras = {key: value for key, value in raw.items() if key not in _MESSAGE_FIELDS}
    if "message" not in raw:
        extras.pop("role", None)
        extras.pop("content", None)
    event = extras.pop("guardrail_event", None)
    if isinstance(event, Mapping):
        # Our redaction record (``action``, ``stop_reason``, ``guardrail_trace``), the rest kept as is.
        document["redaction"] = {("guardrail_trace" if key == "trace" else key): item for key, item in event.items()}
    elif event is not None:
        extras["guardrail_event"] = event
    if extras:
        document[LEGACY_FIELD] = extras
    return document


def _agent(session_id: str, agent_id: str, entry: Any, problems: list[Problem], session_created: str) -> LegacyAgent:
    if not isinstance(entry, Mapping):
        raise _Undecodable(f"agent entry is a {type(entry).__name__}")
    data = entry.get("agent_data")
    data = data if isinstance(data, Mapping) else {}
    created_at = _iso(data.get("created_at"), _iso(entry.get("created_at"), session_created))
    record: Document = {
        "agent_id": agent_id,
        "state": data.get("state") or {},
        "conversation_manager_state": data.get("conversation_manager_state") or {},
        "internal_state": data.get("_internal_state") or {},
        "created_at": created_at,
        "updated_at": _iso(data.get("updated_at"), created_at),
        "version": 0,
    }
    for name in AGENT_CONFIG_FIELDS:
        if data.get(name) is not None:
            record[name] = data[name]
    extras: Document = {
        key: value for key, value in data.items() if key not in _AGENT_DATA_FIELDS and key not in AGENT_CONFIG_FIELDS
    }
    extras.update({key: entry[key] for key in ("created_at", "updated_at") if key in entry})
    if extras:
        record[LEGACY_FIELD] = extras

    raw_messages = entry.get("messages") or []
    if not isinstance(raw_messages, list):
        problems.append(Problem(session_id, f"messages is a {type(raw_messages).__name__}", agent_id))
        raw_messages = []
    by_id: dict[int, Document] = {}
    for position, raw in enumerate(raw_messages):
        try:
            document = _message_document(session_id, agent_id, raw, (created_at, created_at))
        except _Undecodable as error:
            problems.append(Problem(session_id, f"undecodable message: {error}", agent_id, position))
            continue
        message_id = document["message_id"]
        kept = by_id.get(message_id)
        if kept is None:
            by_id[message_id] = document
        elif (kept["message"], kept["redact_message"]) != (document["message"], document["redact_message"]):
            problems.append(
                Problem(session_id, f"second message with id {message_id} and other content", agent_id, position)
            )
        # An identical second copy (the original never checked ids on insert) is simply the same message.
    return LegacyAgent(record, [by_id[key] for key in sorted(by_id)])


def feedback_id(session_id: str, position: int, item: Mapping[str, Any]) -> ObjectId:
    """A stable id for the ``position``-th original feedback, so that copying it twice stores it once."""
    digest = hashlib.sha256(f"{session_id}\x00{position}\x00".encode() + bson.encode(dict(item))).digest()
    return ObjectId(digest[:12])


def feedback_documents(session_id: str, raw: Any, problems: list[Problem], default: datetime) -> list[Document]:
    """Our feedback documents for the original's ``feedbacks`` array (with stable ids)."""
    documents: list[Document] = []
    for position, item in enumerate(raw if isinstance(raw, list) else []):
        if not isinstance(item, Mapping):
            problems.append(Problem(session_id, f"feedback[{position}] is a {type(item).__name__}, not a document"))
            continue
        created_at = item.get("created_at")
        documents.append(
            {
                "_id": feedback_id(session_id, position, item),
                "session_id": session_id,
                "created_at": as_utc(created_at) if isinstance(created_at, datetime) else default,
                "feedback": {key: value for key, value in item.items() if key != "created_at"},
            }
        )
    return documents


def _guardrail_summary(events: Any) -> Document | None:
    """The session's guardrail summary (as :mod:`..audit` keeps it) from the original's guardrail events."""
    events = [event for event in events or () if isinstance(event, Mapping)] if isinstance(events, list) else []
    if not events:
        return None
    stamps = [as_utc(event["timestamp"]) for event in events if isinstance(event.get("timestamp"), datetime)]
    policies = {
        policy
        for event in events
        if isinstance(event.get("policies_triggered"), Mapping)
        for policy in event["policies_triggered"]
    }
    summary: Document = {"count": len(events)}
    if stamps:
        summary["last_at"] = max(stamps)
    if policies:
        summary["policies"] = sorted(policies)
    return summary


def decode_session(document: Mapping[str, Any]) -> LegacySession:
    """Translate an original session document into ours. Raises nothing for bad parts: they become
    :class:`Problem` entries (an agent with an id we cannot store is one, with its messages)."""
    session_id = document["_id"]
    problems: list[Problem] = []
    now = codec.utc_now()
    updated = document.get("updated_at")
    last_activity = as_utc(updated) if isinstance(updated, datetime) else now
    created_at = _iso(document.get("created_at"), now.isoformat())
    legacy: Document = {"migrated_at": now}
    if document.get("guardrail_events"):
        legacy["guardrail_events"] = document["guardrail_events"]
    extra = {key: value for key, value in document.items() if key not in _SESSION_FIELDS}
    if extra:
        legacy["extra"] = extra
    fields: Document = {
        # The original accepted any label ("chat", "customer_support"); ours keeps it, like new sessions do.
        "session_type": codec.session_type_value(document.get("session_type") or SessionType.AGENT),
        "created_at": created_at,
        "updated_at": _iso(updated, created_at),
        "last_activity_at": last_activity,
        "metadata": dict(document.get("metadata") or {}),
        "multi_agents": [],
    }
    for name in ("application_name", "session_viewer_password"):
        if document.get(name) is not None:
            fields[name] = document[name]
    summary = _guardrail_summary(document.get("guardrail_events"))
    if summary is not None:
        fields[GUARDRAIL_SUMMARY_FIELD] = summary

    agents: list[LegacyAgent] = []
    for agent_id, entry in (document.get("agents") or {}).items():
        try:
            validate_id(agent_id, "agent")
            agents.append(_agent(session_id, agent_id, entry, problems, created_at))
        except (_Undecodable, InvalidIdError) as error:
            count = len(entry.get("messages") or []) if isinstance(entry, Mapping) else 0
            problems.append(Problem(session_id, f"agent not migrated ({error}); {count} message(s) with it", agent_id))
    encoded = _encoded(document)
    source = hashlib.sha256(encoded).hexdigest()
    legacy["fingerprint"] = source
    fields[LEGACY_FIELD] = legacy
    return LegacySession(
        session_id=session_id,
        fields=fields,
        agents=agents,
        feedback=feedback_documents(session_id, document.get("feedbacks"), problems, last_activity),
        problems=problems,
        source_bytes=len(encoded),
        fingerprint=source,
    )


def removed_fields(document: Mapping[str, Any], session: LegacySession) -> list[str]:
    """Top-level fields of the original document that our document of ``session`` does not keep."""
    kept = {"_id", "expires_at", *session.fields, "agents"}
    return [key for key in document if key not in kept]
