"""Keys of :class:`~.storage.MongoDBStorage`: Strands' key rules, and prefix queries on ``_id``."""

from __future__ import annotations

from strands.types.exceptions import StorageError

from ._types import Document

_CODE_POINT_MAX = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


def normalize_key(key: str) -> str:
    """Validate and normalize a key the way Strands' own backends do.

    Runs of ``/`` collapse to one, leading and trailing ``/`` are dropped; an empty result, a
    backslash or a ``..`` segment raises :class:`StorageError`. A key must be a ``str`` that has a
    UTF-8 form (no lone surrogates).
    """
    _check_text(key, "key")
    if "\\" in key:
        raise StorageError(f"Invalid storage key {key!r}: backslashes are not allowed")
    segments = [segment for segment in key.split("/") if segment]
    if not segments:
        raise StorageError("Storage key must not be empty")
    if ".." in segments:
        raise StorageError(f"Invalid storage key {key!r}: '..' path segments are not allowed")
    return "/".join(segments)


def normalize_prefix(prefix: str) -> str:
    """Validate and normalize a ``list`` prefix: like :func:`normalize_key`, but an empty prefix is valid
    (it matches every key) and a trailing ``/`` is kept (``"a/"`` does not match ``"ab"``)."""
    _check_text(prefix, "prefix")
    if "\\" in prefix:
        raise StorageError(f"Invalid storage prefix {prefix!r}: backslashes are not allowed")
    segments = prefix.split("/")
    if ".." in segments:
        raise StorageError(f"Invalid storage prefix {prefix!r}: '..' path segments are not allowed")
    body = "/".join(segment for segment in segments if segment)
    trailing = "/" if body and prefix.endswith("/") else ""
    return body + trailing


def _check_text(value: object, what: str) -> None:
    if not isinstance(value, str):
        raise StorageError(f"Storage {what} must be a str, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise StorageError(f"Invalid storage {what} {value!r}: it has no UTF-8 form") from error


def _prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string above every string starting with ``prefix`` (None: no bound needed).

    The last character is incremented (skipping the surrogates, which no stored key contains); a
    last character that is already the highest code point is dropped and the one before incremented.
    """
    chars = list(prefix)
    while chars:
        code = ord(chars[-1]) + 1
        if code in _SURROGATES:
            code = _SURROGATES.stop
        if code <= _CODE_POINT_MAX:
            chars[-1] = chr(code)
            return "".join(chars)
        chars.pop()
    return None


def prefix_filter(prefix: str) -> Document:
    """``_id`` range of the keys starting with ``prefix`` (only strings: ``$gte ""`` brackets the type)."""
    bounds: Document = {"$gte": prefix}
    upper = _prefix_upper_bound(prefix)
    if upper is not None:
        bounds["$lt"] = upper
    return {"_id": bounds}


def without_extension(key: str) -> str:
    """``key`` without the extension of its last segment (``a/b.json`` -> ``a/b``; ``a/.env`` is kept),
    as Strands' keyword search scores keys."""
    last = key.rpartition("/")[2]
    dot = last.rfind(".")
    if dot <= 0:
        return key
    return key[: len(key) - len(last) + dot]
