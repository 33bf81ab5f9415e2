"""The environment variables the CLI reads: the connection and the namespace, as the flags give them.

A flag wins over its variable, and the variable over the library's default (the factory's
``database_name="database_name"`` and ``collection_name="collection_name"``). Set them once per
shell to point every command at the application's sessions::

    export MONGODB_URI=mongodb://localhost:27017/
    export MONGODB_SESSION_DATABASE=chat_db MONGODB_SESSION_COLLECTION=sessions
    export MONGODB_SESSION_METADATA_FIELDS=status,priority   # the factory's metadata_fields
"""

from __future__ import annotations

import os

#: ``--uri``: the connection string.
URI = "MONGODB_URI"
#: ``--database``: the factory's ``database_name``.
DATABASE = "MONGODB_SESSION_DATABASE"
#: ``--collection``: the factory's ``collection_name``.
COLLECTION = "MONGODB_SESSION_COLLECTION"
#: ``--application``: the managers' ``application_name``.
APPLICATION = "MONGODB_SESSION_APPLICATION"
#: ``indexes --metadata-field``, comma-separated: the factory's ``metadata_fields``.
METADATA_FIELDS = "MONGODB_SESSION_METADATA_FIELDS"

#: ``--encryption-config``: a JSON file of :meth:`EncryptionOptions.from_config` (docs/encryption.md).
ENCRYPTION_CONFIG = "MONGODB_SESSION_ENCRYPTION_CONFIG"

VARIABLES = (URI, DATABASE, COLLECTION, APPLICATION, METADATA_FIELDS, ENCRYPTION_CONFIG)


def setting(name: str, default: str | None = None) -> str | None:
    """The value of the variable ``name``, or ``default`` when it is unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or default


def metadata_fields() -> list[str]:
    """The metadata fields named by :data:`METADATA_FIELDS` (comma-separated; blanks ignored)."""
    return [field.strip() for field in (setting(METADATA_FIELDS) or "").split(",") if field.strip()]
