"""``MongoDBConnectionPool``: the process-wide shared blocking client (compat-api.md, pool section)."""

from __future__ import annotations

import contextlib
import gc
import socket
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pymongo import MongoClient
from support import with_options

from mongodb_session_manager import MongoDBConnectionPool, MongoDBSessionError, MongoDBSessionManagerFactory


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(autouse=True)
def _release_default_pool() -> Iterator[None]:
    MongoDBConnectionPool.close()
    yield
    MongoDBConnectionPool.close()


@contextlib.contextmanager
def closing_unreachable_pool() -> Iterator[None]:
    """Close the default pool at the end and collect a socket PyMongo may leak doing so.

    Closing a client cancels its monitor task; when that happens in the middle of a connection attempt to
    an unreachable server, PyMongo (4.x, ``_async_create_connection``) does not close the new socket on
    ``CancelledError``. That is the driver's, not this library's: collect it here, silently, so the warning
    does not surface in some later test.
    """
    try:
        yield
    finally:
        MongoDBConnectionPool.close()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


def pool_options(client: Any) -> Any:
    return client.options.pool_options


def test_lifecycle_initialize_get_client_stats_health_close(mongodb_uri: str) -> None:
    assert MongoDBConnectionPool.get_client() is None
    assert MongoDBConnectionPool.get_pool_stats() == {"status": "not_initialized"}
    assert MongoDBConnectionPool.health_check() is False

    client = MongoDBConnectionPool.initialize(mongodb_uri)
    assert isinstance(client, MongoClient)
    assert MongoDBConnectionPool.get_client() is client
    assert MongoDBConnectionPool() is MongoDBConnectionPool()  # a singleton, as the earlier library documented
    assert MongoDBConnectionPool.health_check() is True
    assert client["pool-test"]["c"].insert_one({"x": 1}).acknowledged  # a plain, usable sync client

    stats = MongoDBConnectionPool.get_pool_stats()
    assert set(stats) == {"status", "server_version", "pool_config"}
    assert stats["status"] == "connected"
    assert isinstance(stats["server_version"], str)
    assert stats["pool_config"] == {"maxPoolSize": 100, "minPoolSize": 10}

    # Initializing again with the same settings hands back the same shared client.
    assert MongoDBConnectionPool.initialize(mongodb_uri) is client

    MongoDBConnectionPool.close()
    assert MongoDBConnectionPool.get_client() is None
    assert MongoDBConnectionPool.get_pool_stats() == {"status": "not_initialized"}
    assert MongoDBConnectionPool.health_check() is False
    MongoDBConnectionPool.close()  # idempotent


def test_initialize_against_an_unreachable_server_raises_a_typed_error_and_keeps_nothing() -> None:
    with closing_unreachable_pool():
        with pytest.raises(MongoDBSessionError, match="could not connect"):
            MongoDBConnectionPool.initialize(f"mongodb://127.0.0.1:{free_port()}/?serverSelectionTimeoutMS=200")
        assert MongoDBConnectionPool.get_client() is None
        assert MongoDBConnectionPool.health_check() is False
        assert MongoDBConnectionPool.health_check(timeout_ms=50) is False
        assert MongoDBConnectionPool.get_pool_stats() == {"status": "not_initialized"}


def test_health_check_is_true_for_the_test_server(mongodb_uri: str) -> None:
    MongoDBConnectionPool.initialize(mongodb_uri)
    assert MongoDBConnectionPool.health_check() is True
    assert MongoDBConnectionPool.health_check(timeout_ms=5000) is True


def test_concurrent_initialize_from_16_threads_yields_one_client(mongodb_uri: str) -> None:
    barrier = threading.Barrier(16)

    def initialize(_: int) -> Any:
        barrier.wait()
        return MongoDBConnectionPool.initialize(mongodb_uri)

    with ThreadPoolExecutor(16) as pool:
        clients = list(pool.map(initialize, range(16)))

    assert len({id(client) for client in clients}) == 1
    assert MongoDBConnectionPool.get_client() is clients[0]
    assert MongoDBConnectionPool.health_check() is True
    MongoDBConnectionPool.close()
    assert MongoDBConnectionPool.get_client() is None


