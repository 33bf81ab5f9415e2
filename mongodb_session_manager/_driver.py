"""The narrow port between the async core and the MongoDB drivers.

The core needs a handful of collection operations. They are awaited the same way whichever
client the user brought:

* ``pymongo.AsyncMongoClient`` (the default): native coroutines.
* Motor's ``AsyncIOMotorClient``: futures with the same signatures (``close()`` is not a coroutine).
* A sync ``pymongo.MongoClient``: each call runs in a worker thread so no event loop blocks.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import anyio.to_thread
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions
from gridfs import AsyncGridFSBucket, GridFSBucket
from pymongo import AsyncMongoClient, MongoClient, ReturnDocument
from pymongo.operations import IndexModel
from pymongo.results import UpdateResult

from . import _compat
from ._types import Document

Filter = Mapping[str, Any]

# Decrypted values come back as plain dicts, with UUIDs in the standard representation.
_ENCRYPTION_CODEC: CodecOptions[Any] = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)

# Large enough that a conversation comes back in one reply (the server still caps a reply at 16 MiB).
_FIND_BATCH_SIZE = 100_000


class CollectionPort(Protocol):
    """The collection operations the core uses."""

    @property
    def full_name(self) -> str: ...

    @property
    def codec_options(self) -> CodecOptions[Any]:
        """How documents read from this collection are decoded (time zones, document class)."""
        ...

    async def find_one(self, filter: Filter, projection: Mapping[str, Any] | None = None) -> Document | None: ...

    async def find(
        self,
        filter: Filter,
        *,
        sort: Sequence[tuple[str, int]] | None = None,
        skip: int = 0,
        limit: int = 0,
        projection: Mapping[str, Any] | None = None,
        hint: str | None = None,
    ) -> list[Document]: ...

    async def find_one_and_upsert(
        self, filter: Filter, update: Mapping[str, Any], projection: Mapping[str, Any] | None = None
    ) -> Document: ...

    async def find_one_and_replace(
        self,
        filter: Filter,
        replacement: Mapping[str, Any],
        projection: Mapping[str, Any] | None = None,
        *,
        upsert: bool = False,
    ) -> Document | None:
        """Replace the matching document; returns it as it was before (None if there was none)."""
        ...

    async def find_one_and_delete(self, filter: Filter, projection: Mapping[str, Any] | None = None) -> Document | None:
        """Delete the matching document; returns it (None if there was none)."""
        ...

    async def insert_one(self, document: Document) -> None: ...

    async def insert_many(self, documents: Sequence[Document]) -> None: ...

    async def update_one(self, filter: Filter, update: Mapping[str, Any], *, upsert: bool = False) -> UpdateResult: ...

    async def update_many(self, filter: Filter, update: Mapping[str, Any]) -> int:
        """Returns how many documents matched."""
        ...

    async def delete_many(self, filter: Filter) -> int: ...

    async def count_documents(self, filter: Filter) -> int: ...

    async def create_indexes(self, indexes: Sequence[IndexModel]) -> None: ...


class ClientPort(Protocol):
    """A MongoDB client as the core sees it."""

    kind: str
    client: Any
    #: How the client's methods are awaited (natively, or in a worker thread).
    calls: Calls
    #: Whether the client is bound to one event loop (async drivers) and must be used there.
    loop_bound: bool

    def collection(self, database: str, name: str) -> CollectionPort: ...

    def gridfs_bucket(self, database: str, bucket_name: str, chunk_size_bytes: int) -> Any:
        """The driver's own GridFS bucket object, its methods awaited through :attr:`calls`."""
        ...

    async def command(self, database: str, command: Mapping[str, Any]) -> Document: ...

    def client_encryption(self, kms_providers: Mapping[str, Any], key_vault_namespace: str, **options: Any) -> Any:
        """The driver's explicit-encryption object on this client (its methods awaited through
        :attr:`calls`); ``options``: ``kms_tls_options``, ``key_expiration_ms``."""
        ...

    def home_loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop the client is bound to, or None if it is not bound (yet) or needs none."""
        ...

    async def close(self) -> None: ...


class Calls(Protocol):
    """How a driver's methods are awaited: natively (async drivers) or in a worker thread (sync PyMongo)."""

    async def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``function(*args, **kwargs)``, awaited without blocking the event loop."""
        ...

    async def to_list(self, cursor: Any) -> list[Document]:
        """Every document of a cursor."""
        ...


class _Awaiting:
    """PyMongo's async API and Motor: their methods return awaitables."""

    async def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await function(*args, **kwargs)

    async def to_list(self, cursor: Any) -> list[Document]:
        documents: list[Document] = await cursor.to_list(None)
        return documents


