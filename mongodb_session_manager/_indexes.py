"""Index definitions, created once per client and namespace.

The first caller for a (client, database, collection, index set) creates the indexes; concurrent
callers, on any loop or thread, wait for that same attempt. A failed attempt is forgotten so the
next call retries.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
import weakref
from collections.abc import Sequence

from pymongo import ASCENDING, IndexModel

from ._codec import FEEDBACK_SUFFIX, MESSAGES_SUFFIX
from ._driver import ClientPort
from .retention import EXPIRES_AT, TTL_INDEX_NAME

MESSAGE_INDEX_NAME = "session_agent_message"
# Usage and guardrail analytics (docs/usage-and-audit.md): time ranges of model calls, per application,
# and of redactions. Sparse: only messages carrying the field are indexed.
USAGE_INDEX_NAME = "usage_at"
USAGE_APPLICATION_INDEX_NAME = "usage_application_at"
REDACTION_INDEX_NAME = "redaction_timestamp"

_Key = tuple[str, str, tuple[str, ...], bool, bool]
# Keyed by the client object's identity (PyMongo clients compare equal when they share hosts, so a
# WeakKeyDictionary would merge distinct clients); an entry goes away with its client.
_registry: dict[int, dict[_Key, concurrent.futures.Future[None]]] = {}
_registry_lock = threading.Lock()


def _forget(client_id: int) -> None:
    # Runs from a weakref finalizer, possibly inside a garbage collection triggered while this thread
    # holds _registry_lock: taking the lock here could deadlock. dict.pop is atomic on its own.
    _registry.pop(client_id, None)


def ttl_indexes(ttl: bool) -> list[IndexModel]:
    """The TTL index removing expired documents (``expires_at`` is the deadline, hence 0 seconds)."""
    return [IndexModel([(EXPIRES_AT, ASCENDING)], name=TTL_INDEX_NAME, expireAfterSeconds=0)] if ttl else []


def message_indexes(ttl: bool = False) -> list[IndexModel]:
    return [
        IndexModel(
            [("session_id", ASCENDING), ("agent_id", ASCENDING), ("message_id", ASCENDING)],
            unique=True,
            name=MESSAGE_INDEX_NAME,
        ),
        IndexModel([("usage.at", ASCENDING)], name=USAGE_INDEX_NAME, sparse=True),
        IndexModel(
            [("usage.application", ASCENDING), ("usage.at", ASCENDING)], name=USAGE_APPLICATION_INDEX_NAME, sparse=True
        ),
        IndexModel([("redaction.timestamp", ASCENDING)], name=REDACTION_INDEX_NAME, sparse=True),
        *ttl_indexes(ttl),
    ]


def feedback_indexes(ttl: bool = False) -> list[IndexModel]:
    return [
        IndexModel([("session_id", ASCENDING), ("created_at", ASCENDING)], name="session_created_at"),
        *ttl_indexes(ttl),
    ]


def session_indexes(metadata_fields: Sequence[str], ttl: bool = False, application: bool = False) -> list[IndexModel]:
    return [
        *(IndexModel([(f"metadata.{field}", ASCENDING)], name=f"metadata_{field}") for field in metadata_fields),
        *ttl_indexes(ttl),
        *([IndexModel([("application_name", ASCENDING)], name="application_name")] if application else []),
    ]


async def ensure_indexes(
    port: ClientPort,
    database: str,
    collection: str,
    metadata_fields: Sequence[str],
    *,
    ttl: bool = False,
    application: bool = False,
) -> None:
    """Create the library's indexes for this namespace unless this client already did.

    With ``ttl``, also the TTL indexes that remove expired sessions, messages and feedback; with
    ``application``, the index on the sessions' ``application_name``.

    The creation runs as its own task: a caller cancelled while it waits (a disconnected client, an
    ``asyncio.timeout``) stops waiting, but neither cancels nor fails the creation the other callers
    share. The creation completes or fails for its own reasons; a failure is forgotten so the next
    call retries.
    """
    key: _Key = (database, collection, tuple(sorted(metadata_fields)), ttl, application)
    with _registry_lock:
        per_client = _registry.get(id(port.client))
        if per_client is None:
            per_client = _registry[id(port.client)] = {}
            weakref.finalize(port.client, _forget, id(port.client))
        future = per_client.get(key)
        if future is None:
            future = per_client[key] = concurrent.futures.Future()
            task = asyncio.get_running_loop().create_task(
                _create(port, database, collection, metadata_fields, ttl, application),
                name=f"create indexes of {collection}",
            )
            _creating.add(task)
            task.add_done_callback(functools.partial(_settle, future, per_client, key))
    # shield: cancelling this waiter must not cancel the future every other waiter shares (wrap_future
    # would propagate the cancellation to it).
    await asyncio.shield(asyncio.wrap_future(future))


# Strong references to running creations: the loop keeps only weak ones, and no caller holds the task.
_creating: set[asyncio.Task[None]] = set()


async def _create(
    port: ClientPort, database: str, collection: str, metadata_fields: Sequence[str], ttl: bool, application: bool
) -> None:
    sessions = session_indexes(metadata_fields, ttl, application)
    await asyncio.gather(
        port.collection(database, collection + MESSAGES_SUFFIX).create_indexes(message_indexes(ttl)),
        port.collection(database, collection + FEEDBACK_SUFFIX).create_indexes(feedback_indexes(ttl)),
        *([port.collection(database, collection).create_indexes(sessions)] if sessions else []),
    )


def _settle(
    future: concurrent.futures.Future[None],
    per_client: dict[_Key, concurrent.futures.Future[None]],
    key: _Key,
    task: asyncio.Task[None],
) -> None:
    """Hand the creation's outcome to its waiters; forget a failed one so that the next call retries."""
    _creating.discard(task)
    error: BaseException | None
    if task.cancelled():  # only when the loop itself shuts down
        error = asyncio.CancelledError("index creation was cancelled by its event loop shutting down")
    else:
        error = task.exception()
    if error is None:
        future.set_result(None)
        return
    with _registry_lock:
        if per_client.get(key) is future:
            del per_client[key]
    future.set_exception(error)
    # Mark retrieved so an exception no waiter awaited (all were cancelled) is not logged as "never retrieved".
    future.exception()
