"""Metadata changes pushed to a WebSocket client through the API Gateway Management API (needs the
``[aws]`` extra).

``create_metadata_hook(api_gateway_endpoint, metadata_fields, region)`` gives a ``metadata_hook``:
each update or delete is stored first, then, in the background, ``post_to_connection`` sends::

    {"event": "metadata_update", "session_id": "...", "operation": "update" | "delete",
     "metadata": {...}, "timestamp": "<ISO 8601, UTC>"}

to the connection id held in the session's metadata under ``connection_id`` (the one in the update
itself, else the one stored when the push is sent, read through the session manager in the
background). ``metadata`` holds the changed keys (only those in ``metadata_fields`` when given;
never ``connection_id`` otherwise); deleted keys are null. A session without a connection id, or
a connection that is gone, is logged at INFO and skipped. Reads send nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import MongoDBSessionError
from ._aws import new_client
from ._base import NotificationHook, manager_of, utc_timestamp
from ._delivery import Job
from ._metadata_change import METADATA_EVENT, change_of, encode, operation_arguments, selected_fields
from .errors import InvalidNotificationError

logger = logging.getLogger(__name__)

#: The metadata key that holds the WebSocket connection id.
CONNECTION_ID_FIELD = "connection_id"


class MetadataWebSocketHook(NotificationHook):
    """A ``metadata_hook`` that pushes each stored metadata update or delete to the session's WebSocket."""

    def __init__(
        self,
        api_gateway_endpoint: str,
        metadata_fields: Sequence[str] | None = None,
        region: str = "us-east-1",
    ) -> None:
        """Push metadata changes through the API Gateway Management API at ``api_gateway_endpoint``.

        Args:
            api_gateway_endpoint: The WebSocket API's connection URL, e.g.
                ``https://abc123.execute-api.us-east-1.amazonaws.com/prod``.
            metadata_fields: The metadata keys to send; None sends every changed key but ``connection_id``.
            region: The API's AWS region.

        Raises:
            AWSHooksUnavailableError: boto3 is not installed (an ``ImportError`` too).
            InvalidNotificationError: ``api_gateway_endpoint`` is not a valid endpoint URL (a ``ValueError``).
        """
        super().__init__("MetadataWebSocketHook")
        if not isinstance(api_gateway_endpoint, str) or not api_gateway_endpoint.startswith(("https://", "http://")):
            raise InvalidNotificationError("api_gateway_endpoint must be an http(s) URL")
        self.api_gateway_endpoint = api_gateway_endpoint
        self.metadata_fields = list(metadata_fields or [])
        self.region = region
        #: The ``apigatewaymanagementapi`` boto3 client (thread-safe).
        self.client = new_client("apigatewaymanagementapi", region, endpoint_url=api_gateway_endpoint)
        logger.info("MetadataWebSocketHook: pushing through %s (%s)", api_gateway_endpoint, region)

    def _arguments(self, action: str, kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
        return operation_arguments(action, kwargs)

    def _notification(
        self, original_func: Callable[..., Any], action: str, session_id: str, kwargs: Mapping[str, Any]
    ) -> tuple[str, Job] | None:
        change = change_of(action, kwargs)
        if change is None:
            return None
        connection_id = change.get(CONNECTION_ID_FIELD) if action == "update" else None
        manager = manager_of(original_func, kwargs)
        return self._prepared(session_id, change, action, lambda: connection_id or _stored_connection_id(manager))

    def _prepared(
        self, session_id: str, change: Mapping[str, Any], operation: str, connection_id: Callable[[], object]
    ) -> tuple[str, Job]:
        data = encode(
            {
                "event": METADATA_EVENT,
                "session_id": session_id,
                "operation": operation,
                "metadata": selected_fields(change, self.metadata_fields, exclude=CONNECTION_ID_FIELD),
                "timestamp": utc_timestamp(),
            }
        ).encode("utf-8")
        return f"metadata {operation} to WebSocket", lambda: self._push(session_id, operation, data, connection_id())

    def _push(self, session_id: str, operation: str, data: bytes, connection_id: object) -> None:
        if not isinstance(connection_id, str) or not connection_id:
            logger.info("MetadataWebSocketHook: session %r has no connection_id; nothing pushed", session_id)
            return
        from botocore.exceptions import ClientError

        try:
            self.client.post_to_connection(ConnectionId=connection_id, Data=data)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "GoneException":
                logger.info(
                    "MetadataWebSocketHook: connection %r of session %r is gone; nothing pushed",
                    connection_id,
                    session_id,
                )
                return
            raise
        logger.info(
            "MetadataWebSocketHook: metadata %s of session %r pushed to connection %r",
            operation,
            session_id,
            connection_id,
        )

    async def on_metadata_change(self, session_id: str, metadata: Mapping[str, Any], operation: str) -> None:
        """Push the message for a change now and wait for it (failures are logged, not raised); the
        connection id is ``metadata["connection_id"]``."""
        connection_id = metadata.get(CONNECTION_ID_FIELD)
        self._queue(session_id, self._prepared(session_id, metadata, operation, lambda: connection_id))
        await self.flush_async(session_id=session_id)


def _stored_connection_id(manager: Any) -> object:
    """``connection_id`` of the session's stored metadata, read through the session manager."""
    get_metadata = getattr(manager, "get_metadata", None)
    if get_metadata is None:
        return None
    document = get_metadata()
    if not isinstance(document, Mapping):
        return None
    # The manager answers {"_id": ..., "metadata": {...}} (the earlier library's shape) or the metadata itself.
    inner = document.get("metadata")
    metadata = inner if "_id" in document and isinstance(inner, Mapping) else document
    return metadata.get(CONNECTION_ID_FIELD)


def create_metadata_hook(
    api_gateway_endpoint: str,
    metadata_fields: Sequence[str] | None = None,
    region: str = "eu-west-1",
) -> MetadataWebSocketHook | None:
    """A :class:`MetadataWebSocketHook` to pass as ``metadata_hook=``; same arguments (note the
    region default, ``eu-west-1``, differs from the class's, as in the earlier library).

    Returns None (and logs why at WARNING) when the hook cannot be built, e.g. boto3 is not
    installed or the endpoint is not a valid URL, as the earlier library did.
    """
    try:
        return MetadataWebSocketHook(api_gateway_endpoint, metadata_fields, region)
    except MongoDBSessionError as error:
        logger.warning("metadata WebSocket hook not created: %s", error)
        return None
