"""``MongoDBStorage``: Strands' ``Storage`` protocol on MongoDB, against a real wire-protocol server.

Protocol tests run with every client kind (owned via a connection string, borrowed
``AsyncMongoClient``, Motor and sync PyMongo). Stored documents and GridFS files are inspected with
a separate plain ``pymongo.MongoClient``. The Strands acceptance test persists a
``SnapshotSessionManager`` agent, restores and continues it in a fresh process
(``tests/scripts/storage_restore.py``), and restores its immutable checkpoints.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import AsyncMongoClient, MongoClient
from pymongo.database import Database
from strands import Agent
from strands.session import SnapshotSessionManager
from strands.storage import InMemoryStorage, Storage
from strands.storage.search.keyword import KeywordSearchStrategy
from strands.storage.storage import StorageSearchResult, _normalize_key, _normalize_prefix
from strands.types.exceptions import StorageError
from support import add

from mongodb_session_manager import MongoDBSessionManagerFactory
from mongodb_session_manager._gridfs import gridfs_bucket
from mongodb_session_manager.scripted_model import ScriptedModel, tool_call
from mongodb_session_manager.storage import MongoDBStorage, normalize_key, normalize_prefix
from mongodb_session_manager.testing import CommandRecorder

pytestmark = pytest.mark.anyio

COLLECTION = "kv"
FILES = COLLECTION + ".gridfs.files"
CHUNKS = COLLECTION + ".gridfs.chunks"
MiB = 1024 * 1024
SCRIPTS = Path(__file__).parent / "scripts"

Raw = Database[dict[str, Any]]


# -- fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture(params=["owned", "pymongo-async", "motor", "pymongo-sync"])
def client_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def borrowed_client(client_kind: str, mongodb_uri: str) -> AsyncIterator[Any]:
    """The client lent to the storage (None when the storage gets its own from the connection string)."""
    if client_kind == "owned":
        yield None
    elif client_kind == "pymongo-async":
        async_client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
        try:
            yield async_client
        finally:
            await async_client.close()
    elif client_kind == "motor":
        motor_client: Any = AsyncIOMotorClient(mongodb_uri)
        try:
            yield motor_client
        finally:
            motor_client.close()
    else:
        sync_client: MongoClient[dict[str, Any]] = MongoClient(mongodb_uri)
        try:
            yield sync_client
        finally:
            sync_client.close()


def make_storage(uri: str, db_name: str, client: Any, **options: Any) -> MongoDBStorage:
    if client is None:
        return MongoDBStorage(uri, database_name=db_name, collection_name=COLLECTION, **options)
    return MongoDBStorage(database_name=db_name, collection_name=COLLECTION, client=client, **options)


@pytest.fixture
async def storage(borrowed_client: Any, mongodb_uri: str, db_name: str) -> AsyncIterator[MongoDBStorage]:
    store = make_storage(mongodb_uri, db_name, borrowed_client)
    try:
        yield store
    finally:
        await store.aclose()


@pytest.fixture
async def small_threshold(borrowed_client: Any, mongodb_uri: str, db_name: str) -> AsyncIterator[MongoDBStorage]:
    """A storage sending every value above 1 KiB to GridFS."""
    store = make_storage(mongodb_uri, db_name, borrowed_client, gridfs_threshold=1024)
    try:
        yield store
    finally:
        await store.aclose()


@pytest.fixture
async def owned(mongodb_uri: str, db_name: str) -> AsyncIterator[MongoDBStorage]:
    store = make_storage(mongodb_uri, db_name, None)
    try:
        yield store
    finally:
        await store.aclose()


@pytest.fixture
def raw(mongodb_client: MongoClient[dict[str, Any]], db_name: str) -> Raw:
    """The test database through a plain sync PyMongo client, independent of the storage."""
    return mongodb_client[db_name]


def file_counts(raw: Raw) -> tuple[int, int]:
    return raw[FILES].count_documents({}), raw[CHUNKS].count_documents({})


# -- the protocol ---------------------------------------------------------------------------------


async def test_is_a_strands_storage(owned: MongoDBStorage) -> None:
    assert isinstance(owned, Storage)
    assert isinstance(owned.namespace("x"), Storage)


async def test_binary_payloads_round_trip_byte_exact(storage: MongoDBStorage, raw: Raw) -> None:
    payloads = {"empty": b"", "one-mib": os.urandom(MiB), "twenty-mib": os.urandom(20 * MiB)}
    for key, payload in payloads.items():
        await storage.write(f"blobs/{key}", payload)
    for key, payload in payloads.items():
        assert await storage.read(f"blobs/{key}") == payload

    inline = raw[COLLECTION].find_one({"_id": "blobs/one-mib"})
    assert inline is not None
    assert inline["gridfs_id"] is None
    assert inline["size"] == MiB
    empty = raw[COLLECTION].find_one({"_id": "blobs/empty"})
    assert empty is not None
    assert empty["data"] == b""
    assert empty["size"] == 0
    large = raw[COLLECTION].find_one({"_id": "blobs/twenty-mib"})
    assert large is not None
    assert large["data"] is None
    assert large["size"] == 20 * MiB
    assert raw[FILES].find_one({"_id": large["gridfs_id"]}, {"length": 1})["length"] == 20 * MiB  # type: ignore[index]


async def test_overwrite_keeps_one_value_and_no_orphaned_files(small_threshold: MongoDBStorage, raw: Raw) -> None:
    storage = small_threshold
    sequence = [b"small", os.urandom(5000), os.urandom(3000), b"tiny again", os.urandom(4096), b""]
    for value in sequence:
        await storage.write("key", value)
        assert await storage.read("key") == value
        large = len(value) + len("key") > 1024
        assert file_counts(raw)[0] == (1 if large else 0)
    assert await storage.list("") == ["key"]

    await storage.write("key", os.urandom(2000))
    await storage.delete("key")
    assert await storage.read("key") is None
    assert file_counts(raw) == (0, 0)
    assert raw[COLLECTION].count_documents({}) == 0


async def test_missing_keys(storage: MongoDBStorage) -> None:
    assert await storage.read("nothing/here") is None
    await storage.delete("nothing/here")  # a no-op, twice
    await storage.delete("nothing/here")
    assert await storage.list("nothing/") == []
    assert await storage.list("") == []


async def test_bytes_like_values_are_copied(owned: MongoDBStorage) -> None:
    buffer = bytearray(b"abc")
    await owned.write("k", buffer)  # type: ignore[arg-type]
    buffer[0] = ord("z")
    assert await owned.read("k") == b"abc"
    await owned.write("m", memoryview(b"xyz"))  # type: ignore[arg-type]
    assert await owned.read("m") == b"xyz"
    with pytest.raises(StorageError):
        await owned.write("s", "text")  # type: ignore[arg-type]


LIST_KEYS = [
    "a",
    "a/b",
    "a/c/d",
    "a.txt",
    "a0",
    "ab",
    "ab/c",
    "b",
    "é/1",
    "\uffff",
    "\U0010ffff",
    "\U0010ffff\U0010ffff/x",
    "z\ud7ff",
    "z\ue000",
]
LIST_PREFIXES = ["", "a", "a/", "a/c", "ab", "ab/", "b", "c", "é", "\uffff", "\U0010ffff", "z\ud7ff", "/a//", "zz"]


async def test_list_is_sorted_and_matches_strands_prefix_semantics(storage: MongoDBStorage) -> None:
    reference = InMemoryStorage()
    for key in reversed(LIST_KEYS):
        await storage.write(key, b"v")
        await reference.write(key, b"v")
    for prefix in LIST_PREFIXES:
        assert await storage.list(prefix) == await reference.list(prefix), prefix
    assert await storage.list("a/") == ["a/b", "a/c/d"]
    assert await storage.list("ab") == ["ab", "ab/c"]
    assert await storage.list("a") == ["a", "a.txt", "a/b", "a/c/d", "a0", "ab", "ab/c"]
    assert await storage.list("") == sorted(LIST_KEYS)


async def test_list_is_one_range_query_returning_keys_only(mongodb_uri: str, db_name: str) -> None:
    recorder = CommandRecorder()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri, event_listeners=[recorder])
    store = make_storage(mongodb_uri, db_name, client)
    try:
        for key in ("p/1", "p/2", "q"):
            await store.write(key, b"x" * 100)
        recorder.clear()
        assert await store.list("p/") == ["p/1", "p/2"]
        assert recorder.targets == [("find", COLLECTION)]
    finally:
        await store.aclose()
        await client.close()


INVALID_KEYS = ["", "/", "///", "..", "a/../b", "../a", "a/..", "a\\b", "\\", "\ud800"]


async def test_key_rules_match_strands_backends(owned: MongoDBStorage) -> None:
    for key in INVALID_KEYS:
        with pytest.raises(StorageError):
            await owned.write(key, b"x")
        with pytest.raises(StorageError):
            await owned.read(key)
        with pytest.raises(StorageError):
            await owned.delete(key)
    for prefix in ["..", "a/../", "a\\"]:
        with pytest.raises(StorageError):
            await owned.list(prefix)
    await owned.write("/a//b/", b"1")
    assert await owned.read("a/b") == b"1"
    assert await owned.list("//a") == ["a/b"]
    assert await owned.list("a//") == ["a/b"]
    await owned.delete("a///b")
    assert await owned.read("a/b") is None


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab./\\", max_size=10))
def test_normalization_is_strands_normalization(text: str) -> None:
    for ours, theirs in ((normalize_key, _normalize_key), (normalize_prefix, _normalize_prefix)):
        try:
            expected: str | None = theirs(text)
        except StorageError:
            expected = None
        if expected is None:
            with pytest.raises(StorageError):
                ours(text)
        else:
            assert ours(text) == expected


async def test_namespace_prefix_is_transparent(mongodb_uri: str, db_name: str, raw: Raw) -> None:
    root = make_storage(mongodb_uri, db_name, None)
    tenant = make_storage(mongodb_uri, db_name, None, namespace="/tenant-a//")
    try:
        await tenant.write("k", b"1")
        await tenant.write("x/y", b"2")
        await root.write("tenant-b/k", b"3")
        assert tenant.prefix == "tenant-a/"
        assert await tenant.list("") == ["k", "x/y"]
        assert await tenant.read("k") == b"1"
        assert sorted(raw[COLLECTION].distinct("_id")) == ["tenant-a/k", "tenant-a/x/y", "tenant-b/k"]

        view = tenant.namespace("x")
        assert await view.read("y") == b"2"
        await view.write("z", b"4")
        assert await view.list("") == ["y", "z"]
        assert await tenant.list("x/") == ["x/y", "x/z"]
        assert await view.namespace("deeper").list("") == []
        with pytest.raises(StorageError):
            view.namespace("..")

        # A namespace() view is used as is by SnapshotSessionManager; a plain storage gets "session/".
        assert SnapshotSessionManager("s", storage=view)._storage is view
        assert SnapshotSessionManager("s", storage=tenant)._storage is not tenant
    finally:
        await tenant.aclose()
        await root.aclose()
    with pytest.raises(StorageError):  # views close with their storage
        await view.read("y")


async def test_fifty_concurrent_writers(small_threshold: MongoDBStorage, raw: Raw) -> None:
    values = {f"w/{index:02d}": os.urandom(100 if index % 5 else 3000) for index in range(50)}
    await asyncio.gather(*(small_threshold.write(key, value) for key, value in values.items()))
    assert await small_threshold.list("w/") == sorted(values)
    read = await asyncio.gather(*(small_threshold.read(key) for key in values))
    assert dict(zip(values, read, strict=True)) == values
    assert file_counts(raw)[0] == 10


async def test_readers_never_see_a_torn_or_missing_gridfs_value(mongodb_uri: str, db_name: str, raw: Raw) -> None:
    store = make_storage(mongodb_uri, db_name, None, gridfs_threshold=0)  # every value in GridFS
    versions = [bytes([index]) * 40_000 for index in range(12)]
    try:
        await store.write("hot", versions[0])

        async def writer() -> None:
            for version in versions[1:]:
                await store.write("hot", version)

        async def reader() -> list[bytes | None]:
            return [await store.read("hot") for _ in range(15)]

        _, *reads = await asyncio.gather(writer(), reader(), reader(), reader())
        assert all(value in versions for batch in reads for value in batch)
        assert await store.read("hot") == versions[-1]
        assert file_counts(raw)[0] == 1
    finally:
        await store.aclose()


async def test_concurrent_writes_to_one_key_leave_one_file(mongodb_uri: str, db_name: str, raw: Raw) -> None:
    store = make_storage(mongodb_uri, db_name, None, gridfs_threshold=0)
    try:
        versions = [os.urandom(1000) for _ in range(10)]
        await asyncio.gather(*(store.write("same", version) for version in versions))
        assert await store.read("same") in versions
        assert file_counts(raw)[0] == 1
    finally:
        await store.aclose()


# -- search ---------------------------------------------------------------------------------------

CORPUS = {
    "memory/prefs/dark-mode.md": b"The user prefers dark mode and large fonts.",
    "memory/prefs/language.json": b'{"language": "French", "mode": "formal"}',
    "memory/notes/trip.md": "Voyage à Paris en mai; dark chocolate.".encode(),
    "memory/binary.bin": bytes(range(256)) * 4,
    "memory/empty.txt": b"",
    "other/mode.md": b"unrelated mode",
    "memory/big.md": b"dark " + b"x" * 5000,  # in GridFS with the small threshold
}
QUERIES = ["dark mode", "what is the language?", "paris", "prefs", "md", "the", "nothing-matches", "FONTS fonts"]


async def test_search_ranks_exactly_like_the_protocol_default(small_threshold: MongoDBStorage) -> None:
    for key, value in CORPUS.items():
        await small_threshold.write(key, value)
    memory = small_threshold.namespace("memory")
    for store in (small_threshold, memory):
        for query in QUERIES:
            expected = await KeywordSearchStrategy().search(store, query)
            assert await store.search(query) == expected, query
    results = await memory.search("dark mode")
    assert [result.key for result in results][:1] == ["prefs/dark-mode.md"]
    assert all(not result.key.startswith("memory/") for result in results)


async def test_search_reads_values_in_batches(mongodb_uri: str, db_name: str) -> None:
    recorder = CommandRecorder()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri, event_listeners=[recorder])
    store = make_storage(mongodb_uri, db_name, client)
    try:
        await asyncio.gather(*(store.write(f"doc/{index}", f"word{index} common".encode()) for index in range(40)))
        recorder.clear()
        assert len(await store.search("common")) == 40
        assert len(recorder.commands) == 2  # the listing and one batch (the protocol default: 41 finds)
    finally:
        await store.aclose()
        await client.close()


class RecordingStrategy:
    """A Strands search strategy that records what it indexes and answers from that."""

    def __init__(self) -> None:
        self.indexed: list[tuple[str, bytes]] = []

    async def index(self, storage: Any, key: str, data: bytes, **kwargs: Any) -> None:
        self.indexed.append((key, data))

    async def search(self, storage: Any, query: str, **kwargs: Any) -> list[StorageSearchResult]:
        return [StorageSearchResult(key=key, score=1.0) for key, data in self.indexed if query.encode() in data]


async def test_a_search_strategy_indexes_writes_and_answers_searches(mongodb_uri: str, db_name: str) -> None:
    strategy = RecordingStrategy()
    store = MongoDBStorage(mongodb_uri, database_name=db_name, collection_name=COLLECTION, search_strategy=strategy)
    try:
        await store.namespace("notes").write("a.md", b"alpha")
        await store.write("b.md", b"beta")
        assert strategy.indexed == [("a.md", b"alpha"), ("b.md", b"beta")]  # keys relative to the storage
        assert await store.search("beta") == [StorageSearchResult(key="b.md", score=1.0)]
    finally:
        await store.aclose()


# -- loops, clients, factory ----------------------------------------------------------------------


async def test_usable_from_any_event_loop(storage: MongoDBStorage, client_kind: str) -> None:
    await storage.write("loop/main", b"main")

    def in_other_loop() -> bytes | None:
        async def other() -> bytes | None:
            await storage.write("loop/other", b"other")
            return await storage.read("loop/main")

        return asyncio.run(other())

    # The test's loop stays free meanwhile, so a client bound to it can serve the other loop.
    assert await asyncio.to_thread(in_other_loop) == b"main"
    assert await storage.read("loop/other") == b"other"
    assert await storage.list("loop/") == ["loop/main", "loop/other"]


def test_from_factory_shares_the_client(mongodb_uri: str, db_name: str) -> None:
    factory = MongoDBSessionManagerFactory(mongodb_uri, database_name=db_name)
    try:
        storage = MongoDBStorage.from_factory(factory, collection_name=COLLECTION, namespace="app")
        assert storage._runtime is factory._runtime
        assert storage.database_name == db_name
        asyncio.run(storage.write("k", b"v"))
        assert asyncio.run(storage.read("k")) == b"v"
        storage.close()
        with pytest.raises(StorageError):
            asyncio.run(storage.read("k"))
        again = MongoDBStorage.from_factory(factory, collection_name=COLLECTION, namespace="app")
        assert asyncio.run(again.read("k")) == b"v"  # closing a storage leaves the factory's client open
    finally:
        factory.close()
    with pytest.raises(StorageError):
        asyncio.run(again.read("k"))


async def test_failures_are_storage_errors(db_name: str) -> None:
    dead = MongoDBStorage(
        "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200&connectTimeoutMS=200", database_name=db_name
    )
    try:
        with pytest.raises(StorageError) as excinfo:
            await dead.write("k", b"v")
        assert excinfo.value.__cause__ is not None
        with pytest.raises(StorageError):
            await dead.list("")
    finally:
        await dead.aclose()
    with pytest.raises(StorageError):
        await dead.read("k")
    with pytest.raises(ValueError, match="needs a connection_string"):
        MongoDBStorage(database_name=db_name)
    with pytest.raises(ValueError, match="gridfs_threshold"):
        MongoDBStorage("mongodb://127.0.0.1:9", gridfs_threshold=17 * MiB)


async def test_purge_orphaned_files(mongodb_uri: str, db_name: str, raw: Raw) -> None:
    store = make_storage(mongodb_uri, db_name, None, gridfs_threshold=0)
    try:
        await store.write("kept", b"value")
        full_key = "kept"

        async def crash_between_put_and_swap() -> None:  # what an interrupted overwrite leaves behind
            await gridfs_bucket(store._runtime.port, db_name, store.bucket_name).put(
                b"never pointed to", filename=full_key, metadata={"key": full_key}
            )

        await store._runtime.run(crash_between_put_and_swap)
        assert file_counts(raw)[0] == 2
        assert await store.purge_orphaned_files(older_than=timedelta(hours=1)) == 0  # too recent
        assert await store.purge_orphaned_files(older_than=timedelta(0)) == 1
        assert file_counts(raw)[0] == 1
        assert await store.read("kept") == b"value"
    finally:
        await store.aclose()


# -- Strands SnapshotSessionManager ---------------------------------------------------------------

AGENT_ID = "calculator"
SYSTEM_PROMPT = "You add numbers with the add tool."
FIRST_TURN = [tool_call("add", {"a": 2, "b": 3}, tool_use_id="t1"), "2 + 3 = 5."]
SECOND_TURN = [tool_call("add", {"a": 5, "b": 10}, tool_use_id="t2"), "5 + 10 = 15."]


def comparable(messages: Any) -> Any:
    """Messages without what legitimately differs between runs: random tracking ids and timings."""
    stripped = copy.deepcopy(messages)
    for message in stripped:
        message.pop("tracking_id", None)
        message.get("metadata", {}).pop("metrics", None)
    return stripped


def test_snapshot_agent_restores_in_a_fresh_process_and_continues_identically(
    factory: MongoDBSessionManagerFactory, mongodb_uri: str, db_name: str
) -> None:
    # The reference: one process, no persistence, both turns.
    reference_model = ScriptedModel(FIRST_TURN + SECOND_TURN, default_text=None)
    reference = Agent(
        model=reference_model, tools=[add], agent_id=AGENT_ID, system_prompt=SYSTEM_PROMPT, callback_handler=None
    )
    reference("What is 2 + 3?")
    reference("And 5 + 10?")

    storage = MongoDBStorage.from_factory(factory, collection_name=COLLECTION)
    manager = SnapshotSessionManager("calc-session", storage=storage, snapshot_trigger=lambda **_: True)
    agent = Agent(
        model=ScriptedModel(FIRST_TURN, default_text=None),
        tools=[add],
        agent_id=AGENT_ID,
        system_prompt=SYSTEM_PROMPT,
        session_manager=manager,
        callback_handler=None,
        state={"user": "ada"},
    )
    agent("What is 2 + 3?")
    after_first_turn = copy.deepcopy(agent.messages)
    assert [block for m in agent.messages for block in m["content"] if "toolUse" in block]

    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "storage_restore.py"), mongodb_uri, db_name, COLLECTION, "calc-session"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    restored = json.loads(result.stdout.strip().splitlines()[-1])
    assert restored["restored"] == after_first_turn  # tracking ids included: the exact snapshot
    assert restored["restored_state"] == {"user": "ada"}
    assert comparable(restored["messages"]) == comparable(reference.messages)
    assert restored["model_calls"] == reference_model.calls[len(FIRST_TURN) :]  # the model saw the same context

    # Immutable checkpoints: one per invocation (this process's and the fresh process's), oldest first.
    async def time_travel() -> tuple[list[str], Any, Any]:
        checkpoints = SnapshotSessionManager("calc-session", storage=storage)
        ids = await checkpoints.list_snapshot_ids(agent)
        assert await checkpoints.restore_snapshot(agent, snapshot_id=ids[0])
        first = copy.deepcopy(agent.messages)
        assert await checkpoints.restore_snapshot(agent, snapshot_id=ids[-1])
        return ids, first, copy.deepcopy(agent.messages)

    ids, first, last = asyncio.run(time_travel())
    assert len(ids) == 2
    assert first == after_first_turn
    assert last == restored["messages"]
    keys = asyncio.run(storage.list("session/calc-session/"))
    assert keys == sorted(keys)
    assert len(keys) == 3


def test_sync_start_up_binds_an_unbound_borrowed_client_to_a_lasting_loop(mongodb_uri: str, db_name: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    storage = MongoDBStorage(database_name=db_name, collection_name=COLLECTION, client=client)
    try:
        for turn in range(2):  # the second Agent restores what the first one saved
            agent = Agent(
                model=ScriptedModel([f"reply {turn}"], default_text=None),
                agent_id=AGENT_ID,
                session_manager=SnapshotSessionManager("bridge", storage=storage),
                callback_handler=None,
            )
            assert len(agent.messages) == 2 * turn
            agent(f"hello {turn}")
        home = client._loop  # bound by the first Strands bridge call, to a loop that outlived it
        assert home is not None
        assert home.is_running()
    finally:
        storage._runtime.run_blocking(client.close)
        storage.close()


async def test_sync_start_up_on_the_loop_of_a_borrowed_client_fails_fast(mongodb_uri: str, db_name: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    storage = MongoDBStorage(database_name=db_name, collection_name=COLLECTION, client=client)
    try:
        await storage.write("warm-up", b"binds the client to this loop")
        outcome: list[BaseException] = []
        # Constructing an Agent synchronously here blocks this loop inside Strands' bridge; the storage
        # must refuse (a hop to this loop would wait forever) instead of hanging.
        try:
            Agent(
                model=ScriptedModel([], default_text=None),
                session_manager=SnapshotSessionManager("blocked", storage=storage),
                callback_handler=None,
            )
        except Exception as error:
            outcome.append(error)
        assert outcome, "Agent(...) should have failed"
        chain = [outcome[0], outcome[0].__cause__]
        assert any(isinstance(error, StorageError) for error in chain)
        assert "blocks the event loop" in str(outcome[0])
        assert await storage.read("warm-up") is not None  # still usable the async way
    finally:
        await storage.aclose()
        await client.close()
