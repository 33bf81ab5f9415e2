"""Where a repository's documents live, and which of them it may see."""

from __future__ import annotations

from ._codec import BLOBS_SUFFIX, FEEDBACK_SUFFIX, MESSAGES_SUFFIX, utc_now
from ._driver import CollectionPort
from ._gridfs import GridFSPort, gridfs_bucket
from ._runtime import ClientRuntime
from ._types import Document
from .errors import NotFoundError
from .retention import live


class SessionNamespace:
    """The collections of one sessions collection (``<c>``, ``<c>.messages``, ``<c>.feedback``, the
    ``<c>.blobs`` GridFS bucket) and the filters that scope session documents to one application
    (only with ``isolate_application``: otherwise ``application_name`` is just the label new sessions get).

    Collections are looked up on every use: an owned client is rebuilt after a fork.
    """

    def __init__(
        self,
        runtime: ClientRuntime,
        database_name: str,
        collection_name: str,
        application_name: str | None,
        isolate_application: bool = False,
    ) -> None:
        self.runtime = runtime
        self.database_name = database_name
        self.collection_name = collection_name
        self.application_name = application_name
        self.isolate_application = isolate_application

    @property
    def application_scope(self) -> str | None:
        """The application name sessions must carry to be visible (None: every session is)."""
        return self.application_name if self.isolate_application else None

    def collection(self, suffix: str = "") -> CollectionPort:
        return self.runtime.port.collection(self.database_name, self.collection_name + suffix)

    @property
    def sessions(self) -> CollectionPort:
        return self.collection()

    @property
    def messages(self) -> CollectionPort:
        return self.collection(MESSAGES_SUFFIX)

    @property
    def feedback(self) -> CollectionPort:
        return self.collection(FEEDBACK_SUFFIX)

    @property
    def blob_files(self) -> CollectionPort:
        """The ``files`` collection of the GridFS bucket of large messages."""
        return self.collection(BLOBS_SUFFIX + ".files")

    @property
    def blobs(self) -> GridFSPort:
        return gridfs_bucket(self.runtime.port, self.database_name, self.collection_name + BLOBS_SUFFIX)

    def scope(self, session_id: str) -> Document:
        """The session document of this id (and application, when isolated), expired or not."""
        scope: Document = {"_id": session_id}
        if self.application_scope is not None:
            scope["application_name"] = self.application_scope
        return scope

    def live(self, session_id: str) -> Document:
        """The session document of this id and application, unless it has expired."""
        return {**self.scope(session_id), **live(utc_now())}

    def not_owned(self, session_id: str) -> NotFoundError:
        return NotFoundError(f"session {session_id!r} does not exist for application {self.application_name!r}")
