"""MongoDB persistence for Strands Agents sessions.

An asyncio-native core (:class:`AsyncMongoDBSessionRepository`) on one shared async MongoDB
client, with a blocking facade for scripts and threads. Start with
:class:`MongoDBSessionManagerFactory` (or :class:`AsyncMongoDBSessionManagerFactory`).
"""

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
from .errors import (
    AlreadyExistsError,
    ClosedError,
    ConcurrentModificationError,
    DocumentTooLargeError,
    DuplicateMessageError,
    InvalidIdError,
    InvalidInputError,
    InvalidMetadataError,
    LegacySessionConflictError,
    MongoDBSessionError,
    NotFoundError,
    SessionExpiredError,
    UnstorableValueError,
    WrongLoopError,
)
from .mongodb_session_factory import (
    AsyncMongoDBSessionManagerFactory,
    MongoDBSessionManagerFactory,
    close_global_factory,
    get_global_factory,
    initialize_global_factory,
)
from .repository import AsyncMongoDBSessionRepository
from .retention import Retention
from .session_manager import MongoDBSessionManager
from .storage import MongoDBStorage
from .sync_repository import MongoDBSessionRepository

__all__ = [
    "AlreadyExistsError",
    "AsyncMongoDBSessionManagerFactory",
    "AsyncMongoDBSessionRepository",
    "AsyncSessionCatalog",
    "ClosedError",
    "CollectionStats",
    "ConcurrentModificationError",
    "DocumentTooLargeError",
    "DuplicateMessageError",
    "IndexStatus",
    "InvalidIdError",
    "InvalidInputError",
    "InvalidMetadataError",
    "LegacySessionConflictError",
    "MongoDBConnectionPool",
    "MongoDBSessionError",
    "MongoDBSessionManager",
    "MongoDBSessionManagerFactory",
    "MongoDBSessionRepository",
    "MongoDBStorage",
    "NotFoundError",
    "PurgeReport",
    "Retention",
    "SessionCatalog",
    "SessionExpiredError",
    "SessionPage",
    "SessionSummary",
    "UnstorableValueError",
    "WrongLoopError",
    "close_global_factory",
    "get_global_factory",
    "initialize_global_factory",
]
