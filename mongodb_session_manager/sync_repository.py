"""``MongoDBSessionRepository``: the blocking Strands ``SessionRepository`` over the async core.

Each method runs the same-named coroutine of :class:`AsyncMongoDBSessionRepository` on the
client's home loop and blocks the calling thread until it is done.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from strands.session.session_repository import SessionRepository
from strands.types.session import Session, SessionAgent, SessionMessage

from ._clients import DEFAULT_COLLECTION_NAME, DEFAULT_DATABASE_NAME
from .repository import AsyncMongoDBSessionRepository

if TYPE_CHECKING:
    from strands.multiagent.base import MultiAgentBase

T = TypeVar("T")


class MongoDBSessionRepository(SessionRepository):
    """Strands ``SessionRepository`` on MongoDB (blocking). Same arguments as the async core."""

    def __init__(
        self,
        connection_string: str | None = None,
        database_name: str = DEFAULT_DATABASE_NAME,
        collection_name: str = DEFAULT_COLLECTION_NAME,
        client: Any = None,
        metadata_fields: Sequence[str] | None = None,
        application_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.core = AsyncMongoDBSessionRepository(
            connection_string, database_name, collection_name, client, metadata_fields, application_name, **kwargs
        )

    def _call(self, function: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        return self.core.runtime.run_blocking(function, *args, **kwargs)

    def create_session(self, session: Session, **kwargs: Any) -> Session:
        """Insert a new session."""
        return self._call(self.core.create_session, session)

    def read_session(self, session_id: str, **kwargs: Any) -> Session | None:
        """The session, or None."""
        return self._call(self.core.read_session, session_id)

    def delete_session(self, session_id: str, **kwargs: Any) -> None:
        """Delete the session with its messages and feedback (no-op if missing)."""
        self._call(self.core.delete_session, session_id)

    def touch_session(
        self, session_id: str, *, generation: str | None = None, known_expiry: datetime | None = None
    ) -> datetime:
        """Push back the expiry of a session with ``ttl_seconds``; see
        :meth:`AsyncMongoDBSessionRepository.touch_session`."""
        return self._call(self.core.touch_session, session_id, generation=generation, known_expiry=known_expiry)

    def create_agent(self, session_id: str, session_agent: SessionAgent, **kwargs: Any) -> None:
        """Add an agent to the session."""
        self._call(self.core.create_agent, session_id, session_agent)

    def read_agent(self, session_id: str, agent_id: str, **kwargs: Any) -> SessionAgent | None:
        """The agent, or None."""
        return self._call(self.core.read_agent, session_id, agent_id)

    def update_agent(self, session_id: str, session_agent: SessionAgent, **kwargs: Any) -> None:
        """Replace the agent's state."""
        self._call(self.core.update_agent, session_id, session_agent)

    def create_message(self, session_id: str, agent_id: str, session_message: SessionMessage, **kwargs: Any) -> None:
        """Insert a message."""
        self._call(self.core.create_message, session_id, agent_id, session_message)

    def read_message(self, session_id: str, agent_id: str, message_id: int, **kwargs: Any) -> SessionMessage | None:
        """The message, or None."""
        return self._call(self.core.read_message, session_id, agent_id, message_id)

    def update_message(self, session_id: str, agent_id: str, session_message: SessionMessage, **kwargs: Any) -> None:
        """Replace a message's content and redaction."""
        self._call(self.core.update_message, session_id, agent_id, session_message)

    def list_messages(
        self, session_id: str, agent_id: str, limit: int | None = None, offset: int = 0, **kwargs: Any
    ) -> list[SessionMessage]:
        """Messages in order, with pagination."""
        return self._call(self.core.list_messages, session_id, agent_id, limit, offset)

    def create_multi_agent(self, session_id: str, multi_agent: MultiAgentBase, **kwargs: Any) -> None:
        """Store an orchestrator's state."""
        self._call(self.core.create_multi_agent, session_id, multi_agent)

    def read_multi_agent(self, session_id: str, multi_agent_id: str, **kwargs: Any) -> dict[str, Any] | None:
        """An orchestrator's state, or None."""
        return self._call(self.core.read_multi_agent, session_id, multi_agent_id)

    def update_multi_agent(self, session_id: str, multi_agent: MultiAgentBase, **kwargs: Any) -> None:
        """Replace an orchestrator's state."""
        self._call(self.core.update_multi_agent, session_id, multi_agent)

    def create_messages(self, session_id: str, agent_id: str, session_messages: Sequence[SessionMessage]) -> None:
        """Insert several messages in one round trip."""
        self._call(self.core.create_messages, session_id, agent_id, session_messages)

    def count_messages(self, session_id: str, agent_id: str) -> int:
        """How many messages are stored for the agent."""
        return self._call(self.core.count_messages, session_id, agent_id)

    def update_metadata(self, session_id: str, metadata: Mapping[str, Any]) -> None:
        """Merge keys into the session's metadata (creating the session if needed)."""
        self._call(self.core.update_metadata, session_id, metadata)

    def get_metadata(self, session_id: str) -> dict[str, Any]:
        """The session's metadata."""
        return self._call(self.core.get_metadata, session_id)

    def delete_metadata(self, session_id: str, keys: Sequence[str]) -> None:
        """Remove metadata keys."""
        self._call(self.core.delete_metadata, session_id, keys)

    def add_feedback(self, session_id: str, feedback: Mapping[str, Any]) -> None:
        """Store a feedback document."""
        self._call(self.core.add_feedback, session_id, feedback)

    def get_feedbacks(self, session_id: str) -> list[dict[str, Any]]:
        """The session's feedback, oldest first."""
        return self._call(self.core.get_feedbacks, session_id)

    def close(self) -> None:
        """Close the client if this repository created it. Idempotent."""
        if self.core.owns_runtime:
            self.core.runtime.close()

    def __enter__(self) -> MongoDBSessionRepository:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.core!r})"
