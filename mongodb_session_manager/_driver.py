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
from typing import Any, Protocol, TypeVar

import anyio.to_thread
from pymongo import AsyncMongoClient, MongoClient, ReturnDocument
from pymongo.operations import IndexModel
from pymongo.results import UpdateResult

from . import _compat
from ._types import Document

Filter = Mapping[str, Any]
T = TypeVar("T")

# Large enough that a conversation comes back in one reply (the server still caps a reply at 16 MiB).
_FIND_BATCH_SIZE = 100_000


class CollectionPort(Protocol):
    """The collection operations the core uses."""

    @property
    def full_name(self) -> str: ...

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

    def collection(self, database: str, name: str) -> CollectionPort: ...

    async def command(self, database: str, command: Mapping[str, Any]) -> Document: ...

    def home_loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop the client is bound to, or None if it is not bound (yet) or needs none."""
        ...

    async def close(self) -> None: ...


class _AwaitableCollection:
    """Wraps a PyMongo async or Motor collection: both return awaitables with the same signatures."""

    def __init__(self, collection: Any) -> None:
        self._collection = collection

    @property
    def full_name(self) -> str:
        return str(self._collection.full_name)

    async def find_one(self, filter: Filter, projection: Mapping[str, Any] | None = None) -> Document | None:
        result: Document | None = await self._collection.find_one(filter, projection)
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
        cursor = self._collection.find(
            filter, projection, sort=sort, skip=skip, limit=limit, batch_size=_batch_size(limit)
        )
        if hint is not None:
            cursor = cursor.hint(hint)
        documents: list[Document] = await cursor.to_list(None)
        return documents

    async def find_one_and_upsert(
        self, filter: Filter, update: Mapping[str, Any], projection: Mapping[str, Any] | None = None
    ) -> Document:
        document: Document = await self._collection.find_one_and_update(
            filter, update, projection, upsert=True, return_document=ReturnDocument.AFTER
        )
        return document

    async def insert_one(self, document: Document) -> None:
        await self._collection.insert_one(document)

    async def insert_many(self, documents: Sequence[Document]) -> None:
        await self._collection.insert_many(documents, ordered=True)

    async def update_one(self, filter: Filter, update: Mapping[str, Any], *, upsert: bool = False) -> UpdateResult:
        result: UpdateResult = await self._collection.update_one(filter, update, upsert=upsert)
        return result

    async def update_many(self, filter: Filter, update: Mapping[str, Any]) -> int:
        result: UpdateResult = await self._collection.update_many(filter, update)
        return result.matched_count

    async def delete_many(self, filter: Filter) -> int:
        result = await self._collection.delete_many(filter)
        return int(result.deleted_count)

    async def count_documents(self, filter: Filter) -> int:
        return int(await self._collection.count_documents(filter))

    async def create_indexes(self, indexes: Sequence[IndexModel]) -> None:
        await self._collection.create_indexes(list(indexes))


class _ThreadedCollection:
    """Wraps a sync PyMongo collection; every call runs in a worker thread."""

    def __init__(self, collection: Any) -> None:
        self._collection = collection

    @property
    def full_name(self) -> str:
        return str(self._collection.full_name)

    @staticmethod
    async def _in_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await anyio.to_thread.run_sync(functools.partial(function, *args, **kwargs))

    async def find_one(self, filter: Filter, projection: Mapping[str, Any] | None = None) -> Document | None:
        result: Document | None = await self._in_thread(self._collection.find_one, filter, projection)
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
        def run() -> list[Document]:
            cursor = self._collection.find(
                filter, projection, sort=sort, skip=skip, limit=limit, batch_size=_batch_size(limit)
            )
            if hint is not None:
                cursor = cursor.hint(hint)
            return list(cursor)

        return await self._in_thread(run)

    async def find_one_and_upsert(
        self, filter: Filter, update: Mapping[str, Any], projection: Mapping[str, Any] | None = None
    ) -> Document:
        document: Document = await self._in_thread(
            self._collection.find_one_and_update,
            filter,
            update,
            projection,
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return document

    async def insert_one(self, document: Document) -> None:
        await self._in_thread(self._collection.insert_one, document)

    async def insert_many(self, documents: Sequence[Document]) -> None:
        await self._in_thread(self._collection.insert_many, documents, ordered=True)

    async def update_one(self, filter: Filter, update: Mapping[str, Any], *, upsert: bool = False) -> UpdateResult:
        result: UpdateResult = await self._in_thread(self._collection.update_one, filter, update, upsert=upsert)
        return result

    async def update_many(self, filter: Filter, update: Mapping[str, Any]) -> int:
        result: UpdateResult = await self._in_thread(self._collection.update_many, filter, update)
        return result.matched_count

    async def delete_many(self, filter: Filter) -> int:
        result = await self._in_thread(self._collection.delete_many, filter)
        return int(result.deleted_count)

    async def count_documents(self, filter: Filter) -> int:
        return int(await self._in_thread(self._collection.count_documents, filter))

    async def create_indexes(self, indexes: Sequence[IndexModel]) -> None:
        await self._in_thread(self._collection.create_indexes, list(indexes))


def _batch_size(limit: int) -> int:
    return limit if 0 < limit < _FIND_BATCH_SIZE else _FIND_BATCH_SIZE


class PyMongoAsyncClientPort:
    """Port over ``pymongo.AsyncMongoClient``."""

    kind = "pymongo-async"

    def __init__(self, client: AsyncMongoClient[Any]) -> None:
        self.client = client

    def collection(self, database: str, name: str) -> CollectionPort:
        return _AwaitableCollection(self.client[database][name])

    async def command(self, database: str, command: Mapping[str, Any]) -> Document:
        return await self.client[database].command(dict(command))

    def home_loop(self) -> asyncio.AbstractEventLoop | None:
        # PyMongo binds the client to the loop of its first operation and refuses any other.
        return _compat.pymongo_async_client_loop(self.client)

    async def close(self) -> None:
        await self.client.close()


class MotorClientPort:
    """Port over Motor's ``AsyncIOMotorClient`` (deprecated upstream; accepted when passed in)."""

    kind = "motor"

    def __init__(self, client: Any) -> None:
        self.client = client

    def collection(self, database: str, name: str) -> CollectionPort:
        return _AwaitableCollection(self.client[database][name])

    async def command(self, database: str, command: Mapping[str, Any]) -> Document:
        result: Document = await self.client[database].command(dict(command))
        return result

    def home_loop(self) -> asyncio.AbstractEventLoop | None:
        # Motor fixes its loop the first time it needs one; its futures belong to that loop.
        return _compat.motor_client_loop(self.client)

    async def close(self) -> None:
        self.client.close()


class SyncClientPort:
    """Port over a sync ``pymongo.MongoClient``; it is thread-safe and needs no home loop."""

    kind = "pymongo-sync"

    def __init__(self, client: MongoClient[Any]) -> None:
        self.client = client

    def collection(self, database: str, name: str) -> CollectionPort:
        return _ThreadedCollection(self.client[database][name])

    async def command(self, database: str, command: Mapping[str, Any]) -> Document:
        result: Document = await anyio.to_thread.run_sync(self.client[database].command, dict(command))
        return result

    def home_loop(self) -> asyncio.AbstractEventLoop | None:
        return None

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self.client.close)


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
