"""Process-wide shared clients created from connection strings.

* :func:`acquire`: the async clients factories share. There is one client per distinct connection
  string and options. Each factory built from a connection string holds a *lease* on it; the client
  is closed when its last lease is released, so two factories with different connection strings
  live side by side and neither closes the other's client.
* :class:`MongoDBConnectionPool`: the earlier library's class-level API, a singleton holding one
  blocking ``pymongo.MongoClient`` for code that uses PyMongo directly.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

import pymongo
from pymongo import MongoClient, monitoring
from pymongo.errors import PyMongoError

from ._clients import client_options, mask_uri, validate_connection_string
from ._driver import ClientPort, PyMongoAsyncClientPort
from ._runtime import ClientRuntime
from ._sync_client import SyncClientSource
from ._types import Document
from .errors import MongoDBSessionError

logger = logging.getLogger(__name__)


class PoolCounters(monitoring.ConnectionPoolListener):
    """Live connection counts from PyMongo's connection-pool monitoring events."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.created = 0
        self.closed = 0
        self.checkout_started = 0
        self.checked_out = 0
        self.checked_in = 0
        self.checkout_failures = 0

    def _bump(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def snapshot(self) -> dict[str, int]:
        """``open``, ``in_use``, ``waiting``, ``created``, ``closed`` and ``checkout_failures``."""
        with self._lock:
            return {
                "open": self.created - self.closed,
                "in_use": self.checked_out - self.checked_in,
                "waiting": max(0, self.checkout_started - self.checked_out - self.checkout_failures),
                "created": self.created,
                "closed": self.closed,
                "checkout_failures": self.checkout_failures,
            }

    def pool_created(self, event: monitoring.PoolCreatedEvent) -> None:
        pass

    def pool_ready(self, event: monitoring.PoolReadyEvent) -> None:
        pass

    def pool_cleared(self, event: monitoring.PoolClearedEvent) -> None:
        pass

    def pool_closed(self, event: monitoring.PoolClosedEvent) -> None:
        pass

    def connection_created(self, event: monitoring.ConnectionCreatedEvent) -> None:
        self._bump("created")

    def connection_ready(self, event: monitoring.ConnectionReadyEvent) -> None:
        pass

    def connection_closed(self, event: monitoring.ConnectionClosedEvent) -> None:
        self._bump("closed")

    def connection_check_out_started(self, event: monitoring.ConnectionCheckOutStartedEvent) -> None:
        self._bump("checkout_started")

    def connection_check_out_failed(self, event: monitoring.ConnectionCheckOutFailedEvent) -> None:
        self._bump("checkout_failures")

    def connection_checked_out(self, event: monitoring.ConnectionCheckedOutEvent) -> None:
        self._bump("checked_out")

    def connection_checked_in(self, event: monitoring.ConnectionCheckedInEvent) -> None:
        self._bump("checked_in")


class _SharedClient:
    """One owned client (on its own loop thread), shared by every lease with the same key."""

    def __init__(self, key: tuple[str, str], connection_string: str, options: dict[str, Any]) -> None:
        self.key = key
        self.masked_uri = mask_uri(connection_string)
        self.counters = PoolCounters()
        self.leases = 0
        listeners = [*options.pop("event_listeners", ()), self.counters]

        def create() -> ClientPort:
            from pymongo import AsyncMongoClient

            return PyMongoAsyncClientPort(AsyncMongoClient(connection_string, event_listeners=listeners, **options))

        self.runtime = ClientRuntime(create, name="mongodb-session-manager-pool")

    def pool_config(self) -> dict[str, Any]:
        pool_options = self.runtime.port.client.options.pool_options
        return {"maxPoolSize": pool_options.max_pool_size, "minPoolSize": pool_options.min_pool_size}

    async def server_version(self, timeout: float) -> str:
        async def build_info() -> Document:
            return await self.runtime.port.command("admin", {"buildInfo": 1})

        info = await asyncio.wait_for(self.runtime.run(build_info), timeout)
        return str(info.get("version", "unknown"))

    async def stats(self, timeout: float = 5.0) -> Document:
        """The factory's ``connected`` stats shape (or ``disconnected`` with the error)."""
        result: Document = {"status": "connected", "connection_string": self.masked_uri}
        try:
            result["server_version"] = await self.server_version(timeout)
        except Exception as error:  # reported, not raised: this feeds health endpoints
            result = {"status": "disconnected", "connection_string": self.masked_uri, "error": _describe(error)}
        result["pool_config"] = self.pool_config()
        result["pool_stats"] = self.counters.snapshot()
        return result

    async def ping(self, timeout: float) -> bool:
        async def ping() -> Document:
            return await self.runtime.port.command("admin", {"ping": 1})

        try:
            await asyncio.wait_for(self.runtime.run(ping), timeout)
        except Exception as error:
            logger.warning("MongoDB health check failed: %s", _describe(error))
            return False
        return True


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


class ClientLease:
    """A hold on a shared client; :meth:`release` (or :meth:`arelease`) gives it back, once."""

    def __init__(self, shared: _SharedClient) -> None:
        self._shared: _SharedClient | None = shared

    @property
    def shared(self) -> _SharedClient:
        if self._shared is None:
            raise RuntimeError("this client lease was released")
        return self._shared

    @property
    def runtime(self) -> ClientRuntime:
        return self.shared.runtime

    def _give_back(self) -> _SharedClient | None:
        with _lock:
            shared, self._shared = self._shared, None
            if shared is None:
                return None
            shared.leases -= 1
            if shared.leases > 0:
                return None
            _clients.pop(shared.key, None)
            return shared

    def release(self) -> None:
        last = self._give_back()
        if last is not None:
            last.runtime.close()

    async def arelease(self) -> None:
        last = self._give_back()
        if last is not None:
            await last.runtime.aclose()


_lock = threading.Lock()
_clients: dict[tuple[str, str], _SharedClient] = {}


def acquire(connection_string: str, client_kwargs: Mapping[str, Any]) -> ClientLease:
    """A lease on the shared client for this connection string and options (created if needed)."""
    uri = validate_connection_string(connection_string)
    options = client_options(uri, client_kwargs)
    key = (uri, repr(sorted(options.items(), key=lambda item: item[0].lower())))
    with _lock:
        shared = _clients.get(key)
        if shared is None or shared.runtime.closed:
            shared = _clients[key] = _SharedClient(key, uri, dict(options))
        shared.leases += 1
        return ClientLease(shared)


# The blocking client of the factory most recently built from a connection string: what the class API
# reports while it holds no client of its own (the earlier library's factories used this pool, and
# health checks written for it read the factory's client through it).
_factory_default: SyncClientSource | None = None


def set_factory_default(source: SyncClientSource | None) -> None:
    """Make ``source`` (a factory's blocking-client source) what :class:`MongoDBConnectionPool`
    reports when it was not initialized itself; None forgets it."""
    global _factory_default
    _factory_default = source


def forget_factory_default(source: SyncClientSource) -> None:
    """Forget ``source`` if it is the current factory default (its factory is closing)."""
    global _factory_default
    if _factory_default is source:
        _factory_default = None


class MongoDBConnectionPool:
    """The process-wide shared *blocking* ``pymongo.MongoClient`` (the earlier library's class API).

    A singleton: ``MongoDBConnectionPool()`` always returns the same instance, and the class methods
    act on its one client. :meth:`initialize` with the same connection string and options returns the
    existing client; with other ones it closes that client and creates a new one. Thread-safe.

    Factories do not use this client: each holds its own lease on an async client (see
    :func:`acquire`), so closing or re-initializing this pool never affects a factory. Until
    :meth:`initialize` is called, :meth:`get_client` and :meth:`get_pool_stats` report the blocking
    client of the factory most recently created from a connection string (as the earlier library's
    factories, which used this pool, made them do); :meth:`close` then only stops reporting it.
    """

    _instance: ClassVar[MongoDBConnectionPool | None] = None
    _lock: ClassVar[threading.RLock] = threading.RLock()
    _client: ClassVar[MongoClient[Any] | None] = None
    _settings: ClassVar[tuple[str, Document] | None] = None
    _options: ClassVar[Document] = {}

    def __new__(cls) -> MongoDBConnectionPool:
        with cls._lock:
            if cls._instance is None:
                cls._instance = super().__new__(cls)
            return cls._instance

    @classmethod
    def initialize(cls, connection_string: str, **client_kwargs: Any) -> MongoClient[Any]:
        """Create (or reuse) the shared client and check the server answers; returns the client.

        Options the caller does not set get the library's defaults (``maxPoolSize`` 100,
        ``minPoolSize`` 10, ``maxIdleTimeMS`` 300000, retryable reads and writes).

        Raises:
            InvalidInputError: bad connection string or client option (nothing is created).
            MongoDBSessionError: the server did not answer the first ping (no client is kept).
        """
        uri = validate_connection_string(connection_string)
        options = client_options(uri, client_kwargs)
        settings = (uri, dict(client_kwargs))
        with cls._lock:
            if cls._client is not None and cls._settings == settings:
                return cls._client
            cls._close_client()
            client: MongoClient[Any] = MongoClient(uri, **options)
            try:
                client.admin.command("ping")
            except PyMongoError as error:
                client.close()
                raise MongoDBSessionError(
                    f"could not connect to MongoDB at {mask_uri(uri)}: {_describe(error)}"
                ) from None
            cls._client, cls._settings, cls._options = client, settings, options
            logger.info("MongoDB connection pool initialized for %s", mask_uri(uri))
            return client

    @classmethod
    def get_client(cls) -> MongoClient[Any] | None:
        """The shared client (or the latest factory's, see the class notes), or None."""
        with cls._lock:
            if cls._client is not None:
                return cls._client
            source = _factory_default
        try:
            return None if source is None else source.get()
        except MongoDBSessionError:  # that factory was closed meanwhile
            return None

    @classmethod
    def close(cls) -> None:
        """Close the shared client (a factory's client is left open). Safe to call repeatedly."""
        with cls._lock:
            cls._close_client()
            set_factory_default(None)

    @classmethod
    def _close_client(cls) -> None:
        client, cls._client, cls._settings, cls._options = cls._client, None, None, {}
        if client is not None:
            client.close()

    @classmethod
    def get_pool_stats(cls) -> Document:
        """``{"status": "connected", "server_version": ..., "pool_config": {"maxPoolSize": ...,
        "minPoolSize": ...}}``; ``{"status": "not_initialized"}`` before :meth:`initialize`;
        ``{"status": "error", "error": ...}`` when the server does not answer (never raises)."""
        with cls._lock:
            client, options = cls._client, dict(cls._options)
        if client is None:
            client, options = cls.get_client(), {}
        if client is None:
            return {"status": "not_initialized"}
        try:
            version = client.server_info().get("version", "unknown")
        except Exception as error:  # reported, not raised: this feeds health endpoints
            return {"status": "error", "error": _describe(error)}
        pool_options = client.options.pool_options
        return {
            "status": "connected",
            "server_version": str(version),
            "pool_config": {
                "maxPoolSize": options.get("maxPoolSize", pool_options.max_pool_size),
                "minPoolSize": options.get("minPoolSize", pool_options.min_pool_size),
            },
        }

    @classmethod
    def health_check(cls, timeout_ms: int = 1000) -> bool:
        """Ping the server within ``timeout_ms``; never raises (False on any failure or when not initialized)."""
        client = cls.get_client()
        if client is None:
            return False
        try:
            with pymongo.timeout(timeout_ms / 1000):
                client.admin.command("ping")
        except Exception as error:
            logger.info("MongoDB health check failed: %s", _describe(error))
            return False
        return True
