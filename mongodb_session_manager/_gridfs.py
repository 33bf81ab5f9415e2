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

from collections.abc import Mapping
from typing import Any, Protocol

from bson import ObjectId
from gridfs.errors import NoFile

from ._driver import Calls, ClientPort

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


class _Bucket:
    """A driver's GridFS bucket (PyMongo async, Motor or sync: same signatures) behind :class:`GridFSPort`;
    ``calls`` says how its methods are awaited."""

    def __init__(self, bucket: Any, bucket_name: str, calls: Calls) -> None:
        self._bucket = bucket
        self._name = bucket_name
        self._calls = calls

    @property
    def bucket_name(self) -> str:
        return self._name

    async def put(
        self, data: bytes, *, filename: str, file_id: Any = None, metadata: Mapping[str, Any] | None = None
    ) -> Any:
        file_id = ObjectId() if file_id is None else file_id
        await self._calls.call(self._bucket.upload_from_stream_with_id, file_id, filename, data, metadata=metadata)
        return file_id

    async def get(self, file_id: Any) -> bytes:
        try:
            stream = await self._calls.call(self._bucket.open_download_stream, file_id)
            content: bytes = await self._calls.call(stream.read)  # reading to the end releases the cursor
        except NoFile as error:
            raise GridFSFileMissingError(f"no GridFS file {file_id!r} in bucket {self._name!r}") from error
        return content

    async def delete(self, file_id: Any) -> bool:
        try:
            await self._calls.call(self._bucket.delete, file_id)
        except NoFile:  # the chunks (if any) are deleted before NoFile is raised
            return False
        return True


def gridfs_bucket(
    port: ClientPort, database: str, bucket_name: str, *, chunk_size_bytes: int = DEFAULT_CHUNK_SIZE
) -> GridFSPort:
    """The GridFS bucket ``bucket_name`` (collections ``<bucket_name>.files`` and ``.chunks``) of ``database``.

    Creating one does no I/O; GridFS creates its indexes on the first upload.
    """
    return _Bucket(port.gridfs_bucket(database, bucket_name, chunk_size_bytes), bucket_name, port.calls)
