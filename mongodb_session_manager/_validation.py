"""Input validation for every public entry point.

Validation happens before any I/O, so a rejected call writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .errors import InvalidIdError, InvalidInputError, InvalidMetadataError

MAX_ID_LENGTH = 256
MAX_METADATA_KEY_LENGTH = 256
MAX_METADATA_DEPTH = 32


def _shorten(value: object) -> str:
    if isinstance(value, str) and len(value) > 80:
        value = value[:80]  # a 10 MB id is not copied into an error message
    try:
        text = repr(value)
    except Exception:  # a hostile object must still get the typed error, not its own
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= 80 else text[:77] + "..."


def validate_id(value: object, kind: str) -> str:
    """Return ``value`` if it is an acceptable id of the given ``kind`` ("session", "agent", ...).

    Raises:
        InvalidIdError: unless ``value`` is a non-empty ``str`` of at most 256 characters with no
            NUL character, no leading ``$`` and no lone surrogate (it must be encodable as UTF-8).
    """
    if not isinstance(value, str):
        raise InvalidIdError(f"{kind} id must be a str, got {type(value).__name__}: {_shorten(value)}")
    if not value:
        raise InvalidIdError(f"{kind} id must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidIdError(f"{kind} id is {len(value)} characters long; the limit is {MAX_ID_LENGTH}")
    if "\x00" in value:
        raise InvalidIdError(f"{kind} id must not contain NUL characters: {_shorten(value)}")
    if value.startswith("$"):
        raise InvalidIdError(f"{kind} id must not start with '$': {_shorten(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidIdError(f"{kind} id is not valid Unicode (lone surrogate): {_shorten(value)}") from None
    return value


def validate_message_id(value: object) -> int:
    """Return ``value`` if it is a valid message index (a non-negative ``int``, not a ``bool``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidIdError(f"message id must be an int, got {type(value).__name__}: {_shorten(value)}")
    if value < 0 or value >= 2**63:
        raise InvalidIdError(f"message id must be between 0 and 2**63 - 1, got {value}")
    return value


def validate_metadata_key(key: object) -> str:
    """Return ``key`` if it can be used as a metadata field name in MongoDB update paths."""
    if not isinstance(key, str):
        raise InvalidMetadataError(f"metadata key must be a str, got {type(key).__name__}: {_shorten(key)}")
    if not key:
        raise InvalidMetadataError("metadata key must not be empty")
    if len(key) > MAX_METADATA_KEY_LENGTH:
        raise InvalidMetadataError(f"metadata key is longer than {MAX_METADATA_KEY_LENGTH} characters")
    if key.startswith("$"):
        raise InvalidMetadataError(f"metadata key must not start with '$': {_shorten(key)}")
    if "." in key:
        raise InvalidMetadataError(f"metadata key must not contain '.': {_shorten(key)}")
    if "\x00" in key:
        raise InvalidMetadataError(f"metadata key must not contain NUL characters: {_shorten(key)}")
    return key


def flatten_metadata_update(metadata: object, prefix: str = "metadata") -> dict[str, Any]:
    """Turn a metadata merge into ``$set`` paths, validating every key on the way.

    Nested dicts are merged key by key (``{"a": {"b": 1}}`` sets ``metadata.a.b`` and leaves
    ``metadata.a``'s other keys alone); an empty dict is stored as an empty dict.
    """
    if not isinstance(metadata, Mapping):
        raise InvalidMetadataError(f"metadata must be a dict, got {type(metadata).__name__}")
    paths: dict[str, Any] = {}
    _flatten_into(metadata, prefix, paths, depth=0)
    return paths


def _flatten_into(mapping: Mapping[Any, Any], prefix: str, out: dict[str, Any], depth: int) -> None:
    if depth > MAX_METADATA_DEPTH:
        raise InvalidMetadataError(f"metadata is nested deeper than {MAX_METADATA_DEPTH} levels")
    for key, value in mapping.items():
        path = f"{prefix}.{validate_metadata_key(key)}"
        if isinstance(value, Mapping) and value:
            _flatten_into(value, path, out, depth + 1)
        else:
            check_nested_keys(value, depth + 1)
            out[path] = dict(value) if isinstance(value, Mapping) else value


def check_nested_keys(value: object, depth: int) -> None:
    """Reject operator-like keys hidden inside lists of dicts."""
    if depth > MAX_METADATA_DEPTH:
        raise InvalidMetadataError(f"metadata is nested deeper than {MAX_METADATA_DEPTH} levels")
    if isinstance(value, Mapping):
        for key, item in value.items():
            validate_metadata_key(key)
            check_nested_keys(item, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            check_nested_keys(item, depth + 1)


def validate_metadata_keys(keys: object) -> list[str]:
    """Validate the key list given to ``delete_metadata``; dotted paths are not accepted."""
    if isinstance(keys, (str, bytes)) or not isinstance(keys, Iterable):
        raise InvalidMetadataError(f"keys must be a list of str, got {type(keys).__name__}")
    return [validate_metadata_key(key) for key in keys]


def validate_field_names(fields: object) -> list[str]:
    """Validate ``metadata_fields`` (the metadata keys to index)."""
    if fields is None:
        return []
    if isinstance(fields, (str, bytes)) or not isinstance(fields, Iterable):
        raise InvalidMetadataError(f"metadata_fields must be a list of str, got {type(fields).__name__}")
    return [validate_metadata_key(field) for field in fields]


def validate_name(value: object, kind: str) -> str:
    """Validate a database or collection name."""
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{kind} must be a non-empty str, got {_shorten(value)}")
    if "\x00" in value or value.startswith("$") or (kind == "database_name" and any(c in value for c in '/\\. "$')):
        raise InvalidInputError(f"{kind} contains characters MongoDB does not allow: {_shorten(value)}")
    return value
