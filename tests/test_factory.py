"""``MongoDBSessionManagerFactory`` and ``AsyncMongoDBSessionManagerFactory`` against a real server."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import AsyncMongoClient, MongoClient
from pymongo.errors import PyMongoError

from mongodb_session_manager import (
    AsyncMongoDBSessionManagerFactory,
    ClosedError,
    DatabaseError,
    MongoDBSessionManager,
    MongoDBSessionManagerFactory,
)
from mongodb_session_manager.testing import CommandRecorder, LocalMongoServer

EXTERNAL = {"status": "external_client", "message": "Using externally managed MongoDB client"}


@pytest.fixture
def other_db(mongodb_client: MongoClient[dict[str, Any]]) -> Iterator[str]:
    """A second unique database name, dropped after the test."""
    name = f"t_factory_other_{secrets.token_hex(6)}"
    yield name
    try:
        mongodb_client.drop_database(name)
    except PyMongoError as error:  # best effort
        print(f"could not drop test database {name!r}: {error}")


# -- connection reuse ------------------------------------------------------------------------------


def test_a_thousand_managers_open_no_connection_and_create_indexes_once(mongodb_uri: str, db_name: str) -> None:
    listener = CommandRecorder()
    # minPoolSize=0: the driver's background pool filling would otherwise add connections at its own pace.
    factory = MongoDBSessionManagerFactory(
        connection_string=mongodb_uri,
        database_name=db_name,
        collection_name="sessions",
        metadata_fields=["priority"],
        minPoolSize=0,
        event_listeners=[listener],
    )
    try:
        warm_up = factory.create_session_manager("warm-up")
        warm_up.update_metadata({"priority": "high"})
        warm_up.add_feedback({"rating": "up"})
        assert warm_up.get_metadata()["metadata"] == {"priority": "high"}

        # The listener passed as a client option reached the client.
        assert listener.count("update") >= 1
        assert listener.count("insert") >= 1
        index_builds = listener.namespaces_of("createIndexes")
        assert index_builds, "the first write should have created the indexes"
        assert all(count == 1 for count in index_builds.values()), index_builds
        created = factory.get_connection_stats()["pool_stats"]["created"]
        commands_before = len(listener.names)

        managers = [factory.create_session_manager(f"session-{index}") for index in range(1000)]
        assert len({id(manager) for manager in managers}) == 1000
        assert all(isinstance(manager, MongoDBSessionManager) for manager in managers)
        # Creating a manager is free: no command at all.
        assert len(listener.names) == commands_before

        for index, manager in enumerate(managers[::50]):
            manager.update_metadata({"priority": f"p{index}"})
            manager.add_feedback({"rating": index})
            assert manager.get_metadata()["metadata"] == {"priority": f"p{index}"}

        stats = factory.get_connection_stats()
        assert stats["pool_stats"]["created"] == created
        assert stats["pool_stats"]["checkout_failures"] == 0
        assert listener.namespaces_of("createIndexes") == index_builds
    finally:
        factory.close()


def test_factories_sharing_a_connection_string_share_the_client_and_its_indexes(mongodb_uri: str, db_name: str) -> None:
    listener = CommandRecorder()
    first = MongoDBSessionManagerFactory(mongodb_uri, db_name, "sessions", event_listeners=[listener], minPoolSize=0)
    second = MongoDBSessionManagerFactory(mongodb_uri, db_name, "sessions", event_listeners=[listener], minPoolSize=0)
    try:
        first.create_session_manager("a").add_feedback({"n": 1})
        builds = listener.namespaces_of("createIndexes")
        created = first.get_connection_stats()["pool_stats"]["created"]
        second.create_session_manager("b").add_feedback({"n": 2})
        assert listener.namespaces_of("createIndexes") == builds
        assert second.get_connection_stats()["pool_stats"]["created"] == created
        first.close()
        # The shared client stays open for the second factory.
        assert second.create_session_manager("b").get_feedbacks()[0]["n"] == 2
    finally:
        first.close()
        second.close()


def test_per_manager_overrides_land_in_the_right_namespace(
    mongodb_uri: str, db_name: str, other_db: str, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    factory = MongoDBSessionManagerFactory(
        connection_string=mongodb_uri, database_name=db_name, collection_name="sessions", metadata_fields=["status"]
    )
    try:
        default = factory.create_session_manager("s-default")
        other_database = factory.create_session_manager("s-db", database_name=other_db)
        other_collection = factory.create_session_manager("s-coll", collection_name="custom")
        other_fields = factory.create_session_manager(
            "s-fields", database_name=other_db, collection_name="custom", metadata_fields=["tier"]
        )
        default.update_metadata({"status": "a"})
        other_database.update_metadata({"status": "b"})
        other_collection.update_metadata({"status": "c"})
        other_fields.update_metadata({"tier": "gold"})
        other_fields.add_feedback({"rating": "up"})

        def ids(database: str, collection: str) -> set[str]:
            return {document["_id"] for document in mongodb_client[database][collection].find({}, {"_id": 1})}

        assert ids(db_name, "sessions") == {"s-default"}
        assert ids(db_name, "custom") == {"s-coll"}
        assert ids(other_db, "sessions") == {"s-db"}
        assert ids(other_db, "custom") == {"s-fields"}
        stored = mongodb_client[other_db]["custom"].find_one({"_id": "s-fields"})
        assert stored is not None
        assert stored["metadata"] == {"tier": "gold"}
        assert mongodb_client[other_db]["custom.feedback"].count_documents({"session_id": "s-fields"}) == 1

        def index_names(database: str, collection: str) -> set[str]:
            return {index["name"] for index in mongodb_client[database][collection].list_indexes()}

        # Factory default metadata fields where not overridden, the override where given.
        assert "metadata_status" in index_names(db_name, "sessions")
        assert "metadata_status" in index_names(other_db, "sessions")
        assert "metadata_tier" in index_names(other_db, "custom")
        assert "metadata_status" not in index_names(other_db, "custom")

        # Each manager reads its own namespace back.
        assert other_database.get_metadata()["metadata"] == {"status": "b"}
        assert factory.create_session_manager("s-db").get_metadata()["metadata"] == {}
        elsewhere = factory.create_session_manager("s-db", database_name=other_db)
        assert elsewhere.get_metadata()["metadata"] == {"status": "b"}
    finally:
        factory.close()


# -- borrowed clients ------------------------------------------------------------------------------


def test_borrowed_sync_mongo_client(mongodb_uri: str, db_name: str) -> None:
    client: MongoClient[dict[str, Any]] = MongoClient(mongodb_uri)
    try:
        factory = MongoDBSessionManagerFactory(client=client, database_name=db_name, collection_name="sessions")
        manager = factory.create_session_manager("sync-client")
        manager.update_metadata({"kind": "sync"})
        assert manager.get_metadata()["metadata"] == {"kind": "sync"}
        manager.add_feedback({"rating": "up"})
        assert [feedback["rating"] for feedback in manager.get_feedbacks()] == ["up"]
        assert factory.get_connection_stats() == EXTERNAL
        factory.close()
        factory.close()
        # Left open for its owner.
        assert client.admin.command("ping")["ok"] == 1
        assert client[db_name]["sessions"].find_one({"_id": "sync-client"})["metadata"] == {"kind": "sync"}
        with pytest.raises(ClosedError):
            factory.create_session_manager("again")
    finally:
        client.close()


@pytest.mark.anyio
async def test_borrowed_async_mongo_client(mongodb_uri: str, db_name: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    try:
        factory = MongoDBSessionManagerFactory(client=client, database_name=db_name, collection_name="sessions")
        manager = factory.create_session_manager("async-client")
        await manager.update_metadata_async({"kind": "async"})
        assert (await manager.get_metadata_async())["metadata"] == {"kind": "async"}
        await manager.delete_metadata_async(["kind"])
        assert (await manager.get_metadata_async())["metadata"] == {}
        assert factory.get_connection_stats() == EXTERNAL
        factory.close()
        assert (await client.admin.command("ping"))["ok"] == 1
        document = await client[db_name]["sessions"].find_one({"_id": "async-client"})
        assert document is not None
    finally:
        await client.close()


@pytest.mark.anyio
async def test_borrowed_async_mongo_client_with_the_async_factory(mongodb_uri: str, db_name: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    try:
        async with AsyncMongoDBSessionManagerFactory(client=client, database_name=db_name) as factory:
            manager = await factory.create_session_manager("async-factory", preload=True)
            await manager.add_feedback_async({"rating": "down"})
            assert [feedback["rating"] for feedback in await manager.get_feedbacks_async()] == ["down"]
            assert await factory.get_connection_stats() == EXTERNAL
        assert (await client.admin.command("ping"))["ok"] == 1
    finally:
        await client.close()


@pytest.mark.anyio
async def test_borrowed_motor_client(mongodb_uri: str, db_name: str) -> None:
    client: Any = AsyncIOMotorClient(mongodb_uri)
    try:
        factory = MongoDBSessionManagerFactory(client=client, database_name=db_name, collection_name="sessions")
        manager = factory.create_session_manager("motor-client")
        await manager.update_metadata_async({"kind": "motor", "nested": {"a": 1}})
        await manager.update_metadata_async({"nested": {"b": 2}})
        assert (await manager.get_metadata_async())["metadata"] == {"kind": "motor", "nested": {"a": 1, "b": 2}}
        await manager.add_feedback_async({"rating": "up"})
        assert len(await manager.get_feedbacks_async()) == 1
        assert factory.get_connection_stats() == EXTERNAL
        factory.close()
        assert (await client.admin.command("ping"))["ok"] == 1
        assert (await client[db_name]["sessions"].find_one({"_id": "motor-client"}))["metadata"]["kind"] == "motor"
    finally:
        client.close()


# -- lifecycle -------------------------------------------------------------------------------------


def test_close_is_idempotent_and_use_after_close_raises_closed_error(mongodb_uri: str, db_name: str) -> None:
    factory = MongoDBSessionManagerFactory(connection_string=mongodb_uri, database_name=db_name)
    manager = factory.create_session_manager("before-close")
    manager.update_metadata({"x": 1})
    factory.close()
    factory.close()
    with pytest.raises(ClosedError):
        factory.create_session_manager("after-close")
    with pytest.raises(ClosedError):
        factory.get_connection_stats()
    # The factory owned the only lease on its client: managers it made are closed with it.
    with pytest.raises(ClosedError):
        manager.get_metadata()
    assert issubclass(ClosedError, RuntimeError)


def test_factory_as_context_manager(mongodb_uri: str, db_name: str) -> None:
    with MongoDBSessionManagerFactory(connection_string=mongodb_uri, database_name=db_name) as factory:
        factory.create_session_manager("ctx").update_metadata({"ok": True})
        assert factory.create_session_manager("ctx").get_metadata()["metadata"] == {"ok": True}
    with pytest.raises(ClosedError):
        factory.create_session_manager("ctx")


def test_factory_needs_a_connection_string_or_a_client() -> None:
    with pytest.raises(ValueError, match="connection_string"):
        MongoDBSessionManagerFactory()
    with pytest.raises(TypeError):
        MongoDBSessionManagerFactory(client=object())


@pytest.mark.anyio
async def test_async_factory(mongodb_uri: str, db_name: str, mongodb_client: MongoClient[dict[str, Any]]) -> None:
    async with AsyncMongoDBSessionManagerFactory(
        connection_string=mongodb_uri, database_name=db_name, collection_name="sessions"
    ) as factory:
        manager = await factory.create_session_manager("preloaded", preload=True)
        # preload only reads: an unknown session is created by its first write, not by the preload.
        assert mongodb_client[db_name]["sessions"].find_one({"_id": "preloaded"}) is None
        await manager.update_metadata_async({"status": "active"})
        assert mongodb_client[db_name]["sessions"].find_one({"_id": "preloaded"}) is not None
        assert (await manager.get_metadata_async())["metadata"] == {"status": "active"}

        lazy = await factory.create_session_manager("lazy")
        assert mongodb_client[db_name]["sessions"].find_one({"_id": "lazy"}) is None
        assert (await lazy.get_metadata_async())["metadata"] == {}

        stats = await factory.get_connection_stats()
        assert stats["status"] == "connected"
        assert set(stats) == {"status", "connection_string", "server_version", "pool_config", "pool_stats"}
        assert stats["connection_string"] == mongodb_uri
    with pytest.raises(ClosedError):
        await factory.create_session_manager("after")
    with pytest.raises(ClosedError):
        await factory.get_connection_stats()
    await factory.close()  # idempotent


# -- credentials -----------------------------------------------------------------------------------

PASSWORD = "s3cretPass"  # a test user's password on a throwaway server
WRONG_PASSWORD = "wr0ngPassXyz"


def _exception_texts(error: BaseException) -> list[str]:
    texts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return texts


def test_credentials_never_leak(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with LocalMongoServer(auth=True, users={"user": PASSWORD}) as server:
        uri = f"mongodb://user:{PASSWORD}@127.0.0.1:{server.port}/?authSource=admin"
        factory = MongoDBSessionManagerFactory(connection_string=uri, database_name="creds", collection_name="sessions")
        try:
            manager = factory.create_session_manager("secret-session")
            manager.update_metadata({"k": "v"})
            assert manager.get_metadata()["metadata"] == {"k": "v"}
            manager.add_feedback({"rating": "up"})
            assert len(manager.get_feedbacks()) == 1
            stats = factory.get_connection_stats()
            assert stats["status"] == "connected"
            assert stats["connection_string"] == f"mongodb://user:***@127.0.0.1:{server.port}/?authSource=admin"
            exposed = [json.dumps(stats), repr(factory), repr(manager), str(manager)]
            manager.close()
        finally:
            factory.close()

        wrong = MongoDBSessionManagerFactory(
            connection_string=(
                f"mongodb://user:{WRONG_PASSWORD}@127.0.0.1:{server.port}/?authSource=admin&serverSelectionTimeoutMS=500"
            ),
            database_name="creds",
        )
        try:
            with pytest.raises(DatabaseError) as raised:  # authentication failed, the driver's error chained
                wrong.create_session_manager("secret-session").get_metadata()
            exposed += _exception_texts(raised.value)
            wrong_stats = wrong.get_connection_stats()
            assert wrong_stats["status"] == "disconnected"
            exposed += [json.dumps(wrong_stats), repr(wrong)]
        finally:
            wrong.close()

    exposed += [caplog.text, *(record.getMessage() for record in caplog.records)]
    assert caplog.records, "expected DEBUG records from the driver and the library"
    for text in exposed:
        assert PASSWORD not in text
        assert WRONG_PASSWORD not in text
