"""The blocking PyMongo client behind ``session_repository.client`` / ``.collection``.

The core runs on an async client. Code written for the earlier, sync-only library reads
``manager.session_repository.collection`` and calls PyMongo on it directly, so managers and
factories keep a source of a *sync* ``MongoClient`` for that: the client the caller lent, or one
created from the same connection string and options the first time it is asked for.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from pymongo import MongoClient

from ._clients import client_options, validate_connection_string
from .errors import ClosedError, InvalidInputError


class SyncClientSource:
    """A borrowed ``MongoClient``, or the recipe for one created on first use (and closed by :meth:`close`)."""

    def __init__(
        self,
        *,
        connection_string: str | None = None,
        options: Mapping[str, Any] | None = None,
        borrowed: MongoClient[Any] | None = None,
        unavailable: str | None = None,
    ) -> None:
        self._uri = connection_string
        self._options = dict(options or {})
        self._client: MongoClient[Any] | None = borrowed
        self._owned = borrowed is None and connection_string is not None
        self._unavailable = unavailable
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def for_arguments(cls, connection_string: str | None, client: Any, kwargs: Mapping[str, Any]) -> SyncClientSource:
        """The source matching how a manager or repository was given its client."""
        if client is not None:
            if isinstance(client, MongoClient):
                return cls(borrowed=client)
            return cls(
                unavailable=(
                    f"this manager was given a {type(client).__name__}: blocking PyMongo access needs a "
                    "pymongo.MongoClient or a connection string; use the client you passed directly"
                )
            )
        if connection_string is None:
            return cls(unavailable="no connection string or client was given")
        uri = validate_connection_string(connection_string)
        return cls(connection_string=uri, options=client_options(uri, kwargs))

    def get(self) -> MongoClient[Any]:
        """The sync client (created now if this source owns it and it does not exist yet)."""
        with self._lock:
            if self._closed:
                raise ClosedError("the client behind session_repository was closed")
            if self._client is None:
                if self._uri is None:
                    raise InvalidInputError(f"no blocking PyMongo client available: {self._unavailable}")
                self._client = MongoClient(self._uri, **self._options)
            return self._client

    def close(self) -> None:
        """Close the client if this source created it. Idempotent."""
        with self._lock:
            self._closed = True
            client, owned = self._client, self._owned
            if owned:
                self._client = None
        if owned and client is not None:
            client.close()
