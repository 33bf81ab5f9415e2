"""``MongoDBSessionRepository``: the blocking Strands ``SessionRepository`` over the async core.

Each method runs the same-named coroutine of :class:`AsyncMongoDBSessionRepository` on the
client's home loop and blocks the calling thread until it is done.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from strands.session.session_repository import SessionRepository
from strands.types.session import Session, SessionAgent, SessionMessage

from ._clients import DEFAULT_COLLECTION_NAME, DEFAULT_DATABASE_NAME
from ._sync_client import SyncClientSource
from .repository import AsyncMongoDBSessionRepository

if TYPE_CHECKING:
    from pymongo import MongoClient
    from pymongo.collection import Collection
    from pymongo.database import Database
    from strands.multiagent.base import MultiAgentBase

T = TypeVar("T")

# The core's own keyword-only options (``ensure_indexes``, ``ttl_seconds``, ...): not client options.
_CORE_KEYWORDS = frozenset(
    name
    for name, parameter in inspect.signature(AsyncMongoDBSessionRepository.__init__).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY
)


class MongoDBSessionRepository(SessionRepository):
    """Strands ``SessionRepository`` on MongoDB (blocking). Same arguments as the async core.

    ``client``, ``database`` and ``collection`` (the sessions collection) are blocking PyMongo objects
    for code that queries MongoDB directly, as the earlier library allowed: the ``MongoClient`` that
    was passed in, or one created from the connection string on first access.
    """

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
        client_kwargs = {name: value for name, value in kwargs.items() if name not in _CORE_KEYWORDS}
        self._sync_client = SyncClientSource.for_arguments(connection_string, client, client_kwargs)
        self._owns_core = True

    @classmethod
    def wrapping(cls, core: AsyncMongoDBSessionRepository, sync_client: SyncClientSource) -> MongoDBSessionRepository:
        """A blocking view of ``core`` that owns neither it nor ``sync_client`` (:meth:`close` is a no-op)."""
        return _RepositoryView(core, sync_client)

    @property
    def client(self) -> MongoClient[Any]:
        """The blocking ``pymongo.MongoClient``."""
        return self._sync_client.get()

    @property
    def database(self) -> Database[Any]:
        """The database holding the sessions (blocking PyMongo)."""
        return self.client[self.core.database_name]

    @property
    def collection(self) -> Collection[Any]:
        """The sessions collection (blocking PyMongo)."""
        return self.database[self.core.collection_name]

    @property
    def metadata_fields(self) -> list[str]:
        """The indexed metadata keys."""
        return list(self.core.metadata_fields)

    @property
    def application_name(self) -> str | None:
        """The application name stored on sessions this repository creates."""
        return self.core.application_name

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

    def create_agent(
        self, session_id: str, session_agent: SessionAgent, *, config: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """Add an agent to the session (with configuration fields, see :meth:`set_agent_config`)."""
        self._call(self.core.create_agent, session_id, session_agent, config=config)

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

    def get_metadata(self, session_id: str) -> dict[str, Any] | None:
        """``{"_id": session_id, "metadata": {...}}``, or None if the session does not exist."""
        return self._call(self.core.get_metadata, session_id)

    def read_session_fields(self, session_id: str, names: Sequence[str]) -> dict[str, Any] | None:
        """The named top-level fields of the session document (with ``_id``), or None."""
        return self._call(self.core.read_session_fields, session_id, names)

    def read_agent_records(self, session_id: str, agent_id: str | None = None) -> list[dict[str, Any]] | None:
        """The stored agent records (configuration fields included), or only ``agent_id``'s; None if the
        session does not exist."""
        return self._call(self.core.read_agent_records, session_id, agent_id)

    def set_agent_config(self, session_id: str, agent_id: str, config: Mapping[str, Any]) -> None:
        """Set configuration fields (``model``, ``system_prompt``, ``prompt_metadata``) of a stored agent."""
        self._call(self.core.set_agent_config, session_id, agent_id, config)

    def get_session_viewer_password(self, session_id: str) -> str | None:
        """The session's legacy viewer token, or None."""
        return self._call(self.core.get_session_viewer_password, session_id)

    def get_application_name(self, session_id: str) -> str | None:
        """The application name the session was created with, or None."""
        return self._call(self.core.get_application_name, session_id)

    def delete_metadata(self, session_id: str, keys: Sequence[str]) -> None:
        """Remove metadata keys."""
        self._call(self.core.delete_metadata, session_id, keys)

    def add_feedback(self, session_id: str, feedback: Mapping[str, Any]) -> None:
        """Store a feedback document."""
        self._call(self.core.add_feedback, session_id, feedback)

    def get_feedbacks(self, session_id: str) -> list[dict[str, Any]]:
        """The session's feedback, oldest first."""
        return self._call(self.core.get_feedbacks, session_id)

    def rewrap_data_keys(self, kms_provider: str | None = None, master_key: Mapping[str, Any] | None = None) -> int:
        """Re-wrap every data key with a new master key; see
        :meth:`AsyncMongoDBSessionRepository.rewrap_data_keys`."""
        return self._call(self.core.rewrap_data_keys, kms_provider, master_key)

    def erase_orphaned_keys(self) -> int:
        """Delete the data keys of sessions that no longer exist; see
        :meth:`AsyncMongoDBSessionRepository.erase_orphaned_keys`."""
        return self._call(self.core.erase_orphaned_keys)

    def close(self) -> None:
        """Close the clients if this repository created them. Idempotent."""
        if not self._owns_core:
            return
        self._sync_client.close()
        if self.core.owns_runtime:
            self.core.runtime.close()

    def __enter__(self) -> MongoDBSessionRepository:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.core!r})"


class _RepositoryView(MongoDBSessionRepository):
    """:meth:`MongoDBSessionRepository.wrapping`: the blocking view of a core someone else owns."""

    def __init__(self, core: AsyncMongoDBSessionRepository, sync_client: SyncClientSource) -> None:
        self.core = core
        self._sync_client = sync_client
        self._owns_core = False
