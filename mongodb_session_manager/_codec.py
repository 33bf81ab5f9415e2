"""Mapping between Strands' session types and the stored MongoDB documents.

Values are stored as native BSON (``bytes`` become BSON binary, not base64 text), so they stay
queryable and a value read back compares equal to the value written.

Schema (``<c>`` is the configured collection name):

* ``<c>``: one document per session: ``_id`` (the session id), ``session_type``, ``created_at``,
  ``updated_at`` (Strands' ISO strings), ``last_activity_at`` (BSON date), ``metadata``,
  ``agents`` (one record per agent) and ``multi_agents`` (one record per orchestrator);
  ``application_name`` when one was given, and ``session_viewer_password`` (a legacy random token
  the earlier library generated for its session viewer; kept for code that reads it).
  An agent record may also hold ``model``, ``system_prompt`` and ``prompt_metadata``.
* ``<c>.messages``: one document per message, unique on ``(session_id, agent_id, message_id)``.
* ``<c>.feedback``: one document per feedback.
* ``<c>.blobs``: a GridFS bucket holding the content of messages larger than one document allows;
  their message document keeps ``message: None`` and ``message_blob``, the GridFS file id.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import Any, cast

from strands.types.content import Message
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from . import _compat
from ._types import Document

MESSAGES_SUFFIX = ".messages"
FEEDBACK_SUFFIX = ".feedback"
# GridFS bucket for message content too large for one document (``<c>.blobs.files`` / ``.chunks``).
BLOBS_SUFFIX = ".blobs"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso_now() -> str:
    return utc_now().isoformat()


# Agent-record fields describing the agent's configuration (not part of Strands' ``SessionAgent``).
AGENT_CONFIG_FIELDS = ("model", "system_prompt", "prompt_metadata")


def session_type_value(session_type: object) -> str:
    """The stored form of a session type: a ``SessionType``'s value, or the string itself (the earlier
    library stored any label, e.g. ``"chat"``)."""
    if isinstance(session_type, SessionType):
        return session_type.value
    return str(session_type)


def session_type_from_value(value: object) -> Any:
    """``SessionType`` for a known value, else the stored label unchanged."""
    try:
        return SessionType(value)
    except ValueError:
        return value


def viewer_password() -> str:
    """A new random session viewer token (the earlier library's ``session_viewer_password``)."""
    return secrets.token_urlsafe(24)


def session_fields(session: Session) -> Document:
    """The session document's own fields (without ``_id``, agents and metadata)."""
    return {
        "session_type": session_type_value(session.session_type),
        "created_at": session.created_at,
        "updated_at": session.updated_at,
    }


def session_document(session: Session) -> Document:
    """A complete new session document."""
    return {
        "_id": session.session_id,
        **session_fields(session),
        "last_activity_at": utc_now(),
        "metadata": {},
        "agents": [],
        "multi_agents": [],
        "session_viewer_password": viewer_password(),
    }


def session_from_document(document: Document) -> Session:
    return Session(
        session_id=document["_id"],
        session_type=session_type_from_value(document.get("session_type", SessionType.AGENT.value)),
        created_at=document["created_at"],
        updated_at=document["updated_at"],
    )


def agent_record(agent: SessionAgent) -> Document:
    return {
        "agent_id": agent.agent_id,
        "state": agent.state,
        "conversation_manager_state": agent.conversation_manager_state,
        "internal_state": _compat.internal_state(agent),
        "created_at": agent.created_at,
        "updated_at": agent.updated_at,
        # Optimistic concurrency: every update increments it; a manager's update expects the version it saw.
        "version": 0,
    }


def agent_from_record(record: Document) -> SessionAgent:
    return _compat.session_agent(
        agent_id=record["agent_id"],
        state=record.get("state") or {},
        conversation_manager_state=record.get("conversation_manager_state") or {},
        internal_state=record.get("internal_state") or {},
        created_at=record["created_at"],
        updated_at=record["updated_at"],
    )


def find_record(records: list[Document] | None, key: str, value: str) -> Document | None:
    """The record of ``records`` whose ``key`` equals ``value``."""
    return next((record for record in records or () if record.get(key) == value), None)


def message_document(session_id: str, agent_id: str, message: SessionMessage) -> Document:
    return {
        "session_id": session_id,
        "agent_id": agent_id,
        "message_id": message.message_id,
        "message": message.message,
        "redact_message": message.redact_message,
        "created_at": message.created_at,
        "updated_at": message.updated_at,
    }


def message_from_document(document: Document) -> SessionMessage:
    return SessionMessage(
        message=cast(Message, document["message"]),
        message_id=document["message_id"],
        redact_message=cast("Message | None", document.get("redact_message")),
        created_at=document["created_at"],
        updated_at=document["updated_at"],
    )


def multi_agent_record(multi_agent_id: str, state: Document) -> Document:
    now = iso_now()
    return {"multi_agent_id": multi_agent_id, "state": state, "created_at": now, "updated_at": now}


def feedback_document(session_id: str, feedback: Document) -> Document:
    return {"session_id": session_id, "created_at": utc_now(), "feedback": feedback}


def feedback_from_document(document: Document) -> Document:
    return {**document["feedback"], "created_at": document["created_at"]}
