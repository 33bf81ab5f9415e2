"""``MongoDBSessionManagerFactory``: session managers sharing one MongoDB client.

Create one factory at start-up, then one manager per request with :meth:`create_session_manager`:
that costs no connection, no index creation after the first manager, and no round trip.
``AsyncMongoDBSessionManagerFactory`` is the same factory with awaitable methods.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from . import connection_pool
from ._clients import DEFAULT_COLLECTION_NAME, DEFAULT_DATABASE_NAME
from ._driver import port_for
from ._runtime import ClientRuntime
from ._sync_client import SyncClientSource
from ._types import Document
from ._validation import validate_field_names, validate_id, validate_name
from .encryption import EncryptionOptions
from .errors import ClosedError, InvalidInputError
from .repository import AsyncMongoDBSessionRepository
from .retention import Retention
from .session_manager import MongoDBSessionManager

logger = logging.getLogger(__name__)


EXTERNAL_CLIENT_STATS: Document = {
    "status": "external_client",
    "message": "Using externally managed MongoDB client",
}


class _FactoryCore:
    """Configuration, client ownership and the repository cache shared by both factories."""

    def __init__(
        self,
        connection_string: str | None,
        database_name: str,
        collection_name: str,
        client: Any,
        metadata_fields: Sequence[str] | None,
        application_name: str | None,
        client_kwargs: dict[str, Any],
        *,
        isolate_application: bool,
        ensure_indexes: bool,
        ttl_seconds: int | None,
        touch_after: int | None,
        encryption: EncryptionOptions | None = None,
    ) -> None:
        if encryption is not None and not isinstance(encryption, EncryptionOptions):
            raise InvalidInputError(f"encryption must be an EncryptionOptions, got {type(encryption).__name__}")
        self.encryption = encryption
        self.database_name = validate_name(database_name, "database_name")
        self.collection_name = validate_name(collection_name, "collection_name")
        self.metadata_fields = validate_field_names(metadata_fields)
        self.application_name = None if application_name is None else validate_id(application_name, "application")
        self.isolate_application = bool(isolate_application)
        self._ensure_indexes = bool(ensure_indexes)
        self.retention = Retention.of(ttl_seconds, touch_after)
        self._lease: connection_pool.ClientLease | None = None
        # A blocking client for managers' session_repository.client/.collection, created on first use.
        self._sync_client = SyncClientSource.for_arguments(connection_string, client, client_kwargs)
        if client is not None:
            self._owns_client = False
            self._runtime = ClientRuntime(port=port_for(client), name="mongodb-session-manager-factory")
        elif connection_string is not None:
            self._owns_client = True
            self._lease = connection_pool.acquire(connection_string, client_kwargs)
            self._runtime = self._lease.runtime
            connection_pool.set_factory_default(self._sync_client)
        else:
            raise InvalidInputError("MongoDBSessionManagerFactory needs a connection_string or a client")
        self._repositories: dict[tuple[Any, ...], AsyncMongoDBSessionRepository] = {}
        self._lock = threading.Lock()
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("the session manager factory is closed")

    @property
    def runtime(self) -> ClientRuntime:
        """The factory's client and the event loop it runs on, for components sharing them (e.g.
        :meth:`MongoDBStorage.from_factory`); internal API.

        Raises:
            ClosedError: The factory is closed.
        """
        self._check_open()
        return self._runtime

    def _new_manager(
        self,
        session_id: str,
        database_name: str | None,
        collection_name: str | None,
        metadata_fields: Sequence[str] | None,
        kwargs: dict[str, Any],
    ) -> MongoDBSessionManager:
        self._check_open()
        application_name = kwargs.pop("application_name", None)
        if application_name is None:
            application_name = self.application_name
        isolate = bool(kwargs.pop("isolate_application", self.isolate_application))
        retention = self.retention
        if "ttl_seconds" in kwargs or "touch_after" in kwargs:
            retention = Retention.of(kwargs.pop("ttl_seconds", None), kwargs.pop("touch_after", None))
        encryption = kwargs.pop("encryption", self.encryption)
        if encryption is not None and not isinstance(encryption, EncryptionOptions):
            raise InvalidInputError(f"encryption must be an EncryptionOptions, got {type(encryption).__name__}")
        # Overrides are validated before they become a cache key (an unhashable value would raise a bare
        # TypeError, and an empty name would silently mean the default).
        key = (
            self.database_name if database_name is None else validate_name(database_name, "database_name"),
            self.collection_name if collection_name is None else validate_name(collection_name, "collection_name"),
            tuple(self.metadata_fields if metadata_fields is None else validate_field_names(metadata_fields)),
            None if application_name is None else validate_id(application_name, "application"),
            retention,
            isolate,
            encryption,  # by identity: one repository (and one data-key cache) per options object
        )
        with self._lock:
            repository = self._repositories.get(key)
            if repository is None:
                repository = self._repositories[key] = AsyncMongoDBSessionRepository(
                    database_name=key[0],
                    collection_name=key[1],
                    metadata_fields=list(key[2]),
                    application_name=key[3],
                    isolate_application=isolate,
                    ensure_indexes=self._ensure_indexes,
                    ttl_seconds=None if retention is None else retention.ttl_seconds,
                    touch_after=None if retention is None else retention.touch_after,
                    runtime=self._runtime,
                    encryption=encryption,
                )
        return MongoDBSessionManager(session_id, repository=repository, sync_client=self._sync_client, **kwargs)

    async def _stats(self) -> Document:
        if not self._owns_client:
            return dict(EXTERNAL_CLIENT_STATS)
        assert self._lease is not None
        return await self._lease.shared.stats()

    def _mark_closed(self) -> bool:
        with self._lock:
            if self._closed:
                return False
            self._closed = True
            self._repositories.clear()
        connection_pool.forget_factory_default(self._sync_client)
        self._sync_client.close()
        return True


class MongoDBSessionManagerFactory(_FactoryCore):
    """Factory for creating MongoDB session managers with shared connection pool.

    Args:
        connection_string: MongoDB URI; the factory then owns a shared client from
            :class:`MongoDBConnectionPool` and :meth:`close` releases it.
        database_name: Default database of the managers.
        collection_name: Default sessions collection of the managers.
        client: A ``pymongo.MongoClient``, ``pymongo.AsyncMongoClient`` or Motor client to borrow;
            takes precedence over ``connection_string``; :meth:`close` leaves it open.
        metadata_fields: Metadata keys to index.
        application_name: Default application name of the managers' sessions: a label stored on each
            session when it is created, and indexed. Sessions stored under another name, or none, stay
            readable.
        isolate_application: Strict per-application isolation: managers see only sessions stored
            under their application name.
        ensure_indexes: Create the indexes on first use; turn off when the database user may not.
        ttl_seconds: Every manager's sessions expire after this many seconds of inactivity (see
            :class:`MongoDBSessionManager`); None keeps them until deleted.
        touch_after: How often (seconds of activity) a session's expiry is pushed back; defaults to
            a tenth of ``ttl_seconds``.
        encryption: Encrypt every manager's conversations, state and feedback before they are stored
            (:class:`~mongodb_session_manager.EncryptionOptions`, ``docs/encryption.md``).
        **client_kwargs: Client options (``maxPoolSize``, ``tls``, ...), used with ``connection_string``.
    """

    def __init__(
        self,
        connection_string: str | None = None,
        database_name: str = DEFAULT_DATABASE_NAME,
        collection_name: str = DEFAULT_COLLECTION_NAME,
        client: Any = None,
        metadata_fields: list[str] | None = None,
        application_name: str | None = None,
        *,
        isolate_application: bool = False,
        ensure_indexes: bool = True,
        ttl_seconds: int | None = None,
        touch_after: int | None = None,
        encryption: EncryptionOptions | None = None,
        **client_kwargs: Any,
    ) -> None:
        super().__init__(
            connection_string,
            database_name,
            collection_name,
            client,
            metadata_fields,
            application_name,
            client_kwargs,
            isolate_application=isolate_application,
            ensure_indexes=ensure_indexes,
            ttl_seconds=ttl_seconds,
            touch_after=touch_after,
            encryption=encryption,
        )

    def create_session_manager(
        self,
        session_id: str,
        database_name: str | None = None,
        collection_name: str | None = None,
        metadata_fields: list[str] | None = None,
        application_name: str | None = None,
        **kwargs: Any,
    ) -> MongoDBSessionManager:
        """A new session manager on the shared client; no I/O (the session is created on first use).

        ``application_name`` overrides the factory's. ``kwargs`` go to :class:`MongoDBSessionManager`
        (``metadata_hook``, ``feedback_hook``); ``ttl_seconds``, ``touch_after`` and
        ``isolate_application`` override the factory's.
        """
        kwargs["application_name"] = application_name
        return self._new_manager(session_id, database_name, collection_name, metadata_fields, kwargs)

    def get_connection_stats(self) -> Document:
        """``{"status": "connected", ...}`` for an owned client, ``{"status": "external_client", ...}``
        for a borrowed one. Credentials are masked; live pool counts are under ``pool_stats``."""
        self._check_open()
        if not self._owns_client:
            return dict(EXTERNAL_CLIENT_STATS)
        return self._runtime.run_blocking(self._stats)

    def close(self) -> None:
        """Release the shared client if the factory owns it; a borrowed client stays open. Idempotent."""
        if not self._mark_closed():
            return
        if self._lease is not None:
            self._lease.release()
        else:
            self._runtime.close()

    def __enter__(self) -> MongoDBSessionManagerFactory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        owner = "owned" if self._owns_client else "borrowed"
        return (
            f"{type(self).__name__}(database_name={self.database_name!r}, "
            f"collection_name={self.collection_name!r}, client={owner})"
        )


class AsyncMongoDBSessionManagerFactory(_FactoryCore):
    """:class:`MongoDBSessionManagerFactory` with awaitable methods and ``async with`` support."""

    def __init__(
        self,
        connection_string: str | None = None,
        database_name: str = DEFAULT_DATABASE_NAME,
        collection_name: str = DEFAULT_COLLECTION_NAME,
        client: Any = None,
        metadata_fields: list[str] | None = None,
        application_name: str | None = None,
        *,
        isolate_application: bool = False,
        ensure_indexes: bool = True,
        ttl_seconds: int | None = None,
        touch_after: int | None = None,
        encryption: EncryptionOptions | None = None,
        **client_kwargs: Any,
    ) -> None:
        super().__init__(
            connection_string,
            database_name,
            collection_name,
            client,
            metadata_fields,
            application_name,
            client_kwargs,
            isolate_application=isolate_application,
            ensure_indexes=ensure_indexes,
            ttl_seconds=ttl_seconds,
            touch_after=touch_after,
            encryption=encryption,
        )

    async def create_session_manager(
        self,
        session_id: str,
        database_name: str | None = None,
        collection_name: str | None = None,
        metadata_fields: list[str] | None = None,
        application_name: str | None = None,
        *,
        preload: bool = False,
        **kwargs: Any,
    ) -> MongoDBSessionManager:
        """A new session manager on the shared client.

        With ``preload=True`` the session and its agents' messages are fetched now (two round trips,
        awaited), so that ``Agent(session_manager=manager)`` restores without blocking I/O.
        """
        kwargs["application_name"] = application_name
        manager = self._new_manager(session_id, database_name, collection_name, metadata_fields, kwargs)
        if preload:
            await manager.load_async()
        return manager

    async def get_connection_stats(self) -> Document:
        """Awaitable :meth:`MongoDBSessionManagerFactory.get_connection_stats`."""
        self._check_open()
        return await self._stats()

    async def close(self) -> None:
        """Awaitable :meth:`MongoDBSessionManagerFactory.close`."""
        if not self._mark_closed():
            return
        if self._lease is not None:
            await self._lease.arelease()
        else:
            await self._runtime.aclose()

    async def __aenter__(self) -> AsyncMongoDBSessionManagerFactory:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


_global_factory: MongoDBSessionManagerFactory | None = None
_global_lock = threading.Lock()


def initialize_global_factory(
    connection_string: str,
    database_name: str = DEFAULT_DATABASE_NAME,
    collection_name: str = "virtualagent_sessions",
    metadata_fields: list[str] | None = None,
    application_name: str | None = None,
    **client_kwargs: Any,
) -> MongoDBSessionManagerFactory:
    """Create the process-wide factory (closing a previous one) and return it.

    The default ``collection_name`` is "virtualagent_sessions" (the earlier library's was
    "collection_name": pass it explicitly to keep using that collection).
    """
    global _global_factory
    factory = MongoDBSessionManagerFactory(
        connection_string=connection_string,
        database_name=database_name,
        collection_name=collection_name,
        metadata_fields=metadata_fields,
        application_name=application_name,
        **client_kwargs,
    )
    with _global_lock:
        previous, _global_factory = _global_factory, factory
    if previous is not None:
        previous.close()
    return factory


def get_global_factory() -> MongoDBSessionManagerFactory:
    """The factory created by :func:`initialize_global_factory`.

    Raises:
        RuntimeError: if it has not been initialized (or was closed).
    """
    with _global_lock:
        factory = _global_factory
    if factory is None:
        raise RuntimeError("Global factory not initialized. Call initialize_global_factory() first.")
    return factory


def close_global_factory() -> None:
    """Close the global factory, if any. Safe to call repeatedly."""
    global _global_factory
    with _global_lock:
        factory, _global_factory = _global_factory, None
    if factory is not None:
        factory.close()
