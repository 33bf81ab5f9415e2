"""Hooks: the ``metadata_hook`` / ``feedback_hook`` contract and the AWS notification hooks.

The contract (:func:`call_with_hook`) is described in :mod:`._contract`. The AWS hooks need the
``[aws]`` extra (boto3); this package imports without it, and constructing a hook then raises
:class:`AWSHooksUnavailableError`:

- :mod:`.feedback_sns_hook`: :class:`FeedbackSNSHook` / ``create_feedback_hook`` (SNS, by rating)
- :mod:`.metadata_sqs_hook`: :class:`MetadataSQSHook` / ``create_metadata_hook`` (SQS)
- :mod:`.metadata_websocket_hook`: :class:`MetadataWebSocketHook` / ``create_metadata_hook``
  (API Gateway WebSocket connections)
- :mod:`.utils_sns` (``publish_message``) and :mod:`.utils_sqs` (``send_message``)
"""

from __future__ import annotations

from . import _aws
from ._base import NotificationHook, flush_session, flush_session_async
from ._contract import Hook, call_with_hook
from .errors import (
    AWSHooksUnavailableError,
    InvalidNotificationError,
    NotificationAccessDeniedError,
    NotificationError,
    NotificationTargetNotFoundError,
)
from .feedback_sns_hook import FeedbackSNSHook, create_feedback_hook
from .metadata_sqs_hook import MetadataSQSHook
from .metadata_sqs_hook import create_metadata_hook as create_metadata_sqs_hook
from .metadata_websocket_hook import MetadataWebSocketHook
from .metadata_websocket_hook import create_metadata_hook as create_metadata_websocket_hook

#: The earlier library's flags: whether each hook can be built (boto3 installed), read at import.
feedback_sns_available = metadata_sqs_available = metadata_websocket_available = _aws.boto3_available()


def is_feedback_sns_hook_available() -> bool:
    """Whether :class:`FeedbackSNSHook` can be built (boto3, the ``[aws]`` extra, is installed)."""
    return _aws.boto3_available()


def is_metadata_sqs_hook_available() -> bool:
    """Whether :class:`MetadataSQSHook` can be built (boto3, the ``[aws]`` extra, is installed)."""
    return _aws.boto3_available()


def is_metadata_websocket_hook_available() -> bool:
    """Whether :class:`MetadataWebSocketHook` can be built (boto3, the ``[aws]`` extra, is installed)."""
    return _aws.boto3_available()


__all__ = [
    "AWSHooksUnavailableError",
    "FeedbackSNSHook",
    "Hook",
    "InvalidNotificationError",
    "MetadataSQSHook",
    "MetadataWebSocketHook",
    "NotificationAccessDeniedError",
    "NotificationError",
    "NotificationHook",
    "NotificationTargetNotFoundError",
    "call_with_hook",
    "create_feedback_hook",
    "create_metadata_sqs_hook",
    "create_metadata_websocket_hook",
    "feedback_sns_available",
    "flush_session",
    "flush_session_async",
    "is_feedback_sns_hook_available",
    "is_metadata_sqs_hook_available",
    "is_metadata_websocket_hook_available",
    "metadata_sqs_available",
    "metadata_websocket_available",
]
