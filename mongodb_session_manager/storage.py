"""``MongoDBStorage``: Strands' async ``Storage`` protocol on the library's async MongoDB core.

Strands' :class:`~strands.session.SnapshotSessionManager` (and its stash, memory and offloading
subsystems) persist opaque bytes under string keys through the :class:`strands.storage.Storage`
protocol: ``write``, ``read``, ``delete``, ``list`` and ``search``. This backend stores them in one
collection, one document per key::

    {_id: <key>, data: Binary | None, gridfs_id: ObjectId | None, size: int, updated_at: datetime}

* A value up to ``gridfs_threshold`` (15 MiB by default) is stored inline in ``data``. A larger value
  goes to the GridFS bucket ``<collection>.gridfs`` and the document keeps a pointer to the file.
  Replacing or deleting a GridFS value never loses it: the new file is written first, then the
  pointer is swapped atomically, then the old file is deleted. A crash between the steps can leave
  an unreferenced file, never a dangling pointer; :meth:`MongoDBStorage.purge_orphaned_files`
  removes such files.
* ``list(prefix)`` is one range scan of the ``_id`` index, returning keys sorted like Python sorts
  strings (MongoDB compares strings by their UTF-8 bytes, which orders them by code point).
* Keys follow the rules of Strands' own backends: runs of ``/`` collapse, leading and trailing ``/``
  are dropped, and empty keys, ``..`` segments and backslashes raise
  :class:`~strands.types.exceptions.StorageError`. Every failure is a ``StorageError``.
* ``search`` scores exactly like Strands' default :class:`~strands.storage.search.KeywordSearchStrategy`
  but streams the values in a few batched queries instead of one ``read`` per key.

Every method may be awaited from any event loop: the MongoDB work runs on the client's home loop
(see :mod:`._runtime`), including when Strands calls it from the throwaway loop of its sync bridge
(``Agent(...)`` restoring a snapshot, ``agent("...")``).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import copy
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from bson import Binary
from gridfs.errors import CorruptGridFile
from pymongo.errors import DuplicateKeyError
from strands.storage.search.keyword import STOP_WORDS, token_overlap_score, tokenize
from strands.storage.search.types import SearchStrategy
from strands.storage.storage import StorageSearchResult
from strands.types.exceptions import StorageError

from . import _compat, connection_pool
from ._clients import DEFAULT_DATABASE_NAME
from ._driver import ClientPort, port_for
from ._encryption import cipher_for
from ._gridfs import GridFSFileMissingError, GridFSPort, gridfs_bucket
from ._must_finish import must_finish
from ._runtime import ClientRuntime
from ._storage_keys import normalize_key, normalize_prefix, prefix_filter, without_extension
from ._types import Document
from ._validation import validate_name
from .encryption import EncryptionOptions
from .errors import ClosedError

if TYPE_CHECKING:
    from .mongodb_session_factory import AsyncMongoDBSessionManagerFactory, MongoDBSessionManagerFactory

__all__ = ["DEFAULT_GRIDFS_THRESHOLD", "DEFAULT_STORAGE_COLLECTION", "MongoDBStorage"]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

#: Collection used when none is given.
DEFAULT_STORAGE_COLLECTION = "strands_storage"
#: Values (plus their key) larger than this go to GridFS; 1 MiB below the 16 MiB BSON limit.
DEFAULT_GRIDFS_THRESHOLD = 15 * 1024 * 1024
_MAX_GRIDFS_THRESHOLD = 16 * 1024 * 1024 - 64 * 1024
#: GridFS bucket of a collection: ``<collection>.gridfs.files`` and ``<collection>.gridfs.chunks``.
_BUCKET_SUFFIX = ".gridfs"
#: A read retries this often when a concurrent overwrite deletes the GridFS file it was about to read.
_READ_ATTEMPTS = 5
#: Inline values fetched per query by ``search`` (bounded by count and by bytes).
_SEARCH_BATCH_DOCUMENTS = 256
_SEARCH_BATCH_BYTES = 8 * 1024 * 1024


# -- keys -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _failing(action: str) -> Iterator[None]:
    """Turn any failure (driver, network, closed client, wrong loop) into a :class:`StorageError`."""
    try:
        yield
    except StorageError:
        raise
    except Exception as error:
        raise StorageError(f"{action}: {type(error).__name__}: {error}") from error


@dataclass
class _Ownership:
    """What closing the storage releases; shared by a storage and its :meth:`~MongoDBStorage.namespace` views."""

    lease: connection_pool.ClientLease | None = None
    runtime: ClientRuntime | None = None
    closed: bool = False
    #: Per-key write locks: (loop, full key) -> [lock, users]; see MongoDBStorage._exclusive.
    key_locks: dict[tuple[asyncio.AbstractEventLoop, str], list[Any]] = field(default_factory=dict)


# -- the storage ------------------------------------------------------------------------------------


class MongoDBStorage:
    """Strands' :class:`~strands.storage.Storage` protocol on MongoDB, natively async.

    Usable standalone (from a connection string or a borrowed client) or on a factory's shared
    client (:meth:`from_factory`). Pass it to :class:`~strands.session.SnapshotSessionManager` or as
    an ``Agent``'s ``storage``.

    Args:
        connection_string: MongoDB URI. The storage then holds a lease on the process-wide shared
            client for that URI and options (the one :class:`MongoDBSessionManagerFactory` uses);
            :meth:`close` releases it.
        database_name: Database holding the collection.
        collection_name: Collection of the key/value documents. Large values live in the GridFS
            bucket ``<collection_name>.gridfs``.
        client: A ``pymongo.AsyncMongoClient``, Motor ``AsyncIOMotorClient`` or ``pymongo.MongoClient``
            to borrow instead; :meth:`close` leaves it open.
        namespace: A prefix for every key (``"tenant-a"`` stores ``k`` as ``tenant-a/k``). Like
            ``S3Storage``'s ``prefix``, it is invisible to callers; use :meth:`namespace` for the
            Strands-style scoped view.
        gridfs_threshold: Values whose size plus key length exceed this many bytes go to GridFS.
        search_strategy: Optional Strands search strategy; ``write`` then indexes every entry and
            ``search`` delegates to it instead of the built-in keyword scan.
        runtime: Run on this existing client runtime (as :meth:`from_factory` does); it is not closed.
        encryption: Encrypt every value in this process before it is stored, with one data key per
            storage collection named ``storage:<database>.<collection>`` (``docs/encryption.md``).
        **client_kwargs: Client options (``maxPoolSize``, ``tls``, ...), used with ``connection_string``.

    Raises:
        ValueError: The names or the threshold are not acceptable, or no client was given.
    """

    def __init__(
        self,
        connection_string: str | None = None,
        database_name: str = DEFAULT_DATABASE_NAME,
        collection_name: str = DEFAULT_STORAGE_COLLECTION,
        *,
        client: Any = None,
        namespace: str = "",
        gridfs_threshold: int = DEFAULT_GRIDFS_THRESHOLD,
        search_strategy: SearchStrategy[MongoDBStorage] | None = None,
        runtime: ClientRuntime | None = None,
        encryption: EncryptionOptions | None = None,
        **client_kwargs: Any,
    ) -> None:
        self.database_name = validate_name(database_name, "database_name")
        self.collection_name = validate_name(collection_name, "collection_name")
        if isinstance(gridfs_threshold, bool) or not isinstance(gridfs_threshold, int):
            raise TypeError(f"gridfs_threshold must be an int, got {type(gridfs_threshold).__name__}")
        if not 0 <= gridfs_threshold <= _MAX_GRIDFS_THRESHOLD:
            raise ValueError(f"gridfs_threshold must be between 0 and {_MAX_GRIDFS_THRESHOLD} bytes")
        self.gridfs_threshold = gridfs_threshold
        normalized = normalize_prefix(namespace).rstrip("/")
        self._prefix = f"{normalized}/" if normalized else ""
        self._search_strategy = search_strategy
        if runtime is not None:
            self._runtime = runtime
            self._ownership = _Ownership()
        elif client is not None:
            self._runtime = ClientRuntime(port=port_for(client), name="mongodb-storage")
            self._ownership = _Ownership(runtime=self._runtime)
        elif connection_string is not None:
            lease = connection_pool.acquire(connection_string, client_kwargs)
            self._runtime = lease.runtime
            self._ownership = _Ownership(lease=lease)
        else:
            raise ValueError("MongoDBStorage needs a connection_string, a client or a factory (from_factory)")
        self._cipher = cipher_for(encryption, self._runtime, self.database_name, self.collection_name)
        self._key_name = f"storage:{self.database_name}.{self.collection_name}"

    @classmethod
    def from_factory(
        cls,
        factory: MongoDBSessionManagerFactory | AsyncMongoDBSessionManagerFactory,
        *,
        collection_name: str = DEFAULT_STORAGE_COLLECTION,
        database_name: str | None = None,
        namespace: str = "",
        gridfs_threshold: int = DEFAULT_GRIDFS_THRESHOLD,
        search_strategy: SearchStrategy[MongoDBStorage] | None = None,
        encryption: EncryptionOptions | None = None,
    ) -> MongoDBStorage:
        """A storage on the factory's shared client (and home loop); no I/O.

        ``encryption`` defaults to the factory's.

        ``database_name`` defaults to the factory's. Closing the storage leaves the factory and its
        client open; closing the factory makes the storage fail with :class:`StorageError`.

        Raises:
            ClosedError: The factory is closed.
        """
        runtime = factory.runtime  # raises ClosedError when the factory is closed
        return cls(
            database_name=database_name or factory.database_name,
            collection_name=collection_name,
            namespace=namespace,
            gridfs_threshold=gridfs_threshold,
            search_strategy=search_strategy,
            runtime=runtime,
            encryption=factory.encryption if encryption is None else encryption,
        )

    # -- plumbing ---------------------------------------------------------------------------------

    @property
    def prefix(self) -> str:
        """The namespace prefix added to every key (``""`` or ending with ``/``)."""
        return self._prefix

    @property
    def bucket_name(self) -> str:
        """The GridFS bucket holding the values larger than :attr:`gridfs_threshold`."""
        return self.collection_name + _BUCKET_SUFFIX

    def _port(self) -> ClientPort:
        return self._runtime.port

    def _bucket(self, port: ClientPort) -> GridFSPort:
        return gridfs_bucket(port, self.database_name, self.bucket_name)

    async def _on_home(self, function: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``function`` on the client's home loop (see :meth:`ClientRuntime.run`), unless closed."""
        if self._ownership.closed:
            raise ClosedError("this MongoDBStorage is closed")
        return await self._runtime.run(function, *args, **kwargs)

    def _full_key(self, key: str) -> str:
        return self._prefix + normalize_key(key)

    def _relative(self, full_key: str) -> str:
        return full_key[len(self._prefix) :]

    # -- the Storage protocol ---------------------------------------------------------------------

    async def write(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, replacing any value (inline or in GridFS) atomically.

        Raises:
            StorageError: The key is invalid, ``data`` is not bytes-like, or the write failed.
        """
        full_key = self._full_key(key)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise StorageError(f"Storage values must be bytes, got {type(data).__name__}")
        payload = bytes(data)
        with _failing(f"Failed to write {key!r}"):
            await self._on_home(self._write_on_home, full_key, payload)
        if self._search_strategy is not None:
            try:
                await self._search_strategy.index(self, self._relative(full_key), payload)
            except Exception as error:
                raise StorageError(f"Wrote {key!r} but indexing failed") from error

    async def read(self, key: str) -> bytes | None:
        """The bytes stored under ``key``, or None if there are none.

        Raises:
            StorageError: The key is invalid or the read failed.
        """
        full_key = self._full_key(key)
        with _failing(f"Failed to read {key!r}"):
            return await self._on_home(self._read_on_home, full_key)

    async def delete(self, key: str) -> None:
        """Delete the value stored under ``key`` (and its GridFS file); a no-op if there is none.

        Raises:
            StorageError: The key is invalid or the delete failed.
        """
        full_key = self._full_key(key)
        with _failing(f"Failed to delete {key!r}"):
            await self._on_home(self._delete_on_home, full_key)

    async def list(self, query: str = "") -> builtins.list[str]:
        """The keys starting with ``query`` (full keys, namespace excluded), sorted ascending.

        ``""`` lists every key. The prefix is a plain string prefix after normalization: ``"a/"``
        matches ``a/b`` but not ``ab``; ``"a"`` matches both.

        Raises:
            StorageError: The prefix is invalid or the listing failed.
        """
        full_prefix = self._prefix + normalize_prefix(query)
        with _failing(f"Failed to list keys with prefix {query!r}"):
            keys = await self._on_home(self._list_on_home, full_prefix)
        return [self._relative(key) for key in keys]

    async def search(self, query: str) -> builtins.list[StorageSearchResult]:
        """Search the values under this storage's namespace, best match first.

        With a ``search_strategy`` this delegates to it. Otherwise it ranks exactly like Strands'
        default :class:`~strands.storage.search.KeywordSearchStrategy` (distinct query words, stop
        words excluded, found in the key without its extension or in the UTF-8 text of the value;
        ties in key order; each result carries its bytes), but fetches the values with one listing
        query plus one query per batch of up to 256 values (8 MiB) instead of a ``list`` plus one
        ``read`` per key. Values in GridFS are read one by one.

        Raises:
            StorageError: The scan failed.
        """
        if self._search_strategy is not None:
            return await self._search_strategy.search(self, query)
        query_tokens = tokenize(query) - STOP_WORDS
        if not query_tokens:
            return []
        with _failing(f"Failed to search for {query!r}"):
            entries = await self._on_home(self._scan_on_home, self._prefix)
        scored: builtins.list[StorageSearchResult] = []
        for full_key, data in entries:
            key = self._relative(full_key)
            content = data.decode("utf-8", errors="replace")
            score = token_overlap_score(query_tokens, f"{without_extension(key)} {content}")
            if score > 0:
                scored.append(StorageSearchResult(key=key, score=float(score), data=data))
        scored.sort(key=lambda result: result.score, reverse=True)
        return scored

    def namespace(self, prefix: str) -> MongoDBStorage:
        """A view of this storage with ``prefix`` added to every key (nested under this one's namespace).

        It shares the client, the search strategy and the lifetime of this storage. Strands uses such
        a view as is (``SnapshotSessionManager`` does not add its ``session/`` namespace on top).

        Raises:
            StorageError: The prefix is invalid.
        """
        normalized = normalize_prefix(prefix).rstrip("/")
        scoped = copy.copy(self)
        scoped._prefix = f"{self._prefix}{normalized}/" if normalized else self._prefix
        _compat.mark_namespaced(scoped)
        return scoped

    # -- maintenance ------------------------------------------------------------------------------

    async def purge_orphaned_files(self, older_than: timedelta = timedelta(hours=1)) -> int:
        """Delete GridFS files of this collection that no key points to; returns how many.

        Orphans only come from a write or delete interrupted between its steps (a crash, a lost
        connection). ``older_than`` spares the files of writes still in flight. The whole collection
        is examined, whatever this storage's namespace.

        Raises:
            StorageError: The purge failed.
        """
        with _failing("Failed to purge orphaned GridFS files"):
            return await self._on_home(self._purge_on_home, datetime.now(timezone.utc) - older_than)

    # -- lifetime ---------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once :meth:`close` or :meth:`aclose` was called (on this storage or the one it is a view of)."""
        return self._ownership.closed

    async def aclose(self) -> None:
        """Release the client (or lease) this storage owns; a borrowed client or a factory stays open.

        Views from :meth:`namespace` close with it. Idempotent.
        """
        ownership = self._ownership
        if ownership.closed:
            return
        ownership.closed = True
        if ownership.lease is not None:
            await ownership.lease.arelease()
        elif ownership.runtime is not None:
            await ownership.runtime.aclose()

    def close(self) -> None:
        """Blocking :meth:`aclose`, for scripts and threads."""
        ownership = self._ownership
        if ownership.closed:
            return
        ownership.closed = True
        if ownership.lease is not None:
            ownership.lease.release()
        elif ownership.runtime is not None:
            ownership.runtime.close()

    async def __aenter__(self) -> MongoDBStorage:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __enter__(self) -> MongoDBStorage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(database_name={self.database_name!r}, collection_name={self.collection_name!r}, "
            f"namespace={self._prefix!r})"
        )

    # -- on the home loop -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _exclusive(self, full_key: str) -> AsyncIterator[None]:
        """Serialize this process's writes and deletes of one key (on one loop).

        Across processes, MongoDB's atomic ``findAndModify`` keeps the value and the GridFS clean-up
        consistent; in-process the lock also makes the last call win and spares the server contention.
        """
        locks = self._ownership.key_locks
        slot = (asyncio.get_running_loop(), full_key)
        entry = locks.get(slot)
        if entry is None:
            entry = locks[slot] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del locks[slot]

    @must_finish  # a cancelled caller must not leave the new GridFS file, or the replaced one, behind
    async def _write_on_home(self, full_key: str, data: bytes) -> None:
        async with self._exclusive(full_key):
            await self._write_locked(full_key, data)

    async def _write_locked(self, full_key: str, data: bytes) -> None:
        port = self._port()
        document: Document = {"size": len(data), "updated_at": datetime.now(timezone.utc)}
        if len(data) + len(full_key.encode("utf-8")) <= self.gridfs_threshold:
            value = await self._cipher.seal_value(self._key_name, data)
            stored = value if isinstance(value, Binary) else Binary(value)
            old = await self._swap(port, full_key, {"data": stored, "gridfs_id": None, **document})
        else:
            bucket = self._bucket(port)
            payload, sealed = await self._cipher.seal_blob(self._key_name, data)
            if sealed:
                document["sealed"] = True  # the file holds ciphertext chunks
            # The new file first: until the pointer moves, readers still get the complete old value.
            file_id = await bucket.put(payload, filename=full_key, metadata={"key": full_key})
            try:
                old = await self._swap(port, full_key, {"data": None, "gridfs_id": file_id, **document})
            except Exception:
                await self._discard_unless_referenced(port, full_key, file_id)
                raise
        await self._delete_replaced_file(port, full_key, old)

    async def _swap(self, port: ClientPort, full_key: str, replacement: Document) -> Document | None:
        """Replace (or insert) the key's document atomically; the document it replaced, if any."""
        for attempt in range(2):
            try:
                return await port.collection(self.database_name, self.collection_name).find_one_and_replace(
                    {"_id": full_key}, replacement, {"gridfs_id": 1}, upsert=True
                )
            except DuplicateKeyError:
                # Two first writes of one key raced on the upsert; the retry replaces the winner's value.
                if attempt:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _discard_unless_referenced(self, port: ClientPort, full_key: str, file_id: Any) -> None:
        """Best-effort clean-up of a new file after a failed swap: the swap may have happened anyway."""
        try:
            if (
                await port.collection(self.database_name, self.collection_name).find_one(
                    {"_id": full_key, "gridfs_id": file_id}, {"_id": 1}
                )
                is None
            ):
                await self._bucket(port).delete(file_id)
        except Exception as error:  # left for purge_orphaned_files
            logger.warning(
                "key=<%s> | could not delete GridFS file %s after a failed write: %s", full_key, file_id, error
            )

    async def _delete_replaced_file(self, port: ClientPort, full_key: str, old: Document | None) -> None:
        """Delete the GridFS file a document pointed to before it was replaced or deleted."""
        file_id = None if old is None else old.get("gridfs_id")
        if file_id is None:
            return
        try:
            await self._bucket(port).delete(file_id)
        except Exception as error:  # the value itself is safe; the orphan is left for purge_orphaned_files
            logger.warning("key=<%s> | could not delete replaced GridFS file %s: %s", full_key, file_id, error)

    async def _read_on_home(self, full_key: str) -> bytes | None:
        port = self._port()
        documents = port.collection(self.database_name, self.collection_name)
        for _ in range(_READ_ATTEMPTS):
            document = await documents.find_one({"_id": full_key}, {"data": 1, "gridfs_id": 1, "sealed": 1})
            if document is None:
                return None
            file_id = document.get("gridfs_id")
            if file_id is None:
                data = document.get("data")
                if not isinstance(data, bytes):
                    raise StorageError(f"the document of {full_key!r} holds no value")
                data = await self._cipher.open_value(data)
                return data if type(data) is bytes else bytes(data)
            try:
                content = await self._bucket(port).get(file_id)
                return await self._cipher.open_blob(content, bool(document.get("sealed")))
            except (GridFSFileMissingError, CorruptGridFile):
                continue  # overwritten or deleted meanwhile: read the key's pointer again
        raise StorageError(f"the GridFS value of {full_key!r} kept changing or is damaged")

    @must_finish
    async def _delete_on_home(self, full_key: str) -> None:
        port = self._port()
        async with self._exclusive(full_key):
            old = await port.collection(self.database_name, self.collection_name).find_one_and_delete(
                {"_id": full_key}, {"gridfs_id": 1}
            )
            await self._delete_replaced_file(port, full_key, old)

    async def _list_on_home(self, full_prefix: str) -> builtins.list[str]:
        documents = self._port().collection(self.database_name, self.collection_name)
        found = await documents.find(prefix_filter(full_prefix), sort=[("_id", 1)], projection={"_id": 1})
        return [document["_id"] for document in found]

    async def _scan_on_home(self, full_prefix: str) -> builtins.list[tuple[str, bytes]]:
        """``(key, value)`` of every key under the prefix, in key order; keys that vanish are skipped."""
        port = self._port()
        documents = port.collection(self.database_name, self.collection_name)
        listing = await documents.find(
            prefix_filter(full_prefix), sort=[("_id", 1)], projection={"_id": 1, "size": 1, "gridfs_id": 1}
        )
        values: dict[str, bytes] = {}
        batch: builtins.list[str] = []
        batch_bytes = 0

        async def flush() -> None:
            nonlocal batch, batch_bytes
            if batch:
                found = await documents.find({"_id": {"$in": batch}}, projection={"data": 1})
                for doc in found:
                    if isinstance(doc.get("data"), bytes):
                        values[doc["_id"]] = await self._cipher.open_value(doc["data"])
            batch, batch_bytes = [], 0

        for entry in listing:
            key = entry["_id"]
            if entry.get("gridfs_id") is not None:
                try:
                    data = await self._read_on_home(key)
                except StorageError as error:  # like KeywordSearchStrategy: an unreadable entry is skipped
                    logger.debug("key=<%s>, error=<%s> | skipped unreadable entry", key, error)
                    continue
                if data is not None:
                    values[key] = data
                continue
            size = entry.get("size")
            size = size if isinstance(size, int) else 0
            if batch and (len(batch) >= _SEARCH_BATCH_DOCUMENTS or batch_bytes + size > _SEARCH_BATCH_BYTES):
                await flush()
            batch.append(key)
            batch_bytes += size
        await flush()
        return [(entry["_id"], values[entry["_id"]]) for entry in listing if entry["_id"] in values]

    async def _purge_on_home(self, cutoff: datetime) -> int:
        port = self._port()
        files = port.collection(self.database_name, self.bucket_name + ".files")
        candidates = await files.find({"uploadDate": {"$lt": cutoff}}, projection={"_id": 1, "metadata.key": 1})
        if not candidates:
            return 0
        keys = sorted({key for file in candidates if isinstance(key := _metadata_key(file), str)})
        documents = port.collection(self.database_name, self.collection_name)
        pointed = await documents.find({"_id": {"$in": keys}}, projection={"gridfs_id": 1}) if keys else []
        referenced = {document.get("gridfs_id") for document in pointed}
        bucket = self._bucket(port)
        purged = 0
        for file in candidates:
            if file["_id"] not in referenced and await bucket.delete(file["_id"]):
                purged += 1
        return purged


def _metadata_key(file: Mapping[str, Any]) -> object:
    metadata = file.get("metadata")
    return metadata.get("key") if isinstance(metadata, Mapping) else None
