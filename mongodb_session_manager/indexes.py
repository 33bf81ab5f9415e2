"""Index definitions, created once per client and namespace.

The first caller for a (client, database, collection, index set) creates the indexes; concurrent
callers, on any loop or thread, wait for that same attempt. A failed attempt is forgotten so the
next call retries.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import weakref
from collections.abc import Sequence

from pymongo import ASCENDING, IndexModel

from ._driver import ClientPort
from .codec import FEEDBACK_SUFFIX, MESSAGES_SUFFIX

MESSAGE_INDEX_NAME = "session_agent_message"

_Key = tuple[str, str, tuple[str, ...]]
# Keyed by the client object's identity (PyMongo clients compare equal when they share hosts, so a
# WeakKeyDictionary would merge distinct clients); an entry goes away with its client.
_registry: dict[int, dict[_Key, concurrent.futures.Future[None]]] = {}
_registry_lock = threading.Lock()


def _forget(client_id: int) -> None:
    # Runs from a weakref finalizer, possibly inside a garbage collection triggered while this thread
    # holds _registry_lock: taking the lock here could deadlock. dict.pop is atomic on its own.
    _registry.pop(client_id, None)


def message_indexes() -> list[IndexModel]:
    return [
        IndexModel(
            [("session_id", ASCENDING), ("agent_id", ASCENDING), ("message_id", ASCENDING)],
            unique=True,
            name=MESSAGE_INDEX_NAME,
        )
    ]


def feedback_indexes() -> list[IndexModel]:
    return [IndexModel([("session_id", ASCENDING), ("created_at", ASCENDING)], name="session_created_at")]


def session_indexes(metadata_fields: Sequence[str]) -> list[IndexModel]:
    return [IndexModel([(f"metadata.{field}", ASCENDING)], name=f"metadata_{field}") for field in metadata_fields]


async def ensure_indexes(port: ClientPort, database: str, collection: str, metadata_fields: Sequence[str]) -> None:
    """Create the library's indexes for this namespace unless this client already did."""
    key: _Key = (database, collection, tuple(sorted(metadata_fields)))
    with _registry_lock:
        per_client = _registry.get(id(port.client))
        if per_client is None:
            per_client = _registry[id(port.client)] = {}
            weakref.finalize(port.client, _forget, id(port.client))
        future = per_client.get(key)
        owner = future is None
        if future is None:
            future = per_client[key] = concurrent.futures.Future()
    if not owner:
        await asyncio.wrap_future(future)
        return
    try:
        await asyncio.gather(
            port.collection(database, collection + MESSAGES_SUFFIX).create_indexes(message_indexes()),
            port.collection(database, collection + FEEDBACK_SUFFIX).create_indexes(feedback_indexes()),
            *(
                [port.collection(database, collection).create_indexes(session_indexes(metadata_fields))]
                if metadata_fields
                else []
            ),
        )
    except BaseException as error:
        with _registry_lock:
            per_client.pop(key, None)
        future.set_exception(error)
        # Mark retrieved so an exception no other caller awaited is not logged as "never retrieved".
        future.exception()
        raise
    future.set_result(None)
