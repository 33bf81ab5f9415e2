"""The construction and plumbing of :class:`~.repository.AsyncMongoDBSessionRepository`.

The repository is assembled from :class:`RepositoryBase` (configuration, the internal objects it
works through, index bootstrap, expiry touches), :class:`~._repository_messages.MessageOperations`
and :class:`~._repository_records.SessionRecordOperations` (metadata, feedback, agent configuration).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from . import _codec as codec
from ._clients import DEFAULT_COLLECTION_NAME, DEFAULT_DATABASE_NAME, runtime_for
from ._encryption import cipher_for
from ._expiry import Expiry
from ._indexes import ensure_indexes
from ._legacy.layout import needs_upgrade
from ._message_blobs import MessageBlobs
from ._messages import MessageStore
from ._namespace import SessionNamespace
from ._runtime import ClientRuntime, on_home_loop
from ._session_documents import SessionDocuments
from ._types import Document
from ._validation import (
    validate_field_names,
    validate_id,
    validate_name,
)
from .encryption import EncryptionOptions
from .errors import (
    InvalidInputError,
)
from .retention import EXPIRES_AT, Retention

if TYPE_CHECKING:
    from .repository import AsyncMongoDBSessionRepository

logger = logging.getLogger(__name__)


class RepositoryBase:
    """Configuration and plumbing of :class:`~.repository.AsyncMongoDBSessionRepository`."""

    def __init__(
        self,
        connection_string: str | None = None,
        database_name: str = DEFAULT_DATABASE_NAME,
        collection_name: str = DEFAULT_COLLECTION_NAME,
        client: Any = None,
        metadata_fields: Sequence[str] | None = None,
        application_name: str | None = None,
        *,
        isolate_application: bool = False,
        ensure_indexes: bool = True,
        ttl_seconds: int | None = None,
        touch_after: int | None = None,
        runtime: ClientRuntime | None = None,
        encryption: EncryptionOptions | None = None,
        **kwargs: Any,
    ) -> None:
        self.database_name = validate_name(database_name, "database_name")
        self.collection_name = validate_name(collection_name, "collection_name")
        self.metadata_fields = validate_field_names(metadata_fields)
        self.application_name = None if application_name is None else validate_id(application_name, "application")
        if isolate_application and self.application_name is None:
            raise InvalidInputError("isolate_application needs an application_name")
        self.isolate_application = bool(isolate_application)
        self.retention = Retention.of(ttl_seconds, touch_after)
        self._ensure_indexes = ensure_indexes
        self._owns_runtime = runtime is None
        self.runtime = runtime or runtime_for(connection_string, client, kwargs, name="mongodb-session-repository")
        self._indexes_ready = not ensure_indexes
        # The building blocks, shared with the catalog (see docs/architecture.md).
        self.namespace = SessionNamespace(
            self.runtime, self.database_name, self.collection_name, self.application_name, self.isolate_application
        )
        # The one layer encryption lives in: fields are sealed after _codec shapes them, opened before.
        self.cipher = cipher_for(encryption, self.runtime, self.database_name, self.collection_name)
        self.encryption = encryption
        self.blobs = MessageBlobs(self.namespace)
        self.expiry = Expiry(self.namespace, self.blobs, self.retention, self.cipher)
        self.documents = SessionDocuments(self.namespace, self.expiry, self.cipher)
        self.messages = MessageStore(self.namespace, self.blobs, self.expiry, self.cipher)

    # -- plumbing ---------------------------------------------------------------------------------

    @property
    def owns_runtime(self) -> bool:
        """Whether :meth:`close` closes the client (this repository created it)."""
        return self._owns_runtime

    @property
    def application_scope(self) -> str | None:
        """The application name sessions must carry to be visible here (only with ``isolate_application``)."""
        return self.namespace.application_scope

    async def _ready(self) -> None:
        if not self._indexes_ready:
            await ensure_indexes(
                self.runtime.port,
                self.database_name,
                self.collection_name,
                self.metadata_fields,
                ttl=self.retention is not None,
                application=self.application_name is not None,
            )
            await self.cipher.prepare()
            self._indexes_ready = True

    # -- expiry -----------------------------------------------------------------------------------

    @on_home_loop
    async def touch_session(
        self, session_id: str, *, generation: str | None = None, known_expiry: datetime | None = None
    ) -> datetime:
        """Push the session's expiry, and its messages', feedback's and blobs', to ``ttl_seconds +
        touch_after`` from now. Returns the new expiry.

        Args:
            session_id: The session.
            generation: The ``created_at`` of the session as the caller read it: a session re-created
                since is not touched.
            known_expiry: The expiry the caller last saw. While it has not passed, the session is
                certainly alive and its children are extended first, so that an interrupted touch
                never leaves children expiring before their session.

        Raises:
            SessionExpiredError: the session expired, was deleted or was re-created meanwhile; its
                document is left as it was.
        """
        validate_id(session_id, "session")
        if self.retention is None:
            raise InvalidInputError("touch_session needs a repository created with ttl_seconds")
        return await self.expiry.touch(session_id, generation, known_expiry)

    async def touch_if_due(self, session_id: str, document: Document) -> Document:
        """Touch the session if its ``document`` (as last read or touched) says a touch is due, and
        record the new expiry in ``document``; a no-op without ``ttl_seconds``. Returns ``document``.

        Raises:
            SessionExpiredError: see :meth:`touch_session`.
        """
        if self.expiry.touch_due(document):
            document[EXPIRES_AT] = await self.touch_session(
                session_id, generation=document.get("created_at"), known_expiry=document.get(EXPIRES_AT)
            )
        return document

    @on_home_loop
    async def load_session(self, session_id: str, *, create: bool = True) -> tuple[Document | None, bool]:
        """Read the whole session document (agents included) in one round trip, creating it if asked.

        Returns the document (None only when ``create`` is false and there is none) and whether this
        call created it. With ``ttl_seconds``, loading with ``create`` is activity: it pushes the
        session's expiry back when a touch is due.
        """
        validate_id(session_id, "session")
        await self._ready()
        if not create:
            # A read: it does not push the expiry back (the caller's next write does, when due).
            document, created = await self.namespace.sessions.find_one(self.namespace.live(session_id)), False
        else:
            document, created = await self.documents.load_or_create(session_id)
        if document is not None and needs_upgrade(document):
            # Stored by the original manager (v0.9): read through it, and migrate it when it is about to be used.
            from ._legacy.gate import upgrade

            # Every repository object is an AsyncMongoDBSessionRepository; this base is one of its parts.
            repository = cast("AsyncMongoDBSessionRepository", self)
            document = await upgrade(repository, session_id, document, migrate=create)
        if document is not None:
            await self.cipher.open_session_document(session_id, document)
        return document, created


def check_agent_config(config: Mapping[str, Any]) -> None:
    unknown = sorted(set(config) - set(codec.AGENT_CONFIG_FIELDS))
    if unknown:
        raise InvalidInputError(f"unknown agent configuration fields {unknown}")