class _InThread:
    """Sync PyMongo: each call runs in a worker thread, so no event loop blocks."""

    async def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(functools.partial(function, *args, **kwargs))

    async def to_list(self, cursor: Any) -> list[Document]:
        return await anyio.to_thread.run_sync(list, cursor)


AWAITING: Calls = _Awaiting()
IN_THREAD: Calls = _InThread()


class _Collection:
    """A driver collection (async PyMongo, Motor or sync PyMongo: same signatures) behind
    :class:`CollectionPort`; ``calls`` says how its methods are awaited."""

    def __init__(self, collection: Any, calls: Calls) -> None:
        self._collection = collection
        self._calls = calls

    @property
    def full_name(self) -> str:
        return str(self._collection.full_name)

    @property
    def codec_options(self) -> CodecOptions[Any]:
        options: CodecOptions[Any] = self._collection.codec_options
        return options

    async def find_one(self, filter: Filter, projection: Mapping[str, Any] | None = None) -> Document | None:
        result: Document | None = await self._calls.call(self._collection.find_one, filter, projection)
        return result

    async def find(
        self,
        filter: Filter,
        *,
        sort: Sequence[tuple[str, int]] | None = None,
        skip: int = 0,
        limit: int = 0,
        projection: Mapping[str, Any] | None = None,
        hint: str | None = None,
    ) -> list[Document]:
        # Creating the cursor does no I/O; reading it does.
        cursor = self._collection.find(
            filter, projection, sort=sort, skip=skip, limit=limit, batch_size=_batch_size(limit)
        )
        if hint is not None:
            cursor = cursor.hint(hint)
        return await self._calls.to_list(cursor)

    async def find_one_and_upsert(
        self, filter: Filter, update: Mapping[str, Any], projection: Mapping[str, Any] | None = None
    ) -> Document:
        document: Document = await self._calls.call(
            self._collection.find_one_and_update,
            filter,
            update,
            projection,
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return document

    async def find_one_and_replace(
        self,
        filter: Filter,
        replacement: Mapping[str, Any],
        projection: Mapping[str, Any] | None = None,
        *,
        upsert: bool = False,
    ) -> Document | None:
        document: Document | None = await self._calls.call(
            self._collection.find_one_and_replace,
            filter,
            replacement,
            projection,
            upsert=upsert,
            return_document=ReturnDocument.BEFORE,
        )
        return document

    async def find_one_and_delete(self, filter: Filter, projection: Mapping[str, Any] | None = None) -> Document | None:
        document: Document | None = await self._calls.call(self._collection.find_one_and_delete, filter, projection)
        return document

    async def insert_one(self, document: Document) -> None:
        await self._calls.call(self._collection.insert_one, document)

    async def insert_many(self, documents: Sequence[Document]) -> None:
        await self._calls.call(self._collection.insert_many, documents, ordered=True)

    async def update_one(self, filter: Filter, update: Mapping[str, Any], *, upsert: bool = False) -> UpdateResult:
        result: UpdateResult = await self._calls.call(self._collection.update_one, filter, update, upsert=upsert)
        return result

    async def update_many(self, filter: Filter, update: Mapping[str, Any]) -> int:
        result: UpdateResult = await self._calls.call(self._collection.update_many, filter, update)
        return result.matched_count

    async def delete_many(self, filter: Filter) -> int:
        result = await self._calls.call(self._collection.delete_many, filter)
        return int(result.deleted_count)

    async def count_documents(self, filter: Filter) -> int:
        return int(await self._calls.call(self._collection.count_documents, filter))

    async def create_indexes(self, indexes: Sequence[IndexModel]) -> None:
        await self._calls.call(self._collection.create_indexes, list(indexes))


def _batch_size(limit: int) -> int:
    return limit if 0 < limit < _FIND_BATCH_SIZE else _FIND_BATCH_SIZE


class _ClientPort:
    """What the three ports share: the driver's API is the same, only how it is awaited differs."""

    kind: str
    calls: Calls
    loop_bound: bool

    def __init__(self, client: Any) -> None:
        self.client = client
        # Driver collection objects are immutable and cost a few microseconds each to build (options
        # are resolved per database and collection); every write asks for one, so each is built once.
        self._collections: dict[tuple[str, str], CollectionPort] = {}

    def collection(self, database: str, name: str) -> CollectionPort:
        key = (database, name)
        collection = self._collections.get(key)
        if collection is None:
            collection = self._collections[key] = _Collection(self.client[database][name], self.calls)
        return collection

    async def command(self, database: str, command: Mapping[str, Any]) -> Document:
        result: Document = await self.calls.call(self.client[database].command, dict(command))
        return result

    def home_loop(self) -> asyncio.AbstractEventLoop | None:
        return None

    async def close(self) -> None:
        await self.calls.call(self.client.close)


class PyMongoAsyncClientPort(_ClientPort):
    """Port over ``pymongo.AsyncMongoClient``."""

    kind = "pymongo-async"
    calls = AWAITING
    loop_bound = True

    def gridfs_bucket(self, database: str, bucket_name: str, chunk_size_bytes: int) -> Any:
        return AsyncGridFSBucket(self.client[database], bucket_name, chunk_size_bytes)

    def client_encryption(self, kms_providers: Mapping[str, Any], key_vault_namespace: str, **options: Any) -> Any:
        from pymongo.asynchronous.encryption import AsyncClientEncryption

        return AsyncClientEncryption(kms_providers, key_vault_namespace, self.client, _ENCRYPTION_CODEC, **options)

    def home_loop(self) -> asyncio.AbstractEventLoop | None:
        # PyMongo binds the client to the loop of its first operation and refuses any other.
        return _compat.pymongo_async_client_loop(self.client)


class MotorClientPort(_ClientPort):
    """Port over Motor's ``AsyncIOMotorClient`` (deprecated upstream; accepted when passed in)."""

    kind = "motor"
    calls = AWAITING
    loop_bound = True

    def gridfs_bucket(self, database: str, bucket_name: str, chunk_size_bytes: int) -> Any:
        from motor.motor_asyncio import AsyncIOMotorGridFSBucket

        return AsyncIOMotorGridFSBucket(self.client[database], bucket_name, chunk_size_bytes)

    def client_encryption(self, kms_providers: Mapping[str, Any], key_vault_namespace: str, **options: Any) -> Any:
        from motor.motor_asyncio import AsyncIOMotorClientEncryption

        options.pop("key_expiration_ms", None)  # Motor does not take it: libmongocrypt's default (60 s) applies
        return AsyncIOMotorClientEncryption(
            kms_providers, key_vault_namespace, self.client, _ENCRYPTION_CODEC, **options
        )

    def home_loop(self) -> asyncio.AbstractEventLoop | None:
        # Motor fixes its loop the first time it needs one; its futures belong to that loop.
        return _compat.motor_client_loop(self.client)

    async def close(self) -> None:
        self.client.close()  # not a coroutine in Motor


class SyncClientPort(_ClientPort):
    """Port over a sync ``pymongo.MongoClient``; it is thread-safe and needs no home loop."""

    kind = "pymongo-sync"
    calls = IN_THREAD
    loop_bound = False

    def gridfs_bucket(self, database: str, bucket_name: str, chunk_size_bytes: int) -> Any:
        return GridFSBucket(self.client[database], bucket_name, chunk_size_bytes)

    def client_encryption(self, kms_providers: Mapping[str, Any], key_vault_namespace: str, **options: Any) -> Any:
        from pymongo.encryption import ClientEncryption

        return ClientEncryption(kms_providers, key_vault_namespace, self.client, _ENCRYPTION_CODEC, **options)


def _is_motor_client(client: object) -> bool:
    return any(
        cls.__module__.startswith("motor.") and cls.__name__ == "AsyncIOMotorClient" for cls in type(client).__mro__
    )


def port_for(client: object) -> ClientPort:
    """Pick the port for a user-supplied client, or raise ``TypeError`` for anything else."""
    if isinstance(client, AsyncMongoClient):
        return PyMongoAsyncClientPort(client)
    if isinstance(client, MongoClient):
        return SyncClientPort(client)
    if _is_motor_client(client):
        return MotorClientPort(client)
    raise TypeError(
        "client must be a pymongo.AsyncMongoClient, a pymongo.MongoClient or a motor AsyncIOMotorClient, "
        f"got {type(client).__name__}"
    )
