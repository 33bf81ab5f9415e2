"""Session metadata, feedback and agent configuration: the part of the session manager an application calls."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import _codec as codec
from ._manager_base import ManagerBase
from ._must_finish import must_finish
from ._types import Document
from ._validation import validate_id
from .errors import (
    InvalidInputError,
)
from .hooks import Hook, call_with_hook

if TYPE_CHECKING:
    from .session_manager import MongoDBSessionManager

logger = logging.getLogger(__name__)


class SessionRecords(ManagerBase):
    """Metadata, feedback and agent configuration (see :class:`~.session_manager.MongoDBSessionManager`)."""

    async def _through_hook(
        self, hook: Hook | None, action: str, operation: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any
    ) -> Any:
        """Run ``operation(*args)`` through the user's ``hook``, if any, which gets the operation (awaitable
        or blocking, as the hook is) and the named ``kwargs``."""
        return await call_with_hook(
            hook, action, self.session_id, operation, self.repository.runtime.blocking(operation), *args, **kwargs
        )

    # -- metadata ---------------------------------------------------------------------------------

    def update_metadata(self, metadata: Mapping[str, Any]) -> None:
        """Merge keys into the session's metadata; nested dicts keep their sibling keys."""
        self._run_blocking(self.update_metadata_async, metadata)

    @must_finish
    async def update_metadata_async(self, metadata: Mapping[str, Any]) -> None:
        """Awaitable :meth:`update_metadata`."""
        self._check_open()
        await self._through_hook(
            self.metadata_hook,
            "update",
            self._update_metadata,
            metadata,
            metadata=metadata,
        )

    async def _update_metadata(self, metadata: Mapping[str, Any]) -> None:
        await self._keep_alive()
        await self.repository.update_metadata(self.session_id, metadata)

    def get_metadata(self) -> Document:
        """``{"_id": session_id, "metadata": {...}}``, as the earlier library returned it (the metadata
        is empty while the session has none or does not exist yet)."""
        return self._run_blocking(self.get_metadata_async)

    async def get_metadata_async(self) -> Document:
        """Awaitable :meth:`get_metadata`."""
        self._check_open()
        result: Document = await self._through_hook(
            self.metadata_hook,
            "get",
            self._get_metadata,
        )
        return result

    async def _get_metadata(self) -> Document:
        stored = await self.repository.get_metadata(self.session_id)
        return stored if stored is not None else {"_id": self.session_id, "metadata": {}}

    def delete_metadata(self, keys: Sequence[str]) -> None:
        """Remove metadata keys."""
        self._run_blocking(self.delete_metadata_async, keys)

    @must_finish
    async def delete_metadata_async(self, keys: Sequence[str]) -> None:
        """Awaitable :meth:`delete_metadata`."""
        self._check_open()
        await self._through_hook(
            self.metadata_hook,
            "delete",
            self._delete_metadata,
            keys,
            keys=keys,
        )

    async def _delete_metadata(self, keys: Sequence[str]) -> None:
        await self.repository.delete_metadata(self.session_id, keys)

    # -- feedback ---------------------------------------------------------------------------------

    def add_feedback(self, feedback: Mapping[str, Any]) -> None:
        """Store a feedback dict (stamped with ``created_at``)."""
        self._run_blocking(self.add_feedback_async, feedback)

    @must_finish
    async def add_feedback_async(self, feedback: Mapping[str, Any]) -> None:
        """Awaitable :meth:`add_feedback`."""
        self._check_open()
        await self._through_hook(
            self.feedback_hook,
            "add",
            self._add_feedback,
            feedback,
            session_manager=self,
            feedback=feedback,
        )

    async def _add_feedback(
        self, feedback: Mapping[str, Any], session_manager: MongoDBSessionManager | None = None
    ) -> None:
        # ``session_manager`` is accepted so that a hook may forward all its keyword arguments.
        await self._keep_alive()
        await self.repository.add_feedback(self.session_id, feedback)

    def get_feedbacks(self) -> list[Document]:
        """The session's feedback, oldest first."""
        return self._run_blocking(self.get_feedbacks_async)

    async def get_feedbacks_async(self) -> list[Document]:
        """Awaitable :meth:`get_feedbacks`."""
        self._check_open()
        return await self.repository.get_feedbacks(self.session_id)

    # -- inspection and agent configuration ------------------------------------------------------

    def list_agents(self) -> list[Document]:
        """``[{"agent_id", "model", "system_prompt", "prompt_metadata"}, ...]`` for the session's agents."""
        return self._run_blocking(self.list_agents_async)

    async def list_agents_async(self) -> list[Document]:
        """Awaitable :meth:`list_agents`."""
        self._check_open()
        records = await self.repository.read_agent_records(self.session_id)
        return [_agent_config_view(record) for record in records or ()]

    def get_message_count(self, agent_id: str) -> int:
        """How many messages are stored for ``agent_id``."""
        return self._run_blocking(self.get_message_count_async, agent_id)

    async def get_message_count_async(self, agent_id: str) -> int:
        """Awaitable :meth:`get_message_count`."""
        self._check_open()
        await self._flush_deferred()  # counts what this manager wrote, pipelined writes included
        return await self.repository.count_messages(self.session_id, agent_id)

    def get_agent_config(self, agent_id: str) -> Document | None:
        """``{"agent_id", "model", "system_prompt", "prompt_metadata"}`` of ``agent_id``, or None."""
        return self._run_blocking(self.get_agent_config_async, agent_id)

    async def get_agent_config_async(self, agent_id: str) -> Document | None:
        """Awaitable :meth:`get_agent_config`."""
        self._check_open()
        records = await self.repository.read_agent_records(self.session_id, validate_id(agent_id, "agent"))
        record = codec.find_record(records, "agent_id", agent_id)
        return None if record is None else _agent_config_view(record)

    def update_agent_config(
        self,
        agent_id: str,
        model: str | None = None,
        system_prompt: str | None = None,
        prompt_metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Set the stored model id, system prompt and/or prompt metadata of ``agent_id`` (None leaves a
        field alone). Raises :class:`NotFoundError` if the agent is not stored."""
        self._run_blocking(self.update_agent_config_async, agent_id, model, system_prompt, prompt_metadata)

    async def update_agent_config_async(
        self,
        agent_id: str,
        model: str | None = None,
        system_prompt: str | None = None,
        prompt_metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Awaitable :meth:`update_agent_config`."""
        self._check_open()
        if prompt_metadata is not None and not isinstance(prompt_metadata, Mapping):
            raise InvalidInputError(f"prompt_metadata must be a dict, got {type(prompt_metadata).__name__}")
        given = {"model": model, "system_prompt": system_prompt, "prompt_metadata": prompt_metadata}
        config = {name: value for name, value in given.items() if value is not None}
        if prompt_metadata is not None:
            config["prompt_metadata"] = dict(prompt_metadata)
        if not config:
            return
        await self._session()  # a session stored by the original manager is migrated first
        await self._keep_alive()
        await self.repository.set_agent_config(self.session_id, agent_id, config)
        tracking = self._agents.get(agent_id)
        if tracking is not None and tracking.config is not None:
            tracking.config = {**tracking.config, **config}

    def set_prompt_metadata(self, agent_id: str, prompt_metadata: Mapping[str, Any]) -> None:
        """Store prompt lineage for ``agent_id`` (``prompt_id``, ``prompt_name``, ``prompt_version``,
        ``deployment_id``, ``deployment_name``, ``temperature``...), replacing earlier prompt metadata."""
        self._run_blocking(self.set_prompt_metadata_async, agent_id, prompt_metadata)

    async def set_prompt_metadata_async(self, agent_id: str, prompt_metadata: Mapping[str, Any]) -> None:
        """Awaitable :meth:`set_prompt_metadata`."""
        if not isinstance(prompt_metadata, Mapping):
            raise InvalidInputError(f"prompt_metadata must be a dict, got {type(prompt_metadata).__name__}")
        await self.update_agent_config_async(agent_id, prompt_metadata=prompt_metadata)

    def get_application_name(self) -> str | None:
        """The application name the session was created with (or, before it exists, the one it will get)."""
        return self._run_blocking(self.get_application_name_async)

    async def get_application_name_async(self) -> str | None:
        """Awaitable :meth:`get_application_name`."""
        self._check_open()
        document = await self.repository.read_session_fields(self.session_id, ["application_name"])
        return self.repository.application_name if document is None else document.get("application_name")

    def get_session_viewer_password(self) -> str | None:
        """Legacy: the random token the earlier library generated for its session viewer when the session
        was created; None while the session does not exist. Treat it as a secret (it is never logged)."""
        return self._run_blocking(self.get_session_viewer_password_async)

    async def get_session_viewer_password_async(self) -> str | None:
        """Awaitable :meth:`get_session_viewer_password`."""
        self._check_open()
        return await self.repository.get_session_viewer_password(self.session_id)


def _agent_config_view(record: Document) -> Document:
    """An agent record in the earlier library's ``list_agents`` / ``get_agent_config`` shape."""
    return {"agent_id": record["agent_id"], **{name: record.get(name) for name in codec.AGENT_CONFIG_FIELDS}}
