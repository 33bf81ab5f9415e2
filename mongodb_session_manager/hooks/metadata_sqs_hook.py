"""Metadata changes to an Amazon SQS queue, e.g. for server-sent events (needs the ``[aws]`` extra).

``create_metadata_hook(queue_url, metadata_fields)`` gives a ``metadata_hook``: each update or
delete is stored first, then a message is sent in the background::

    {"session_id": "...", "event": "metadata_update", "operation": "update" | "delete",
     "metadata": {...}, "timestamp": "<ISO 8601, UTC>"}

``metadata`` holds the updated keys (only those in ``metadata_fields`` when given) or, for a
delete, the deleted keys as null. Message attributes: ``session_id`` and ``event``. Reads send nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import MongoDBSessionError
from ._base import NotificationHook, utc_timestamp
from ._delivery import Job
from ._metadata_change import METADATA_EVENT, change_of, encode, operation_arguments, selected_fields
from .utils_sqs import send_message

logger = logging.getLogger(__name__)


class MetadataSQSHook(NotificationHook):
    """A ``metadata_hook`` that sends each stored metadata update or delete to an SQS queue."""

    def __init__(self, queue_url: str, metadata_fields: Sequence[str] | None = None) -> None:
        """Send metadata changes to ``queue_url``.

        Args:
            queue_url: The queue's URL.
            metadata_fields: The metadata keys to send; empty or None sends every changed key.

        Raises:
            AWSHooksUnavailableError: boto3 is not installed (an ``ImportError`` too).
        """
        super().__init__("MetadataSQSHook")
        self.queue_url = queue_url
        self.metadata_fields = list(metadata_fields or [])
        logger.info("MetadataSQSHook: sending to %s", queue_url)

    def _arguments(self, action: str, kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
        return operation_arguments(action, kwargs)

    def _notification(
        self, original_func: Callable[..., Any], action: str, session_id: str, kwargs: Mapping[str, Any]
    ) -> tuple[str, Job] | None:
        change = change_of(action, kwargs)
        return None if change is None else self._prepared(session_id, change, action)

    def _prepared(self, session_id: str, change: Mapping[str, Any], operation: str) -> tuple[str, Job]:
        metadata = selected_fields(change, self.metadata_fields)
        body = encode(
            {
                "session_id": session_id,
                "event": METADATA_EVENT,
                "operation": operation,
                "metadata": metadata,
                "timestamp": utc_timestamp(),
            }
        )

        def send() -> None:
            send_message(
                queue_url=self.queue_url,
                message_body=body,
                message_attributes={
                    "session_id": {"DataType": "String", "StringValue": session_id},
                    "event": {"DataType": "String", "StringValue": METADATA_EVENT},
                },
            )
            logger.info(
                "MetadataSQSHook: metadata %s of session %r sent (fields %s)", operation, session_id, sorted(metadata)
            )

        return f"metadata {operation} to SQS", send

    async def on_metadata_change(self, session_id: str, metadata: Mapping[str, Any], operation: str) -> None:
        """Send the message for a change now and wait for it (failures are logged, not raised)."""
        self._queue(session_id, self._prepared(session_id, metadata, operation))
        await self.flush_async(session_id=session_id)


def create_metadata_hook(queue_url: str, metadata_fields: Sequence[str] | None = None) -> MetadataSQSHook | None:
    """A :class:`MetadataSQSHook` to pass as ``metadata_hook=``; same arguments.

    Returns None (and logs why at WARNING) when the hook cannot be built, e.g. boto3 is not
    installed or the endpoint is not a valid URL, as the earlier library did.
    """
    try:
        return MetadataSQSHook(queue_url, metadata_fields)
    except MongoDBSessionError as error:
        logger.warning("metadata SQS hook not created: %s", error)
        return None