@pytest.mark.parametrize(
    ("uri_options", "kwargs", "expected_max"),
    [
        ("", {"maxPoolSize": 7}, 7),
        ("maxPoolSize=5", {}, 5),
        ("maxpoolsize=6", {}, 6),  # connection-string options are case-insensitive
        ("", {}, 100),
    ],
)
def test_client_defaults_apply_only_where_nothing_was_set(
    mongodb_uri: str, uri_options: str, kwargs: dict[str, Any], expected_max: int
) -> None:
    uri = with_options(mongodb_uri, uri_options) if uri_options else mongodb_uri
    client = MongoDBConnectionPool.initialize(uri, **kwargs)
    options = pool_options(client)
    assert options.max_pool_size == expected_max
    # The default minimum (10) is capped at a smaller maximum the caller chose.
    assert options.min_pool_size == min(10, expected_max)
    assert options.max_idle_time_seconds == 300
    assert client.options.retry_writes is True
    assert client.options.retry_reads is True
    assert MongoDBConnectionPool.get_pool_stats()["pool_config"] == {
        "maxPoolSize": expected_max,
        "minPoolSize": min(10, expected_max),
    }


def test_explicit_settings_win_over_defaults(mongodb_uri: str) -> None:
    client = MongoDBConnectionPool.initialize(
        with_options(mongodb_uri, "minPoolSize=2&retryWrites=false&maxIdleTimeMS=1000"), retryReads=False
    )
    options = pool_options(client)
    assert options.min_pool_size == 2
    assert options.max_pool_size == 100
    assert options.max_idle_time_seconds == 1
    assert client.options.retry_writes is False
    assert client.options.retry_reads is False


def test_different_settings_give_different_clients(mongodb_uri: str) -> None:
    first = MongoDBConnectionPool.initialize(mongodb_uri, maxPoolSize=7)
    second = MongoDBConnectionPool.initialize(mongodb_uri, maxPoolSize=8)
    assert first is not second
    assert MongoDBConnectionPool.get_client() is second  # the first one was closed and replaced
    assert pool_options(second).max_pool_size == 8
    assert MongoDBConnectionPool.health_check() is True


def test_closing_the_pool_does_not_close_a_client_a_factory_uses(mongodb_uri: str, db_name: str) -> None:
    MongoDBConnectionPool.initialize(mongodb_uri)
    factory = MongoDBSessionManagerFactory(connection_string=mongodb_uri, database_name=db_name)
    try:
        manager = factory.create_session_manager("pool-and-factory")
        manager.update_metadata({"step": 1})
        MongoDBConnectionPool.close()
        assert MongoDBConnectionPool.get_client() is None
        manager.update_metadata({"step": 2})
        assert manager.get_metadata()["metadata"] == {"step": 2}
        assert factory.get_connection_stats()["status"] == "connected"
    finally:
        factory.close()


def test_a_failed_initialize_masks_the_password() -> None:
    with closing_unreachable_pool(), pytest.raises(MongoDBSessionError) as raised:
        MongoDBConnectionPool.initialize(
            f"mongodb://someone:pa55word@127.0.0.1:{free_port()}/?authSource=admin&serverSelectionTimeoutMS=200"
        )
    assert "pa55word" not in str(raised.value)
    assert "mongodb://someone:***@127.0.0.1:" in str(raised.value)


def test_unknown_client_options_are_refused_before_connecting(mongodb_uri: str) -> None:
    with pytest.raises(MongoDBSessionError, match="maxPoolSise"):
        MongoDBConnectionPool.initialize(mongodb_uri, maxPoolSise=5)
    assert MongoDBConnectionPool.get_client() is None


def test_the_class_api_reports_the_latest_factory_client_until_initialized(mongodb_uri: str, db_name: str) -> None:
    # The earlier library's factories used this pool; health checks written for it keep working.
    factory = MongoDBSessionManagerFactory(connection_string=mongodb_uri, database_name=db_name)
    try:
        client = MongoDBConnectionPool.get_client()
        assert isinstance(client, MongoClient)
        assert client is factory.create_session_manager("x").session_repository.client
        stats = MongoDBConnectionPool.get_pool_stats()
        assert stats["status"] == "connected"
        assert stats["pool_config"] == {"maxPoolSize": 100, "minPoolSize": 10}
        assert MongoDBConnectionPool.health_check() is True

        MongoDBConnectionPool.close()  # stops reporting it, leaves the factory working
        assert MongoDBConnectionPool.get_client() is None
        factory.create_session_manager("still-works").update_metadata({"ok": True})
    finally:
        factory.close()

    other = MongoDBSessionManagerFactory(connection_string=mongodb_uri, database_name=db_name)
    other.close()
    assert MongoDBConnectionPool.get_client() is None
    assert MongoDBConnectionPool.get_pool_stats() == {"status": "not_initialized"}
