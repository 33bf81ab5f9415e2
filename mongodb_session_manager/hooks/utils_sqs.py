"""Send a message to an SQS queue (blocking; needs the ``[aws]`` extra).

The region defaults to ``AWS_DEFAULT_REGION``, else ``eu-west-1``; credentials and endpoint come
from boto3's usual sources (environment, config files, instance role; ``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidInputError
from ._aws import cached_client, raise_translated

MAX_DELAY_SECONDS = 900


def _get_sqs_client(region_name: str | None = None) -> Any:
    """The shared SQS client of ``region_name`` (the name the earlier library used for it)."""
    return cached_client("sqs", region_name)


def send_message(
    queue_url: str,
    message_body: str | Mapping[str, Any],
    message_attributes: Mapping[str, Mapping[str, Any]] | None = None,
    delay_seconds: int = 0,
    message_group_id: str | None = None,
    message_deduplication_id: str | None = None,
    region_name: str | None = None,
) -> dict[str, Any]:
    """Send ``message_body`` to the queue at ``queue_url``.

    Args:
        queue_url: The queue's URL.
        message_body: The text, or a dict sent as JSON.
        message_attributes: SQS message attributes, e.g. ``{"k": {"DataType": "String", "StringValue": "v"}}``.
        delay_seconds: Seconds (0-900) before the message becomes visible.
        message_group_id: For FIFO queues.
        message_deduplication_id: For FIFO queues.
        region_name: AWS region of the queue.

    Returns:
        SQS's answer (``MessageId``, ``MD5OfMessageBody``, ...).

    Raises:
        InvalidInputError: ``delay_seconds`` out of range (nothing is sent).
        NotificationError: The call failed; :class:`NotificationTargetNotFoundError` (a
            ``ValueError``) when the queue does not exist, :class:`NotificationAccessDeniedError`
            (a ``PermissionError``) when sending is not allowed.
    """
    if not 0 <= delay_seconds <= MAX_DELAY_SECONDS:
        raise InvalidInputError(f"delay_seconds must be between 0 and {MAX_DELAY_SECONDS}")
    body = json.dumps(message_body, ensure_ascii=False) if isinstance(message_body, Mapping) else message_body
    params: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": body, "DelaySeconds": delay_seconds}
    if message_attributes:
        params["MessageAttributes"] = dict(message_attributes)
    if message_group_id:
        params["MessageGroupId"] = message_group_id
    if message_deduplication_id:
        params["MessageDeduplicationId"] = message_deduplication_id
    client = _get_sqs_client(region_name)
    try:
        response: dict[str, Any] = client.send_message(**params)
    except Exception as error:
        raise_translated(error, f"SQS queue {queue_url}", "sqs:SendMessage")
    return response
