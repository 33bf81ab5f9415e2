"""Errors raised by the AWS hooks and their helpers; all derive from :class:`MongoDBSessionError`.

Each also derives from the built-in exception the earlier sync-only library raised in its place
(``ImportError``, ``ValueError``, ``PermissionError``), so code written for it keeps catching them.
"""

from __future__ import annotations

from ..errors import MongoDBSessionError


class AWSHooksUnavailableError(MongoDBSessionError, ImportError):
    """boto3 is not installed: ``pip install 'mongodb-session-manager[aws]'``."""


class NotificationError(MongoDBSessionError):
    """An AWS call behind a notification failed. ``code`` is AWS's error code, when it gave one."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class NotificationTargetNotFoundError(NotificationError, ValueError):
    """The SNS topic or SQS queue does not exist."""


class NotificationAccessDeniedError(NotificationError, PermissionError):
    """The credentials in use may not publish or send to the target."""


class InvalidNotificationError(NotificationError, ValueError):
    """AWS rejected the request's parameters or content."""
