"""Publish a message to an SNS topic or phone number (blocking; needs the ``[aws]`` extra).

The region defaults to ``AWS_DEFAULT_REGION``, else ``eu-west-1``; credentials and endpoint come
from boto3's usual sources (environment, config files, instance role; ``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidInputError
from ._aws import cached_client, raise_translated


def _get_sns_client(region_name: str | None = None) -> Any:
    """The shared SNS client of ``region_name`` (the name the earlier library used for it)."""
    return cached_client("sns", region_name)


def publish_message(
    topic_arn: str | None = None,
    phone_number: str | None = None,
    message: str | Mapping[str, Any] | None = None,
    subject: str | None = None,
    message_attributes: Mapping[str, Mapping[str, Any]] | None = None,
    message_structure: str | None = None,
    message_deduplication_id: str | None = None,
    message_group_id: str | None = None,
    region_name: str | None = None,
) -> dict[str, Any]:
    """Publish ``message`` to ``topic_arn`` or, as an SMS, to ``phone_number`` (exactly one of them).

    Args:
        topic_arn: The topic to publish to.
        phone_number: The phone number to text instead of a topic.
        message: The text, or a dict sent as JSON.
        subject: Subject line (email subscriptions).
        message_attributes: SNS message attributes, e.g. ``{"k": {"DataType": "String", "StringValue": "v"}}``.
        message_structure: ``"json"`` when ``message`` holds one text per protocol.
        message_deduplication_id: For FIFO topics.
        message_group_id: For FIFO topics.
        region_name: AWS region of the topic.

    Returns:
        SNS's answer (``MessageId``, and ``SequenceNumber`` for FIFO topics).

    Raises:
        InvalidInputError: Neither or both targets, or an empty message (nothing is sent).
        NotificationError: The call failed; :class:`NotificationTargetNotFoundError` (a
            ``ValueError``) when the topic does not exist, :class:`NotificationAccessDeniedError`
            (a ``PermissionError``) when publishing is not allowed.
    """
    if not topic_arn and not phone_number:
        raise InvalidInputError("give topic_arn or phone_number")
    if topic_arn and phone_number:
        raise InvalidInputError("give only one of topic_arn and phone_number")
    if not message:
        raise InvalidInputError("the message must not be empty")
    body = json.dumps(message, ensure_ascii=False) if isinstance(message, Mapping) else message
    optional = {
        "TopicArn": topic_arn,
        "PhoneNumber": phone_number,
        "Subject": subject,
        "MessageAttributes": dict(message_attributes) if message_attributes else None,
        "MessageStructure": message_structure,
        "MessageGroupId": message_group_id,
        "MessageDeduplicationId": message_deduplication_id,
    }
    params: dict[str, Any] = {"Message": body, **{key: value for key, value in optional.items() if value is not None}}
    client = _get_sns_client(region_name)
    try:
        response: dict[str, Any] = client.publish(**params)
    except Exception as error:
        raise_translated(error, f"SNS topic {topic_arn}" if topic_arn else "the phone number", "sns:Publish")
    return response
