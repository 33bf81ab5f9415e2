"""A small async GridFS port over the three client kinds the core accepts.

GridFS stores a value larger than one BSON document (16 MiB) as a ``<bucket>.files`` document plus
``<bucket>.chunks`` documents. The core needs three whole-value operations, awaited the same way
whichever client the user brought:

* ``pymongo.AsyncMongoClient``: ``gridfs.AsyncGridFSBucket`` (native coroutines).
* Motor's ``AsyncIOMotorClient``: ``AsyncIOMotorGridFSBucket`` (futures with the same signatures).
* A sync ``pymongo.MongoClient``: ``gridfs.GridFSBucket``, each call in a worker thread.

Like every port call, these must run on the client's home loop (see :mod:`._runtime`).

Example::

    bucket = gridfs_bucket(runtime.port, "db", "blobs")
    file_id = await bucket.put(payload, filename="session/a/snapshot_latest.json")
    assert await bucket.get(file_id) == payload
    await bucket.delete(file_id)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import anyio.to_thread
from bson import ObjectId
from gridfs import AsyncGridFSBucket, GridFSBucket
from gridfs.errors import NoFile

from ._driver import ClientPort

T = TypeVar("T")

#: GridFS' own default chunk size (255 KiB), kept so files stay readable by any GridFS tool.
DEFAULT_CHUNK_SIZE = 255 * 1024


class GridFSFileMissingError(LookupError):
    """:meth:`GridFSPort.get` was asked for a file that does not exist (any more)."""


class GridFSPort(Protocol):
    """Whole-value GridFS operations on one bucket."""

    @property
    def bucket_name(self) -> str: ...

    async def put(
        self, data: bytes, *, filename: str, file_id: Any = None, metadata: Mapping[str, Any] | None = None
    ) -> Any:
        """Store ``data`` as a new file and return its id (``file_id``, or a new ``ObjectId``).

        A file is immutable: replacing a value means putting a new file and deleting the old one.
        """
        ...

    async def get(self, file_id: Any) -> bytes:
        """The file's whole content; raises :class:`GridFSFileMissingError` if there is no such file."""
        ...

    async def delete(self, file_id: Any) -> bool:
        """Delete the file and its chunks; False (not an error) if it did not exist."""
        ...


class _AwaitableBucket:
    """PyMongo's ``AsyncGridFSBucket`` or Motor's bucket: both return awaitables with the same signatures."""

    def __init__(self, bucket: Any, bucket_name: str) -> None:
        self._bucket = bucket
        self._name = bucket_name

    @property
    def bucket_name(self) -> str:
        return self._name

    async def put(
        self, data: bytes, *, filename: str, file_id: Any = None, metadata: Mapping[str, Any] | None = None
    ) -> Any:
        file_id = ObjectId() if file_id is None else file_id
        await self._bucket.upload_from_stream_with_id(file_id, filename, data, metadata=metadata)
        return file_id

    async def get(self, file_id: Any) -> bytes:
        try:
            stream = await self._bucket.open_download_stream(file_id)
            content: bytes = await stream.read()
        except NoFile as error:
            raise GridFSFileMissingError(f"no GridFS file {file_id!r} in bucket {self._name!r}") from error
        return content

    async def delete(self, file_id: Any) -> bool:
        try:
            await self._bucket.delete(file_id)
        except NoFile:  # the chunks (if any) are deleted before NoFile is raised
            return False
        return True


class _ThreadedBucket:
    """A sync ``GridFSBucket``; every call runs in a worker thread so no event loop blocks."""

    def __init__(self, bucket: GridFSBucket, bucket_name: str) -> None:
        self._bucket = bucket
        self._name = bucket_name

    @property
    def bucket_name(self) -> str:
        return self._name

    @staticmethod
    async def _in_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await anyio.to_thread.run_sync(functools.partial(function, *args, **kwargs))

    async def put(
        self, data: bytes, *, filename: str, file_id: Any = None, metadata: Mapping[str, Any] | None = None
    ) -> Any:
        file_id = ObjectId() if file_id is None else file_id
        await self._in_thread(self._bucket.upload_from_stream_with_id, file_id, filename, data, metadata=metadata)
        return file_id

    async def get(self, file_id: Any) -> bytes:
        def read() -> bytes:
            with self._bucket.open_download_stream(file_id) as stream:
                content: bytes = stream.read()
                return content

        try:
            return await self._in_thread(read)
        except NoFile as error:
            raise GridFSFileMissingError(f"no GridFS file {file_id!r} in bucket {self._name!r}") from error

    async def delete(self, file_id: Any) -> bool:
        try:
            await self._in_thread(self._bucket.delete, file_id)
        except NoFile:
            return False
        return True


def gridfs_bucket(
    port: ClientPort, database: str, bucket_name: str, *, chunk_size_bytes: int = DEFAULT_CHUNK_SIZE
) -> GridFSPort:
    """The GridFS bucket ``bucket_name`` (collections ``<bucket_name>.files`` and ``.chunks``) of ``database``.

    Creating one does no I/O; GridFS creates its indexes on the first upload.
    """
    database_object = port.client[database]
    if port.kind == "pymongo-async":
        return _AwaitableBucket(AsyncGridFSBucket(database_object, bucket_name, chunk_size_bytes), bucket_name)
    if port.kind == "motor":
        from motor.motor_asyncio import AsyncIOMotorGridFSBucket

        return _AwaitableBucket(AsyncIOMotorGridFSBucket(database_object, bucket_name, chunk_size_bytes), bucket_name)
    if port.kind == "pymongo-sync":
        return _ThreadedBucket(GridFSBucket(database_object, bucket_name, chunk_size_bytes), bucket_name)
    raise TypeError(f"no GridFS support for client kind {port.kind!r}")
