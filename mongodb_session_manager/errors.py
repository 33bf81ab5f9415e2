"""Typed errors raised by the library.

Every error derives from :class:`MongoDBSessionError`, itself a Strands
:class:`~strands.types.exceptions.SessionException`, so code that already catches Strands'
session errors keeps working. Input errors also derive from ``ValueError`` or ``TypeError``.
"""

from __future__ import annotations

from strands.types.exceptions import SessionException


class MongoDBSessionError(SessionException):
    """Base class of every error raised by mongodb-session-manager."""


class InvalidInputError(MongoDBSessionError, ValueError):
    """An argument was rejected before anything was sent to MongoDB."""


class InvalidIdError(InvalidInputError):
    """A session, agent or message id is not acceptable (type, length, characters)."""


class InvalidMetadataError(InvalidInputError):
    """A metadata key or value cannot be stored safely."""


class UnstorableValueError(MongoDBSessionError, TypeError):
    """A value cannot be represented in BSON (unsupported type, integer overflow, ...)."""


class DocumentTooLargeError(MongoDBSessionError):
    """A document would exceed MongoDB's 16 MiB BSON limit."""


class NotFoundError(MongoDBSessionError):
    """An update targeted a session, agent, message or multi-agent that does not exist."""


class SessionExpiredError(NotFoundError):
    """The session reached its ``ttl_seconds`` expiry (or was deleted) while a manager still held it.

    Nothing was written. Create a new manager for the session id to start it afresh.
    """


class AlreadyExistsError(MongoDBSessionError):
    """A create targeted a session, agent or message that already exists; nothing was overwritten."""


class DuplicateMessageError(AlreadyExistsError):
    """A message with this id already exists for this session and agent."""


class ConcurrentModificationError(MongoDBSessionError):
    """Another writer changed the stored agent since this manager read it; nothing was overwritten.

    Create a new manager (which restores the current state) and retry.
    """


class LegacySessionConflictError(ConcurrentModificationError):
    """A session stored by the original manager kept changing while this library migrated it.

    A process of the original version is still writing it (a rolling deploy in progress). Nothing
    was lost: the session stays in the original layout, readable. Retry once those processes stopped.
    """


class WrongLoopError(MongoDBSessionError, RuntimeError):
    """A blocking call was made on the event-loop thread that has to serve it.

    Blocking there would deadlock; the message names the awaitable method to use instead.
    """


class ClosedError(MongoDBSessionError, RuntimeError):
    """The factory, manager, repository or pool was used after ``close()``."""


class EncryptionError(MongoDBSessionError):
    """Client-side encryption of session data failed or is misconfigured (see ``docs/encryption.md``)."""


class EncryptionNotInstalledError(EncryptionError, ImportError):
    """``encryption=`` was given but ``pymongocrypt`` is missing: install ``mongodb-session-manager[encryption]``."""


class MasterKeyError(EncryptionError):
    """A data key could not be unwrapped with the configured master key (wrong key, or no access to the KMS)."""


class SessionErasedError(EncryptionError, NotFoundError):
    """The session's data key was deleted: its stored data can never be decrypted again (crypto-shredding)."""


class EncryptionRequiredError(EncryptionError):
    """Encrypted session data was read by a repository configured without ``encryption=``; nothing was returned."""


class PipelinedWriteError(MongoDBSessionError):
    """A write started without waiting during an agent invocation did not happen: it was cancelled by
    its event loop shutting down, or a write it depended on (the previous agent-state version) failed.

    A write that fails on its own raises its own error, as when it is awaited on the spot.
    """


class ServerUnavailableError(MongoDBSessionError):
    """No MongoDB server could be reached in time (server selection timed out, the connection
    failed or was lost). The driver's error is chained as ``__cause__``; the message names the
    host(s), never credentials.

    How long a call waits for a server is the client's ``serverSelectionTimeoutMS`` (PyMongo's
    default is 30 s); set it in the connection string or as a keyword argument to fail faster.
    Nothing of the failed call is known to be stored unless the call says otherwise; retry later.
    """


class DatabaseError(MongoDBSessionError):
    """MongoDB refused or failed a command for a reason of its own: authentication or privileges, a
    server-side error. The driver's error (e.g. ``pymongo.errors.OperationFailure``) is chained as
    ``__cause__``; :attr:`code` is its server error code, when there is one."""

    code: int | None = None


class SessionBusyError(MongoDBSessionError):
    """Another turn of the same session and agent did not finish within the configured wait.

    Nothing of this turn was stored. Retry later (an HTTP service answers 409 Conflict).
    """
