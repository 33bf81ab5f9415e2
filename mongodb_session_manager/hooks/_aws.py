"""boto3 behind the ``[aws]`` extra: availability, client creation and error translation.

Nothing here imports boto3 until a client is asked for, so the package imports (and the
``is_*_available`` checks answer) without it.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from typing import Any, NoReturn

from .errors import (
    AWSHooksUnavailableError,
    InvalidNotificationError,
    NotificationAccessDeniedError,
    NotificationError,
    NotificationTargetNotFoundError,
)

#: Region used by ``utils_sns`` / ``utils_sqs`` when none is given and ``AWS_DEFAULT_REGION`` is unset.
FALLBACK_REGION = "eu-west-1"
INSTALL_HINT = "install the aws extra: pip install 'mongodb-session-manager[aws]'"

# Short timeouts and a few retries: a notification is sent in the background, but a stuck endpoint
# must not hold a delivery thread (or interpreter exit, which waits for pending deliveries) for long.
_CONNECT_TIMEOUT = 5.0
_READ_TIMEOUT = 15.0
_MAX_ATTEMPTS = 3

_NOT_FOUND = frozenset(
    {"NotFound", "NotFoundException", "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"}
)
_ACCESS_DENIED = frozenset({"AuthorizationError", "AccessDenied", "AccessDeniedException", "ForbiddenException"})
_INVALID = frozenset(
    {"InvalidParameter", "InvalidParameterValue", "InvalidMessageContents", "PayloadTooLargeException"}
)

_clients: dict[tuple[str, str | None, str | None], Any] = {}
_clients_lock = threading.Lock()


def boto3_available() -> bool:
    """Whether boto3 is installed (the ``[aws]`` extra)."""
    return importlib.util.find_spec("boto3") is not None


def require_boto3(what: str) -> None:
    """Raise :class:`AWSHooksUnavailableError` naming ``what`` when boto3 is missing."""
    if not boto3_available():
        raise AWSHooksUnavailableError(f"{what} needs boto3; {INSTALL_HINT}")


def default_region(region_name: str | None) -> str:
    return region_name or os.environ.get("AWS_DEFAULT_REGION") or FALLBACK_REGION


def new_client(service: str, region_name: str, endpoint_url: str | None = None) -> Any:
    """A new boto3 client with the hooks' timeouts (boto3 clients are thread-safe; sessions are not)."""
    require_boto3(f"the {service} client")
    import boto3.session
    from botocore.config import Config

    config = Config(
        connect_timeout=_CONNECT_TIMEOUT,
        read_timeout=_READ_TIMEOUT,
        retries={"max_attempts": _MAX_ATTEMPTS, "mode": "standard"},
    )
    session: Any = boto3.session.Session()  # a client of a service named at run time: untyped
    try:
        return session.client(service, region_name=region_name, endpoint_url=endpoint_url, config=config)
    except ValueError as error:  # botocore's "Invalid endpoint: ..."
        raise InvalidNotificationError(f"cannot create the {service} client: {error}") from None


def cached_client(service: str, region_name: str | None) -> Any:
    """One client per service, region and endpoint override (``AWS_ENDPOINT_URL[_<SERVICE>]``)."""
    region = default_region(region_name)
    endpoint = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}") or os.environ.get("AWS_ENDPOINT_URL")
    key = (service, region, endpoint)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = new_client(service, region)
        return client


def raise_translated(error: Exception, target: str, action: str) -> NoReturn:
    """Re-raise a botocore error as a :class:`NotificationError` (same built-in bases as before)."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", "Unknown"))
        if code in _NOT_FOUND:
            raise NotificationTargetNotFoundError(f"{target} does not exist", code) from error
        if code in _ACCESS_DENIED:
            raise NotificationAccessDeniedError(
                f"access denied to {target}; check the IAM permission for {action}", code
            ) from error
        if code in _INVALID:
            raise InvalidNotificationError(f"{action} to {target} rejected: {error}", code) from error
        raise NotificationError(f"{action} to {target} failed: {error}", code) from error
    if isinstance(error, BotoCoreError):
        raise NotificationError(f"{action} to {target} failed: {error}") from error
    raise error
