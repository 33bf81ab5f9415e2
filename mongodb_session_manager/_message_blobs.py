"""Messages too large for one BSON document: their content goes to GridFS."""

from __future__ import annotations

import logging
from typing import Any

import bson

from ._namespace import SessionNamespace
from ._types import Document
from ._write_errors import encoded_size
from .retention import EXPIRES_AT

logger = logging.getLogger(__name__)

# Messages whose document would be larger than this go through GridFS (the BSON limit is 16 MiB).
LARGE_MESSAGE_BYTES = 15 * 1024 * 1024


class MessageBlobs:
    """Offloads the content of large messages to the namespace's GridFS bucket and brings it back.

    A blob carries the message's ``session_id``, ``agent_id`` and expiry in its metadata, so that it
    is deleted and expires with its message.
    """

    def __init__(self, namespace: SessionNamespace) -> None:
        self.namespace = namespace

    async def offload_if_large(self, document: Document) -> Any:
        """Move the content of a message too large for one BSON document to GridFS, in place.

        Returns the GridFS file id, or None when the message fits (the usual case).
        """
        size = encoded_size(f"message of agent {document['agent_id']!r}", document["session_id"], document)
        if size <= LARGE_MESSAGE_BYTES:
            return None
        payload = bson.encode({"message": document["message"]})
        metadata: Document = {"session_id": document["session_id"], "agent_id": document["agent_id"]}
        if EXPIRES_AT in document:
            metadata[EXPIRES_AT] = document[EXPIRES_AT]
        blob_id = await self.namespace.blobs.put(
            payload,
            filename=f"{document['session_id']}/{document['agent_id']}/{document['message_id']}",
            metadata=metadata,
        )
        logger.debug("session_id=<%s> | stored a %d-byte message through GridFS", document["session_id"], size)
        document["message"] = None
        document["message_blob"] = blob_id
        return blob_id

    async def inflate(self, document: Document) -> Document:
        """Bring back the content of a message stored through GridFS."""
        blob_id = document.get("message_blob")
        if blob_id is not None:
            document["message"] = bson.decode(await self.namespace.blobs.get(blob_id))["message"]
        return document

    async def delete(self, blob_id: Any) -> None:
        await self.namespace.blobs.delete(blob_id)

    async def delete_where(self, query: Document) -> int:
        """Delete the blobs whose ``files`` document matches ``query``; returns how many."""
        files = await self.namespace.blob_files.find(query, projection={"_id": 1})
        for file in files:
            await self.namespace.blobs.delete(file["_id"])
        return len(files)
