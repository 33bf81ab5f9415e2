"""Message documents (``<collection>.messages``): inserts, updates and reads in id order.

Callers validate the ids and check that the repository may reach the session (see
:meth:`SessionDocuments.owns`) first; coroutines must run on the client's home loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo.errors import BulkWriteError, DuplicateKeyError

from ._codec import utc_now
from ._encryption import PlainCipher
from ._expiry import Expiry
from ._message_blobs import MessageBlobs
from ._namespace import SessionNamespace
from ._types import Document
from ._write_errors import storing
from .errors import DuplicateMessageError, NotFoundError
from .retention import live

_NO_ID = {"_id": 0}
_IN_ORDER = [("session_id", 1), ("agent_id", 1), ("message_id", 1)]


def missing(session_id: str, agent_id: str, message_id: int) -> NotFoundError:
    return NotFoundError(f"message {message_id} of agent {agent_id!r} in session {session_id!r} does not exist")


class MessageStore:
    """The message documents of one namespace; a message too large for one document keeps its
    content in GridFS (:class:`MessageBlobs`). Content is sealed by the ``cipher`` before anything
    is stored (so a GridFS blob holds ciphertext too) and opened after reading."""

    def __init__(
        self, namespace: SessionNamespace, blobs: MessageBlobs, expiry: Expiry, cipher: PlainCipher | None = None
    ) -> None:
        self.namespace = namespace
        self.blobs = blobs
        self.expiry = expiry
        self.cipher = cipher or PlainCipher()

    async def insert(self, session_id: str, agent_id: str, documents: Sequence[Document]) -> None:
        """Insert the documents in one round trip (ordered; stops at the first duplicate).

        Raises :class:`DuplicateMessageError` when a message id is stored already; the blobs of
        messages that were not stored are deleted again.
        """
        for document in documents:
            await self.cipher.seal_message(session_id, document)
        blobs = [await self.blobs.offload_if_large(document) for document in documents]
        try:
            with storing(f"message of agent {agent_id!r}", session_id, documents):
                if len(documents) == 1:
                    await self.namespace.messages.insert_one(documents[0])
                else:
                    await self.namespace.messages.insert_many(documents)
        except DuplicateKeyError as error:
            raise DuplicateMessageError(
                f"a message with this id already exists for agent {agent_id!r} in session {session_id!r}"
            ) from error
        except BulkWriteError as error:
            # insert_many reports a duplicate as a BulkWriteError; the messages before it were stored.
            write_errors = error.details.get("writeErrors") or []
            if not write_errors or any(item.get("code") != 11000 for item in write_errors):
                raise
            raise DuplicateMessageError(
                f"a message with this id already exists for agent {agent_id!r} in session {session_id!r} "
                f"({error.details.get('nInserted', 0)} message(s) before it were stored)"
            ) from error
        except BaseException:
            for blob_id in blobs:
                if blob_id is not None:
                    await self.blobs.delete(blob_id)
            raise
        finally:
            for document in documents:
                document.pop("_id", None)  # insert_one adds it to our dict; keep callers' data clean

    async def replace_content(self, session_id: str, agent_id: str, message_id: int, changes: Document) -> None:
        """Replace the message's content fields with ``changes``; :class:`NotFoundError` if it is missing."""
        await self.cipher.seal_message(session_id, changes)
        self.expiry.stamp(changes)  # a blob written now must expire with the message
        blob_id = await self.blobs.offload_if_large(changes)
        update: Document = (
            {"$set": changes} if blob_id is not None else {"$set": changes, "$unset": {"message_blob": ""}}
        )
        if not await self.update(session_id, agent_id, message_id, update, changes):
            raise missing(session_id, agent_id, message_id)

    async def update(self, session_id: str, agent_id: str, message_id: int, update: Document, stored: Any) -> bool:
        """Apply ``update`` to the message (``stored``: what it writes, for error messages); False if
        there is no such message."""
        if isinstance(update.get("$set"), dict):
            await self.cipher.seal_message(session_id, update["$set"])
        with storing(f"message {message_id} of agent {agent_id!r}", session_id, stored):
            result = await self.namespace.messages.update_one(
                {"session_id": session_id, "agent_id": agent_id, "message_id": message_id}, update
            )
        return bool(result.matched_count)

    async def last_id(self, session_id: str, agent_id: str) -> int | None:
        """The highest stored message id of the agent, or None (one indexed read)."""
        documents = await self.namespace.messages.find(
            {"session_id": session_id, "agent_id": agent_id},
            sort=[("session_id", -1), ("agent_id", -1), ("message_id", -1)],
            limit=1,
            projection={"_id": 0, "message_id": 1},
        )
        return int(documents[0]["message_id"]) if documents else None

    async def last(self, session_id: str, agent_id: str) -> Document | None:
        """The agent's last stored message document, or None (one indexed read)."""
        documents = await self.namespace.messages.find(
            {"session_id": session_id, "agent_id": agent_id},
            sort=[("session_id", -1), ("agent_id", -1), ("message_id", -1)],
            limit=1,
            projection=_NO_ID,
        )
        return await self.blobs.inflate(documents[0]) if documents else None

    async def read(self, session_id: str, agent_id: str, message_id: int) -> Document | None:
        scope = {"session_id": session_id, "agent_id": agent_id, "message_id": message_id, **live(utc_now())}
        document = await self.namespace.messages.find_one(scope, _NO_ID)
        return None if document is None else await self._open(session_id, document)

    async def list(self, session_id: str, agent_id: str, offset: int, limit: int | None) -> list[Document]:
        """The live messages in id order, skipping ``offset`` and returning at most ``limit``."""
        documents = await self.namespace.messages.find(
            {"session_id": session_id, "agent_id": agent_id, **live(utc_now())},
            sort=_IN_ORDER,
            skip=offset,
            limit=limit or 0,
            projection=_NO_ID,
        )
        return [await self._open(session_id, document) for document in documents]

    async def _open(self, session_id: str, document: Document) -> Document:
        return await self.cipher.open_message(session_id, await self.blobs.inflate(document))

    async def count(self, session_id: str, agent_id: str) -> int:
        scope = {"session_id": session_id, "agent_id": agent_id, **live(utc_now())}
        return await self.namespace.messages.count_documents(scope)
