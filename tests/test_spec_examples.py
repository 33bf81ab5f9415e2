"""Every example of the factory API's usage documentation that needs no LLM, run as written.

Substitutions, and nothing else: ``mongodb://localhost:27017/`` becomes the test server's URI (``uri``),
database names become unique per test (``db_name``, ``other_db``), ``print`` output is captured, and the
audit hooks additionally record what they were called with. Examples that build a
``strands.Agent(model="claude-3-sonnet")`` need a real model and are left out; for the "with-metadata"
endpoint only its agent lines are left out.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from pymongo import MongoClient
from pymongo.errors import PyMongoError
from support import with_options

import mongodb_session_manager.mongodb_session_factory as factory_module
from mongodb_session_manager import (
    ClosedError,
    MongoDBSessionManager,
    MongoDBSessionManagerFactory,
    close_global_factory,
    get_global_factory,
    initialize_global_factory,
)

logger = logging.getLogger("spec_examples")

# The documented FastAPI shutdown example keeps the factory in a module-level variable.
factory: MongoDBSessionManagerFactory | None = None

POOL_COUNTERS = {"open", "in_use", "waiting", "created", "closed", "checkout_failures"}
EXTERNAL = {"status": "external_client", "message": "Using externally managed MongoDB client"}

# The documented FastAPI examples use the deprecated (still supported) `@app.on_event`.
on_event_examples = pytest.mark.filterwarnings("ignore:\\s*on_event is deprecated:DeprecationWarning")


@pytest.fixture
def uri(mongodb_uri: str) -> str:
    return mongodb_uri


@pytest.fixture
def other_db(mongodb_client: MongoClient[dict[str, Any]]) -> Iterator[str]:
    name = f"t_spec_other_{secrets.token_hex(6)}"
    yield name
    try:
        mongodb_client.drop_database(name)
    except PyMongoError as error:  # best effort
        print(f"could not drop test database {name!r}: {error}")


@pytest.fixture(autouse=True)
def _no_global_factory_left() -> Iterator[None]:
    global factory
    close_global_factory()
    yield
    close_global_factory()
    if factory is not None:
        factory.close()
        factory = None


# -- Constructor -----------------------------------------------------------------------------------


def test_constructor_with_connection_string(uri: str, db_name: str) -> None:
    # Initialize with connection string (factory owns connection)
    factory = MongoDBSessionManagerFactory(connection_string=uri, database_name=db_name, collection_name="sessions")
    try:
        assert factory._owns_client is True
        manager = factory.create_session_manager("user-1")
        manager.update_metadata({"ok": True})
        assert manager.get_metadata()["metadata"] == {"ok": True}
    finally:
        factory.close()


def test_constructor_with_custom_pool_settings(uri: str, db_name: str) -> None:
    # Initialize with custom pool settings
    factory = MongoDBSessionManagerFactory(
        connection_string=uri,
        database_name=db_name,
        collection_name="sessions",
        maxPoolSize=200,  # Passed to connection pool
        minPoolSize=20,
        retryWrites=True,
    )
    try:
        stats = factory.get_connection_stats()
        assert stats["pool_config"] == {"maxPoolSize": 200, "minPoolSize": 20}
        manager = factory.create_session_manager("user-1")
        manager.update_metadata({"ok": True})
        assert manager.get_metadata()["metadata"] == {"ok": True}
    finally:
        factory.close()


def test_constructor_with_existing_client(uri: str, db_name: str) -> None:
    # Initialize with existing client (factory borrows connection)
    client = MongoClient(uri, maxPoolSize=100)
    try:
        factory = MongoDBSessionManagerFactory(
            client=client,  # Borrowed client
            database_name=db_name,
            collection_name="sessions",
        )
        assert factory._owns_client is False
        manager = factory.create_session_manager("user-1")
        manager.update_metadata({"ok": True})
        assert client[db_name]["sessions"].find_one({"_id": "user-1"})["metadata"] == {"ok": True}
        factory.close()
        assert client.admin.command("ping")["ok"] == 1
    finally:
        client.close()


def test_constructor_with_metadata_field_indexing(
    uri: str, db_name: str, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    # Initialize with metadata field indexing
    factory = MongoDBSessionManagerFactory(
        connection_string=uri,
        database_name=db_name,
        collection_name="sessions",
        metadata_fields=["priority", "status", "category"],
    )
    try:
        factory.create_session_manager("user-1").update_metadata({"priority": "high", "status": "open"})
        indexed = {
            key
            for index in mongodb_client[db_name]["sessions"].list_indexes()
            for key in index["key"]
            if key.startswith("metadata.")
        }
        assert indexed == {"metadata.priority", "metadata.status", "metadata.category"}
        found = mongodb_client[db_name]["sessions"].find_one({"metadata.priority": "high"})
        assert found is not None
        assert found["_id"] == "user-1"
    finally:
        factory.close()


# -- create_session_manager ------------------------------------------------------------------------


def test_create_session_manager_examples(
    uri: str,
    db_name: str,
    other_db: str,
    mongodb_client: MongoClient[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="spec_examples")
    factory = MongoDBSessionManagerFactory(connection_string=uri, database_name=db_name, collection_name="sessions")
    seen: list[tuple[str, str, dict[str, Any]]] = []
    try:
        # Create session manager with factory defaults
        manager1 = factory.create_session_manager("user-123")

        # Create session manager with overridden database
        manager2 = factory.create_session_manager(
            session_id="user-456",
            database_name=other_db,  # Override factory default
        )

        # Create session manager with hooks
        def audit_hook(original_func, action, session_id, **kwargs):  # type: ignore[no-untyped-def]
            seen.append((action, session_id, dict(kwargs)))  # (added by the test)
            logger.info(f"Metadata {action} on {session_id}")
            if action == "update":
                return original_func(kwargs["metadata"])
            elif action == "delete":
                return original_func(kwargs["keys"])
            else:
                return original_func()

        manager3 = factory.create_session_manager(
            session_id="user-789",
            metadata_hook=audit_hook,  # Hook passed via kwargs
        )

        # Create many managers efficiently
        session_ids = ["user-1", "user-2", "user-3", "user-4", "user-5"]
        managers = [factory.create_session_manager(sid) for sid in session_ids]
        # All managers share the same connection - no overhead!

        assert all(isinstance(manager, MongoDBSessionManager) for manager in [manager1, manager2, manager3, *managers])
        assert [manager.session_id for manager in managers] == session_ids
        runtimes = {id(manager.repository.runtime) for manager in [manager1, manager2, manager3, *managers]}
        assert len(runtimes) == 1

        manager1.update_metadata({"who": 1})
        manager2.update_metadata({"who": 2})
        assert mongodb_client[db_name]["sessions"].find_one({"_id": "user-123"})["metadata"] == {"who": 1}
        assert mongodb_client[other_db]["sessions"].find_one({"_id": "user-456"})["metadata"] == {"who": 2}
        assert mongodb_client[db_name]["sessions"].find_one({"_id": "user-456"}) is None

        manager3.update_metadata({"priority": "high", "status": "open"})
        assert manager3.get_metadata()["metadata"] == {"priority": "high", "status": "open"}
        manager3.delete_metadata(["status"])
        assert manager3.get_metadata()["metadata"] == {"priority": "high"}
        assert seen == [
            ("update", "user-789", {"metadata": {"priority": "high", "status": "open"}}),
            ("get", "user-789", {}),
            ("delete", "user-789", {"keys": ["status"]}),
            ("get", "user-789", {}),
        ]
        messages = [record.getMessage() for record in caplog.records if record.name == "spec_examples"]
        assert messages == [
            "Metadata update on user-789",
            "Metadata get on user-789",
            "Metadata delete on user-789",
            "Metadata get on user-789",
        ]
        # Managers without the hook are not audited.
        manager1.get_metadata()
        assert len(seen) == 4
    finally:
        factory.close()


@pytest.mark.anyio
async def test_audit_hook_with_the_awaitable_api(uri: str, db_name: str) -> None:
    # The same sync hook, unchanged, behind the `*_async` twins.
    seen: list[tuple[str, str, dict[str, Any]]] = []

    def audit_hook(original_func, action, session_id, **kwargs):  # type: ignore[no-untyped-def]
        seen.append((action, session_id, dict(kwargs)))
        if action == "update":
            return original_func(kwargs["metadata"])
        elif action == "delete":
            return original_func(kwargs["keys"])
        else:
            return original_func()

    factory = MongoDBSessionManagerFactory(connection_string=uri, database_name=db_name)
    try:
        manager = factory.create_session_manager("user-789", metadata_hook=audit_hook)
        await manager.update_metadata_async({"a": 1, "b": 2})
        await manager.delete_metadata_async(["a"])
        assert (await manager.get_metadata_async())["metadata"] == {"b": 2}
        assert [action for action, _, _ in seen] == ["update", "delete", "get"]
        assert seen[1] == ("delete", "user-789", {"keys": ["a"]})
    finally:
        factory.close()


# -- get_connection_stats --------------------------------------------------------------------------


def test_get_connection_stats_when_the_factory_owns_the_connection(
    uri: str, db_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    factory = MongoDBSessionManagerFactory(connection_string=uri, database_name=db_name)
    try:
        # Check connection health
        stats = factory.get_connection_stats()

        if stats["status"] == "connected":
            print(f"MongoDB version: {stats['server_version']}")
            print(f"Pool size: {stats['pool_config']['maxPoolSize']}")
        elif stats["status"] == "external_client":
            print("Using external MongoDB client")

        lines = capsys.readouterr().out.splitlines()
        assert lines[0].startswith("MongoDB version: ")
        assert lines[0] != "MongoDB version: "
        assert lines[1:] == ["Pool size: 100"]

        assert set(stats) == {"status", "connection_string", "server_version", "pool_config", "pool_stats"}
        assert stats["status"] == "connected"
        assert stats["connection_string"] == uri
        assert isinstance(stats["server_version"], str)
        assert stats["server_version"].split(".")[0].isdigit()
        assert stats["pool_config"] == {"maxPoolSize": 100, "minPoolSize": 10}
        assert set(stats["pool_stats"]) == POOL_COUNTERS
        assert all(isinstance(value, int) and value >= 0 for value in stats["pool_stats"].values())
    finally:
        factory.close()


def test_get_connection_stats_with_an_external_client(uri: str, capsys: pytest.CaptureFixture[str]) -> None:
    client = MongoClient(uri)
    try:
        factory = MongoDBSessionManagerFactory(client=client)
        stats = factory.get_connection_stats()

        if stats["status"] == "connected":
            print(f"MongoDB version: {stats['server_version']}")
            print(f"Pool size: {stats['pool_config']['maxPoolSize']}")
        elif stats["status"] == "external_client":
            print("Using external MongoDB client")

        assert capsys.readouterr().out == "Using external MongoDB client\n"
        assert stats == EXTERNAL
        factory.close()
    finally:
        client.close()


def test_health_check_endpoint(uri: str, db_name: str) -> None:
    factory = MongoDBSessionManagerFactory(connection_string=uri, database_name=db_name)
    try:
        # Health check endpoint
        app = FastAPI()

        @app.get("/health/factory")
        async def factory_health():  # type: ignore[no-untyped-def]
            return factory.get_connection_stats()

        with TestClient(app) as http:
            response = http.get("/health/factory")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "connected"
        assert body["connection_string"] == uri
        assert body["pool_config"] == {"maxPoolSize": 100, "minPoolSize": 10}
        assert set(body["pool_stats"]) == POOL_COUNTERS
    finally:
        factory.close()


# -- close -----------------------------------------------------------------------------------------


def test_close_factory_owns_connection(uri: str) -> None:
    # Factory owns connection
    factory = MongoDBSessionManagerFactory(connection_string=uri)
    # ... use factory ...
    factory.create_session_manager("user-1").get_metadata()
    factory.close()  # Closes connection pool

    with pytest.raises(ClosedError):
        factory.create_session_manager("user-1")
    factory.close()  # Safe to call multiple times


def test_close_factory_borrows_connection(uri: str, db_name: str) -> None:
    # Factory borrows connection
    client = MongoClient(uri)
    factory = MongoDBSessionManagerFactory(client=client)
    # ... use factory ...
    factory.create_session_manager("user-1", database_name=db_name).update_metadata({"a": 1})
    factory.close()  # Does NOT close client
    # (added by the test) the client is still usable after factory.close()
    assert client.admin.command("ping")["ok"] == 1
    assert client[db_name]["collection_name"].find_one({"_id": "user-1"})["metadata"] == {"a": 1}
    client.close()  # You must close it


@on_event_examples
def test_close_in_fastapi_shutdown(uri: str) -> None:
    # In FastAPI shutdown
    app = FastAPI()
    global factory
    factory = None

    @app.on_event("startup")
    async def startup():  # type: ignore[no-untyped-def]
        global factory
        factory = MongoDBSessionManagerFactory(connection_string=uri)

    @app.on_event("shutdown")
    async def shutdown():  # type: ignore[no-untyped-def]
        if factory:
            factory.close()

    with TestClient(app):
        started = factory
        assert isinstance(started, MongoDBSessionManagerFactory)
        assert started.get_connection_stats()["status"] == "connected"
    with pytest.raises(ClosedError):
        started.create_session_manager("after-shutdown")


# -- global factory functions ----------------------------------------------------------------------


def test_global_factory_lifecycle(uri: str, db_name: str) -> None:
    with pytest.raises(RuntimeError, match="initialize_global_factory"):
        get_global_factory()

    first = initialize_global_factory(
        connection_string=uri,
        database_name=db_name,
        collection_name="sessions",
        maxPoolSize=100,
        minPoolSize=10,
    )
    assert get_global_factory() is first
    assert first.collection_name == "sessions"
    first.create_session_manager("g-1").update_metadata({"n": 1})

    # Initializing again closes the previous factory.
    second = initialize_global_factory(connection_string=uri, database_name=db_name, metadata_fields=["priority"])
    assert second is not first
    assert get_global_factory() is second
    assert second.collection_name == "virtualagent_sessions"  # the documented default
    with pytest.raises(ClosedError):
        first.create_session_manager("g-1")
    manager = second.create_session_manager("g-2")
    manager.update_metadata({"priority": "low"})
    assert manager.get_metadata()["metadata"] == {"priority": "low"}

    close_global_factory()
    with pytest.raises(ClosedError):
        second.create_session_manager("g-2")
    with pytest.raises(RuntimeError):
        get_global_factory()
    close_global_factory()  # safe when there is none


@on_event_examples
def test_initialize_global_factory_examples(uri: str, db_name: str, capsys: pytest.CaptureFixture[str]) -> None:
    app = FastAPI()

    @app.on_event("startup")
    async def startup_event():  # type: ignore[no-untyped-def]
        """Initialize global factory on startup"""
        initialize_global_factory(
            connection_string=uri,
            database_name=db_name,
            collection_name="sessions",
            maxPoolSize=100,
            minPoolSize=10,
        )
        print("Global factory initialized")

    @app.on_event("shutdown")
    async def shutdown_event():  # type: ignore[no-untyped-def]
        """Close global factory on shutdown"""
        close_global_factory()
        print("Global factory closed")

    @app.post("/chat/{session_id}")
    async def chat(session_id: str, message: str):  # type: ignore[no-untyped-def]
        try:
            # Get global factory
            factory = get_global_factory()

            # Create session manager for this request
            manager = factory.create_session_manager(session_id)

            # Use the manager
            # ... process chat message ...
            manager.update_metadata({"last_message": message})  # (added by the test)

            return {"response": "..."}

        except RuntimeError as e:
            # Factory not initialized
            raise HTTPException(status_code=500, detail=str(e)) from e

    with TestClient(app) as http:
        response = http.post("/chat/user-1", params={"message": "hello"})
        assert response.status_code == 200
        assert response.json() == {"response": "..."}
        stored = get_global_factory().create_session_manager("user-1").get_metadata()["metadata"]
        assert stored == {"last_message": "hello"}
        assert get_global_factory().collection_name == "sessions"
    assert capsys.readouterr().out.splitlines() == ["Global factory initialized", "Global factory closed"]

    # The same endpoint when the factory is not initialized.
    with TestClient(app, raise_server_exceptions=False) as http:
        close_global_factory()
        response = http.post("/chat/user-1", params={"message": "hello"})
    assert response.status_code == 500
    assert "initialize_global_factory" in response.json()["detail"]


@on_event_examples
def test_initialize_global_factory_with_metadata_fields(
    uri: str, db_name: str, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    app = FastAPI()

    # With metadata fields
    @app.on_event("startup")
    async def startup_event():  # type: ignore[no-untyped-def]
        initialize_global_factory(
            connection_string=uri,
            database_name=db_name,
            metadata_fields=["priority", "status"],
        )

    with TestClient(app):
        get_global_factory().create_session_manager("user-1").update_metadata({"priority": "high"})
    indexes = {index["name"] for index in mongodb_client[db_name]["virtualagent_sessions"].list_indexes()}
    assert {"metadata_priority", "metadata_status"} <= indexes


# -- Complete FastAPI example (the endpoints that need no LLM) --------------------------------------


@on_event_examples
def test_complete_fastapi_example(uri: str, db_name: str, capsys: pytest.CaptureFixture[str]) -> None:
    app = FastAPI()

    # Startup: Initialize global factory
    @app.on_event("startup")
    async def startup_event():  # type: ignore[no-untyped-def]
        initialize_global_factory(
            connection_string=uri,
            database_name=db_name,
            collection_name="sessions",
            metadata_fields=["priority", "status"],
            maxPoolSize=100,
            minPoolSize=10,
            retryWrites=True,
        )
        print("Global factory initialized")

    # Shutdown: Close factory
    @app.on_event("shutdown")
    async def shutdown_event():  # type: ignore[no-untyped-def]
        close_global_factory()
        print("Global factory closed")

    # Health check endpoint
    @app.get("/health")
    async def health_check():  # type: ignore[no-untyped-def]
        try:
            factory = get_global_factory()
            stats = factory.get_connection_stats()
            return {"status": "healthy", "mongodb": stats}
        except Exception as e:
            return {"status": "unhealthy", "error": str(e)}

    # Endpoint with feedback
    @app.post("/feedback/{session_id}")
    async def add_feedback(session_id: str, rating: str, comment: str = ""):  # type: ignore[no-untyped-def]
        factory = get_global_factory()
        manager = factory.create_session_manager(session_id)

        manager.add_feedback({"rating": rating, "comment": comment})

        manager.close()

        return {"status": "success"}

    with TestClient(app) as http:
        health = http.get("/health").json()
        assert health["status"] == "healthy"
        assert health["mongodb"]["status"] == "connected"
        assert health["mongodb"]["pool_config"] == {"maxPoolSize": 100, "minPoolSize": 10}

        assert http.post("/feedback/user-1", params={"rating": "up", "comment": "great"}).json() == {
            "status": "success"
        }
        assert http.post("/feedback/user-1", params={"rating": "down"}).json() == {"status": "success"}

        feedbacks = get_global_factory().create_session_manager("user-1").get_feedbacks()
        assert [(f["rating"], f["comment"]) for f in feedbacks] == [("up", "great"), ("down", "")]
        assert all(isinstance(f["created_at"], datetime) for f in feedbacks)

    assert capsys.readouterr().out.splitlines() == ["Global factory initialized", "Global factory closed"]
    # After shutdown the health endpoint's own error branch.
    with TestClient(app) as http:
        close_global_factory()
        unhealthy = http.get("/health").json()
    assert unhealthy["status"] == "unhealthy"
    assert "initialize_global_factory" in unhealthy["error"]


def test_with_metadata_endpoint_body_without_the_agent(uri: str, db_name: str) -> None:
    initialize_global_factory(connection_string=uri, database_name=db_name, collection_name="sessions")
    session_id, priority = "user-1", "high"

    factory = get_global_factory()
    manager = factory.create_session_manager(session_id)

    # Set metadata
    manager.update_metadata({"priority": priority, "last_message_at": datetime.now().isoformat()})

    # (agent lines left out: Agent(model="claude-3-sonnet", ...), initialize, agent(message), sync_agent)

    # Update status
    manager.update_metadata({"status": "completed"})

    manager.close()

    result = {
        "session_id": session_id,
        "response": "(no agent)",
        "metadata": manager.get_metadata(),
    }
    metadata = result["metadata"]["metadata"]
    assert metadata["priority"] == "high"
    assert metadata["status"] == "completed"
    assert datetime.fromisoformat(metadata["last_message_at"]) <= datetime.now()


# -- Performance comparison ------------------------------------------------------------------------


def test_without_factory_example(uri: str, db_name: str) -> None:
    session_id = "user-1"
    # Creates NEW connection every request (10-50ms overhead)
    manager = MongoDBSessionManager(session_id=session_id, connection_string=uri, database_name=db_name)
    # ... process ...
    manager.update_metadata({"n": 1})  # (added by the test)
    assert manager.get_metadata()["metadata"] == {"n": 1}
    manager.close()  # Closes connection
    with pytest.raises(ClosedError):
        manager.get_metadata()


def test_with_factory_example(uri: str, db_name: str) -> None:
    initialize_global_factory(connection_string=uri, database_name=db_name)
    session_id = "user-1"

    factory = get_global_factory()
    # Creates manager instantly (~0ms overhead)
    manager = factory.create_session_manager(session_id)
    # ... process ...
    manager.update_metadata({"n": 1})  # (added by the test)
    manager.close()  # Doesn't close shared connection

    assert get_global_factory().create_session_manager(session_id).get_metadata()["metadata"] == {"n": 1}
    assert get_global_factory().get_connection_stats()["status"] == "connected"


# -- Advanced patterns -----------------------------------------------------------------------------


def test_multiple_factories_for_different_databases(uri: str, db_name: str, other_db: str) -> None:
    # Two different connection strings to the same test server stand in for the two deployments.
    main_uri = with_options(uri, "appname=main")
    analytics_uri = with_options(uri, "appname=analytics")

    # Factory for main database
    main_factory = MongoDBSessionManagerFactory(
        connection_string=main_uri, database_name=db_name, collection_name="sessions"
    )

    # Factory for analytics database
    analytics_factory = MongoDBSessionManagerFactory(
        connection_string=analytics_uri, database_name=other_db, collection_name="sessions"
    )

    try:
        # Use appropriate factory
        main_manager = main_factory.create_session_manager("user-123")
        analytics_manager = analytics_factory.create_session_manager("user-123")

        main_manager.update_metadata({"db": "main"})
        analytics_manager.update_metadata({"db": "analytics"})
        assert main_manager.get_metadata()["metadata"] == {"db": "main"}
        assert analytics_manager.get_metadata()["metadata"] == {"db": "analytics"}
        assert main_factory.get_connection_stats()["connection_string"] == main_uri
        assert analytics_factory.get_connection_stats()["connection_string"] == analytics_uri
        assert main_manager.repository.runtime is not analytics_manager.repository.runtime

        # Closing one leaves the other working.
        main_factory.close()
        with pytest.raises(ClosedError):
            main_manager.get_metadata()
        assert analytics_manager.get_metadata()["metadata"] == {"db": "analytics"}
        assert analytics_factory.create_session_manager("user-456").get_metadata()["metadata"] == {}
        assert analytics_factory.get_connection_stats()["status"] == "connected"
    finally:
        main_factory.close()
        analytics_factory.close()


def test_factory_with_custom_hooks(uri: str, db_name: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="spec_examples")

    def create_audit_metadata_hook():  # type: ignore[no-untyped-def]
        """Factory function for metadata hooks"""

        def hook(original_func, action, session_id, **kwargs):  # type: ignore[no-untyped-def]
            logger.info(f"[AUDIT] {action} on {session_id}")
            if action == "update":
                return original_func(kwargs["metadata"])
            elif action == "delete":
                return original_func(kwargs["keys"])
            else:
                return original_func()

        return hook

    # Initialize factory
    factory = MongoDBSessionManagerFactory(connection_string=uri, database_name=db_name)
    try:
        # Create managers with hooks
        manager = factory.create_session_manager(session_id="user-123", metadata_hook=create_audit_metadata_hook())

        manager.update_metadata({"a": 1, "b": 2})
        manager.delete_metadata(["a"])
        assert manager.get_metadata()["metadata"] == {"b": 2}
        assert [record.getMessage() for record in caplog.records if record.name == "spec_examples"] == [
            "[AUDIT] update on user-123",
            "[AUDIT] delete on user-123",
            "[AUDIT] get on user-123",
        ]
    finally:
        factory.close()


def test_module_path_named_by_the_spec() -> None:
    assert factory_module.MongoDBSessionManagerFactory is MongoDBSessionManagerFactory
    assert factory_module.initialize_global_factory is initialize_global_factory
