"""Turning the driver's and the server's refusals of a write into the library's typed errors.

Client-side encoding errors are raised before anything is sent, and the server refuses a whole
document that would exceed the BSON limit: in both cases nothing was written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import bson
from bson.errors import InvalidDocument
from pymongo.errors import DocumentTooLarge, OperationFailure

from .errors import DocumentTooLargeError, UnstorableValueError

# Server errors for a write whose result would exceed the BSON limit (BSONObjectTooLarge and the
# update/upsert variants). The server refuses the whole write: nothing is stored.
_TOO_LARGE_CODES = frozenset({10334, 17419, 17420})
BSON_LIMIT = 16 * 1024 * 1024


def bson_size(payload: object) -> int | None:
    """The BSON size of what a write tried to store (a document or a list of them), if it encodes."""
    try:
        if isinstance(payload, Mapping):
            return len(bson.encode(payload))
        if isinstance(payload, (list, tuple)):
            return sum(len(bson.encode(item)) for item in payload)
    except Exception:  # only used to word an error message
        return None
    return None


@contextlib.contextmanager
def storing(what: str, session_id: str, payload: object = None) -> Iterator[None]:
    """Turn the driver's client-side encoding errors (raised before anything is sent) and the server's
    document-too-large refusals (nothing is written either) into typed errors.

    ``payload`` is what the write tries to store; its BSON size is quoted in a too-large error.
    """
    try:
        yield
    except DocumentTooLarge as error:
        raise DocumentTooLargeError(too_large_message(what, session_id, payload, str(error))) from error
    except OperationFailure as error:
        if error.code not in _TOO_LARGE_CODES:
            raise
        raise DocumentTooLargeError(too_large_message(what, session_id, payload, str(error))) from error
    except (InvalidDocument, OverflowError, UnicodeEncodeError) as error:
        # UnicodeEncodeError: a str holding a lone surrogate (e.g. from json.loads) has no UTF-8 form.
        raise UnstorableValueError(f"{what} of session {session_id!r} cannot be stored in BSON: {error}") from error


def encoded_size(what: str, session_id: str, payload: Mapping[str, Any]) -> int:
    """The BSON size of ``payload``; :class:`UnstorableValueError` if it cannot be encoded at all.

    Any exception counts: besides unsupported types, overflowing ints and lone surrogates, a hostile
    value can fail in its own ``__repr__`` (which the encoder calls to word its error).
    """
    try:
        return len(bson.encode(payload))
    except Exception as error:
        raise UnstorableValueError(
            f"{what} of session {session_id!r} cannot be stored in BSON: {type(error).__name__}: {error}"
        ) from error


def too_large_message(what: str, session_id: str, payload: object, reason: str) -> str:
    size = bson_size(payload)
    sized = "" if size is None else f" ({size:,} bytes of BSON)"
    return (
        f"{what} of session {session_id!r}{sized} cannot be stored: the document would exceed MongoDB's "
        f"16 MiB limit ({BSON_LIMIT:,} bytes); nothing was written ({reason})"
    )
