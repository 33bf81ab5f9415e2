"""MongoDB persistence for Strands Agents sessions.

An asyncio-native core (:class:`AsyncMongoDBSessionRepository`) on one shared async MongoDB
client, with a blocking facade for scripts and threads. Start with
:class:`MongoDBSessionManagerFactory` (or :class:`AsyncMongoDBSessionManagerFactory`).
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _distribution_version

from .catalog import (
    AsyncSessionCatalog,
    CollectionStats,
    IndexStatus,
    PurgeReport,
    SessionCatalog,
    SessionPage,
    SessionSummary,
)
from .connection_pool import MongoDBConnectionPool
from .encryption import EncryptionOptions
from .errors import (
    AlreadyExistsError,
    ClosedError,
    ConcurrentModificationError,
    DatabaseError,
    DocumentTooLargeError,
    DuplicateMessageError,
    EncryptionError,
    EncryptionNotInstalledError,
    EncryptionRequiredError,
    InvalidIdError,
    InvalidInputError,
    InvalidMetadataError,
    LegacySessionConflictError,
    MasterKeyError,
    MongoDBSessionError,
    NotFoundError,
    ServerUnavailableError,
    SessionBusyError,
    SessionErasedError,
    SessionExpiredError,
    UnstorableValueError,
    WrongLoopError,
)
from .guardrails import GUARDRAIL_ACTION_BLOCKED, GUARDRAIL_STOP_REASONS
from .hooks import (
    FeedbackSNSHook,
    MetadataSQSHook,
    MetadataWebSocketHook,
    create_metadata_sqs_hook,
    create_metadata_websocket_hook,
    is_feedback_sns_hook_available,
    is_metadata_sqs_hook_available,
    is_metadata_websocket_hook_available,
)
from .hooks import create_feedback_hook as create_feedback_sns_hook
from .mongodb_session_factory import (
    AsyncMongoDBSessionManagerFactory,
    MongoDBSessionManagerFactory,
    close_global_factory,
    get_global_factory,
    initialize_global_factory,
)
from .repository import AsyncMongoDBSessionRepository
from .retention import Retention
from .session_manager import MongoDBSessionManager, create_mongodb_session_manager
from .storage import MongoDBStorage
from .sync_repository import MongoDBSessionRepository

try:
    __version__ = _distribution_version("mongodb-session-manager")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "GUARDRAIL_ACTION_BLOCKED",
    "GUARDRAIL_STOP_REASONS",
    "AlreadyExistsError",
    "AsyncMongoDBSessionManagerFactory",
    "AsyncMongoDBSessionRepository",
    "AsyncSessionCatalog",
    "ClosedError",
    "CollectionStats",
    "ConcurrentModificationError",
    "DatabaseError",
    "DocumentTooLargeError",
    "DuplicateMessageError",
    "EncryptionError",
    "EncryptionNotInstalledError",
    "EncryptionOptions",
    "EncryptionRequiredError",
    "FeedbackSNSHook",
    "IndexStatus",
    "InvalidIdError",
    "InvalidInputError",
    "InvalidMetadataError",
    "LegacySessionConflictError",
    "MasterKeyError",
    "MetadataSQSHook",
    "MetadataWebSocketHook",
    "MongoDBConnectionPool",
    "MongoDBSessionError",
    "MongoDBSessionManager",
    "MongoDBSessionManagerFactory",
    "MongoDBSessionRepository",
    "MongoDBStorage",
    "NotFoundError",
    "PurgeReport",
    "Retention",
    "ServerUnavailableError",
    "SessionBusyError",
    "SessionCatalog",
    "SessionErasedError",
    "SessionExpiredError",
    "SessionPage",
    "SessionSummary",
    "UnstorableValueError",
    "WrongLoopError",
    "close_global_factory",
    "create_feedback_sns_hook",
    "create_metadata_sqs_hook",
    "create_metadata_websocket_hook",
    "create_mongodb_session_manager",
    "get_global_factory",
    "initialize_global_factory",
    "is_feedback_sns_hook_available",
    "is_metadata_sqs_hook_available",
    "is_metadata_websocket_hook_available",
]
