"""``MongoDBConnectionPool``: process-wide shared clients created from connection strings.

There is one client per distinct connection string and options. Each factory built from a
connection string holds a *lease* on it; the client is closed when its last lease is released, so
two factories with different connection strings live side by side and neither closes the other's
client. The class-level API (``initialize``/``get_client``/``close``/...) manages one default lease,
as the earlier sync library did.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from typing import Any

from pymongo import monitoring

from ._clients import client_options, mask_uri, validate_connection_string
from ._driver import ClientPort, PyMongoAsyncClientPort
from ._runtime import ClientRuntime, running_loop
from ._types import Document

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


class MongoDBConnectionPool:
    """The process-wide default shared client (the earlier library's class-level API).

    Thread-safe. Factories do not use the default lease: each holds its own, so closing this pool
    never closes a client a factory still uses.
    """

    _default: ClientLease | None = None
    _default_lock = threading.Lock()

    @classmethod
    def initialize(cls, connection_string: str, **client_kwargs: Any) -> Any:
        """Create (or reuse) the default shared client and return it (a ``pymongo.AsyncMongoClient``).

        Calling it again with other settings replaces the default; the previous client stays open
        while a factory still uses it.
        """
        lease = acquire(connection_string, client_kwargs)
        with cls._default_lock:
            previous, cls._default = cls._default, lease
        if previous is not None:
            previous.release()
        return lease.runtime.port.client

    @classmethod
    def get_client(cls) -> Any:
        """The default shared client, or None when not initialized."""
        with cls._default_lock:
            lease = cls._default
        return None if lease is None else lease.runtime.port.client

    @classmethod
    def close(cls) -> None:
        """Release the default client (closed when no factory uses it). Safe to call repeatedly."""
        with cls._default_lock:
            lease, cls._default = cls._default, None
        if lease is not None:
            lease.release()

    @classmethod
    def get_pool_stats(cls) -> Document:
        """Connection string (masked), pool configuration and live pool counters of the default client."""
        with cls._default_lock:
            lease = cls._default
        if lease is None:
            return {"status": "not_initialized"}
        shared = lease.shared
        return {
            "status": "initialized",
            "connection_string": shared.masked_uri,
            "pool_config": shared.pool_config(),
            "pool_stats": shared.counters.snapshot(),
        }

    @classmethod
    def health_check(cls, timeout_ms: int = 1000) -> bool:
        """Ping the server within ``timeout_ms``; never raises (False on any failure)."""
        try:
            with cls._default_lock:
                lease = cls._default
            if lease is None:
                return False
            if running_loop() is not None and running_loop() is lease.runtime.port.home_loop():
                return False
            return lease.runtime.run_blocking(lease.shared.ping, timeout_ms / 1000)
        except Exception as error:
            logger.warning("MongoDB health check failed: %s", _describe(error))
            return False
