"""The layer session data passes through between :mod:`._codec` and the driver: field encryption.

A repository holds one cipher. The repository *seals* a document's sensitive fields right after
:mod:`._codec` shaped it and *opens* them right after reading it, before :mod:`._codec` turns it back
into Strands' types; nothing else in the core knows about encryption.

* :class:`PlainCipher` (no ``encryption=``): values pass through; an encrypted value it meets is
  refused with :class:`EncryptionRequiredError` rather than handed to Strands as bytes.
* :class:`FieldCipher` (``encryption=EncryptionOptions(...)``): each listed field's value is replaced
  by its ciphertext (BSON binary subtype 6), encrypted with the data key of the session (or of the
  key scope's name) through PyMongo's explicit encryption. Opening decrypts every ciphertext it
  finds and passes clear values through, so sessions stored before encryption was turned on stay
  readable.

Cost: libmongocrypt keeps unwrapped data keys in memory (``key_cache_seconds``, 60 s by default) and
resolves key names from that cache, so sealing and opening need no round trip while the key is
cached; fetching it is one ``find`` on the key vault. With the async PyMongo client, encryption and
key fetches are awaited on the client's home loop (the crypto itself is CPU work of tens of
microseconds per value); with a sync ``MongoClient`` each call runs in a worker thread, like every
other driver call.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import bson
from bson.binary import Binary
from pymongo.errors import DuplicateKeyError, PyMongoError
from pymongo.errors import EncryptionError as DriverEncryptionError
from pymongo.operations import IndexModel

from ._driver import ClientPort, CollectionPort
from ._namespace import SessionNamespace
from ._runtime import ClientRuntime
from ._types import Document
from .encryption import EncryptionOptions
from .errors import (
    EncryptionError,
    EncryptionRequiredError,
    InvalidInputError,
    MasterKeyError,
    SessionErasedError,
)

logger = logging.getLogger(__name__)

#: Encrypted fields of a message document.
MESSAGE_FIELDS = ("message", "redact_message")
#: Encrypted fields of a redaction's audit record (the guardrail trace quotes what was matched);
#: its action, timestamp and policies stay in clear for the guardrail analytics.
REDACTION_RECORD_FIELDS = ("guardrail_trace",)
_REDACTION_PATHS = tuple(f"redaction.{field}" for field in REDACTION_RECORD_FIELDS)
#: Encrypted fields of an agent record.
AGENT_FIELDS = ("state", "conversation_manager_state", "internal_state")
#: Encrypted fields of a multi-agent record.
MULTI_AGENT_FIELDS = ("state",)
#: Feedback keys kept in clear (for analytics); every other key's value is encrypted.
FEEDBACK_CLEAR_FIELDS = frozenset({"rating"})

_ENCRYPTED_SUBTYPE = 6
# Bytes of a large Storage value encrypted at a time.
_BLOB_CHUNK = 4 * 1024 * 1024
# Key names checked per query when looking for orphaned keys.
_ORPHAN_BATCH = 500
_KEY_MISSING = "not all keys requested were satisfied"
_HMAC_FAILURE = "HMAC validation failure"


def is_encrypted(value: object) -> bool:
    """Whether ``value`` is a ciphertext of client-side field level encryption."""
    return isinstance(value, Binary) and value.subtype == _ENCRYPTED_SUBTYPE


def feedback_fields(feedback: Mapping[str, Any]) -> list[str]:
    """The keys of a feedback whose values are encrypted."""
    return [key for key in feedback if key not in FEEDBACK_CLEAR_FIELDS]


class PlainCipher:
    """No encryption: values pass through; encrypted values are refused (a repository without
    ``encryption=`` must not hand ciphertext to Strands as if it were content)."""

    encrypting = False

    async def prepare(self) -> None:
        """Create what the cipher needs in the database (the key vault's index)."""

    async def seal(self, session_id: str, document: Document, fields: Sequence[str]) -> Document:
        """Encrypt ``document``'s ``fields`` in place (None values stay None); returns ``document``."""
        return document

    async def open(self, session_id: str, document: Document, fields: Sequence[str] | None = None) -> Document:
        """Decrypt ``document``'s encrypted ``fields`` (all top-level fields if None) in place."""
        for field in document if fields is None else fields:
            if is_encrypted(document.get(field)):
                raise EncryptionRequiredError(
                    f"session {session_id!r} is stored encrypted: configure the repository or factory with "
                    "encryption=EncryptionOptions(...) to read it; nothing was returned"
                )
        return document

    async def seal_message(self, session_id: str, fields: Document) -> Document:
        """Encrypt the content of a message document, or of the ``$set`` fields of a message update, in
        place: ``message``, ``redact_message`` and the guardrail trace of a ``redaction`` record."""
        await self.seal(session_id, fields, MESSAGE_FIELDS)
        if isinstance(fields.get("redaction"), Mapping):
            fields["redaction"] = await self.seal(session_id, dict(fields["redaction"]), REDACTION_RECORD_FIELDS)
        await self.seal(session_id, fields, _REDACTION_PATHS)
        return fields

    async def open_message(self, session_id: str, document: Document) -> Document:
        """Decrypt a message document's content in place (the guardrail trace stays sealed)."""
        return await self.open(session_id, document, MESSAGE_FIELDS)

    async def seal_metadata(self, session_id: str, metadata: Mapping[str, Any], paths: Document) -> Document:
        """Encrypt the ``$set`` ``paths`` of a metadata update whose key is listed to be encrypted."""
        return paths

    async def open_session_document(self, session_id: str, document: Document) -> Document:
        """Decrypt a session document's agent and multi-agent records and metadata, in place."""
        for record in document.get("agents") or ():
            await self.open(session_id, record, AGENT_FIELDS)
        for record in document.get("multi_agents") or ():
            await self.open(session_id, record, MULTI_AGENT_FIELDS)
        if isinstance(document.get("metadata"), dict):
            await self.open(session_id, document["metadata"])
        return document

    async def seal_value(self, key_name: str, data: bytes) -> bytes | Binary:
        """A Storage value as stored inline: ``data`` itself, or its ciphertext under the key ``key_name``."""
        return data

    async def seal_blob(self, key_name: str, data: bytes) -> tuple[bytes, bool]:
        """A Storage value as stored in GridFS, and whether it is encrypted (sealed in chunks)."""
        return data, False

    async def open_value(self, value: bytes) -> bytes:
        """The bytes of a Storage value read back (inline ciphertext, or ``open_blob``'s output)."""
        if is_encrypted(value):
            raise EncryptionRequiredError(
                "this Storage value is stored encrypted: create the MongoDBStorage with "
                "encryption=EncryptionOptions(...)"
            )
        return value

    async def open_blob(self, data: bytes, encrypted: bool) -> bytes:
        """The bytes of a GridFS Storage value (``encrypted``: sealed in chunks by :meth:`seal_blob`)."""
        if encrypted:
            raise EncryptionRequiredError(
                "this Storage value is stored encrypted: create the MongoDBStorage with "
                "encryption=EncryptionOptions(...)"
            )
        return data

    async def session_created(self, session_id: str) -> None:
        """A session document was just created (its data key is created now, when per session)."""

    async def erase_orphans(self, namespace: SessionNamespace) -> int:
        """Delete the per-session data keys of this namespace whose session no longer exists (removed by
        the TTL monitor, or deleted by a repository without ``encryption=``); returns how many."""
        return 0

    async def erase(self, session_id: str) -> int:
        """Delete the session's data key (per-session scope); returns how many keys were deleted."""
        return 0

    async def rewrap(self, kms_provider: str | None, master_key: Mapping[str, Any] | None) -> int:
        """Re-wrap every data key of the key vault with a new master key; returns how many."""
        raise InvalidInputError("rewrap needs a repository configured with encryption=EncryptionOptions(...)")

    async def close(self) -> None:
        """Release the driver's encryption object."""


class FieldCipher(PlainCipher):
    """Encrypts and decrypts fields with PyMongo's explicit encryption (see the module docstring)."""

    encrypting = True

    def __init__(self, options: EncryptionOptions, runtime: ClientRuntime, label: str) -> None:
        self.options = options
        self.runtime = runtime
        # Names per-session data keys: "<prefix><database>.<collection>/<session id>".
        self._label = label
        self._port: ClientPort | None = None
        self._driver: Any = None

    # -- plumbing ---------------------------------------------------------------------------------

    def _client_encryption(self) -> tuple[ClientPort, Any]:
        port = self.runtime.port
        if self._port is not port:  # first use, or an owned client rebuilt after a fork
            options: dict[str, Any] = {}
            if self.options.kms_tls_options is not None:
                options["kms_tls_options"] = self.options.kms_tls_options
            if self.options.key_cache_seconds is not None:
                options["key_expiration_ms"] = int(self.options.key_cache_seconds * 1000)
            self._driver = port.client_encryption(
                self.options.kms_providers, self.options.key_vault_namespace, **options
            )
            self._port = port
        return port, self._driver

    @property
    def key_vault(self) -> CollectionPort:
        database, collection = self.options.key_vault
        return self.runtime.port.collection(database, collection)

    async def _call(self, session_id: str | None, method: str, *args: Any, **kwargs: Any) -> Any:
        port, driver = self._client_encryption()
        try:
            return await port.calls.call(getattr(driver, method), *args, **kwargs)
        except DriverEncryptionError as error:
            raise _translate(error, session_id) from error

    def key_name(self, session_id: str) -> str:
        """The name (``keyAltName``) of the data key that encrypts this session's data."""
        scope = self.options.key_scope
        if scope == "session":
            return f"{self.options.key_name_prefix}{self._label}/{session_id}"
        assert callable(scope)
        name = scope(session_id)
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"key_scope returned {name!r} for session {session_id!r}; expected a non-empty str")
        return name

    async def _create_key(self, name: str) -> None:
        options: dict[str, Any] = {"key_alt_names": [name]}
        if self.options.master_key is not None:
            options["master_key"] = self.options.master_key
        try:
            await self._call(None, "create_data_key", self.options.kms_provider, **options)
            logger.debug("key=<%s> | created a data key", name)
        except EncryptionError as error:
            if not isinstance(error.__cause__, DriverEncryptionError) or not _duplicate(error.__cause__):
                raise
            # Another writer created it first (the unique index on keyAltNames): use theirs.

    async def _encrypt(self, session_id: str, value: Any) -> Binary:
        return await self._encrypt_named(self.key_name(session_id), value, session_id)

    async def _encrypt_named(self, name: str, value: Any, session_id: str | None = None) -> Binary:
        try:
            encrypted: Binary = await self._call(
                session_id, "encrypt", value, self.options.algorithm, key_alt_name=name
            )
        except SessionErasedError:
            # No key of that name yet: the first use of a scope's key, or a session whose key creation
            # was interrupted. (Data of an erased session stays unreadable: its key had another id.)
            await self._create_key(name)
            encrypted = await self._call(session_id, "encrypt", value, self.options.algorithm, key_alt_name=name)
        return encrypted

    # -- the cipher -------------------------------------------------------------------------------

    async def prepare(self) -> None:
        indexes = [
            # MongoDB's recommended index: key names are unique, so concurrent creators share one key.
            IndexModel(
                "keyAltNames",
                name="keyAltNames_1",
                unique=True,
                partialFilterExpression={"keyAltNames": {"$exists": True}},
            )
        ]
        await self.key_vault.create_indexes(indexes)

    async def seal(self, session_id: str, document: Document, fields: Sequence[str]) -> Document:
        for field in fields:
            value = document.get(field)
            if value is not None and not is_encrypted(value):
                document[field] = await self._encrypt(session_id, value)
        return document

    async def open(self, session_id: str, document: Document, fields: Sequence[str] | None = None) -> Document:
        for field in list(document) if fields is None else fields:
            value = document.get(field)
            if is_encrypted(value):
                document[field] = await self._call(session_id, "decrypt", value)
        return document

    async def seal_metadata(self, session_id: str, metadata: Mapping[str, Any], paths: Document) -> Document:
        for key in self.options.metadata_fields:
            if key not in metadata:
                continue
            field = f"metadata.{key}"
            for path in [path for path in paths if path == field or path.startswith(field + ".")]:
                del paths[path]
            value = metadata[key]
            paths[field] = await self._encrypt(session_id, dict(value) if isinstance(value, Mapping) else value)
        return paths

    async def seal_value(self, key_name: str, data: bytes) -> bytes | Binary:
        return await self._encrypt_named(key_name, data)

    async def seal_blob(self, key_name: str, data: bytes) -> tuple[bytes, bool]:
        # One ciphertext per chunk (a value encrypts within one BSON document), stored as a BSON sequence.
        parts = [
            bson.encode({"c": await self._encrypt_named(key_name, data[start : start + _BLOB_CHUNK])})
            for start in range(0, max(len(data), 1), _BLOB_CHUNK)
        ]
        return b"".join(parts), True

    async def open_value(self, value: bytes) -> bytes:
        if not is_encrypted(value):
            return value
        data: bytes = await self._call(None, "decrypt", value)
        return data

    async def open_blob(self, data: bytes, encrypted: bool) -> bytes:
        if not encrypted:
            return data
        parts = [await self._call(None, "decrypt", part["c"]) for part in bson.decode_all(data)]
        return b"".join(parts)

    async def session_created(self, session_id: str) -> None:
        if self.options.per_session:
            await self._create_key(self.key_name(session_id))

    async def erase_orphans(self, namespace: SessionNamespace) -> int:
        if not self.options.per_session:
            return 0
        prefix = f"{self.options.key_name_prefix}{self._label}/"
        keys = await self.key_vault.find(
            {"keyAltNames": {"$regex": "^" + re.escape(prefix)}}, projection={"_id": 1, "keyAltNames": 1}
        )
        names = [name for key in keys for name in key.get("keyAltNames") or () if name.startswith(prefix)]
        erased = 0
        for start in range(0, len(names), _ORPHAN_BATCH):
            batch = {name[len(prefix) :]: name for name in names[start : start + _ORPHAN_BATCH]}
            alive = await namespace.sessions.find({"_id": {"$in": list(batch)}}, projection={"_id": 1})
            orphans = [name for session_id, name in batch.items() if session_id not in {a["_id"] for a in alive}]
            if orphans:
                erased += await self.key_vault.delete_many({"keyAltNames": {"$in": orphans}})
        if erased:
            logger.info("erased %d data key(s) of sessions that no longer exist", erased)
        return erased

    async def erase(self, session_id: str) -> int:
        if not self.options.per_session:
            return 0
        deleted = await self.key_vault.delete_many({"keyAltNames": self.key_name(session_id)})
        logger.debug("session_id=<%s> | deleted %d data key(s)", session_id, deleted)
        return deleted

    async def rewrap(self, kms_provider: str | None, master_key: Mapping[str, Any] | None) -> int:
        provider = kms_provider or self.options.kms_provider
        if provider not in self.options.kms_providers:
            raise InvalidInputError(f"kms_provider {provider!r} is not among the configured kms_providers")
        result = await self._call(
            None,
            "rewrap_many_data_key",
            {},
            provider=provider,
            master_key=None if master_key is None else dict(master_key),
        )
        bulk = result.bulk_write_result
        return 0 if bulk is None else int(bulk.modified_count)

    async def close(self) -> None:
        port, driver = self._port, self._driver
        self._port = self._driver = None
        if port is not None and driver is not None:
            try:
                await port.calls.call(driver.close)
            except PyMongoError:  # pragma: no cover - closing releases memory only
                logger.debug("closing the encryption object failed", exc_info=True)


def _duplicate(error: DriverEncryptionError) -> bool:
    return isinstance(error.cause, DuplicateKeyError) or "E11000" in str(error)


def _translate(error: DriverEncryptionError, session_id: str | None) -> EncryptionError:
    text = str(error)
    whose = "a data key" if session_id is None else f"the data key of session {session_id!r}"
    if _KEY_MISSING in text:
        return SessionErasedError(
            f"{whose} does not exist: the session was erased (its data can never be decrypted again), "
            "or the key vault namespace is wrong"
        )
    if _HMAC_FAILURE in text:
        return MasterKeyError(
            f"{whose} could not be unwrapped or the data verified: wrong master key, or the stored data was altered"
        )
    return EncryptionError(f"client-side encryption failed for {whose}: {text.splitlines()[0] if text else error!r}")


def cipher_for(
    options: EncryptionOptions | None, runtime: ClientRuntime, database: str, collection: str
) -> PlainCipher:
    """The cipher of a repository: :class:`FieldCipher` with ``options``, else :class:`PlainCipher`."""
    if options is None:
        return PlainCipher()
    if not isinstance(options, EncryptionOptions):
        raise InvalidInputError(f"encryption must be an EncryptionOptions, got {type(options).__name__}")
    return FieldCipher(options, runtime, f"{database}.{collection}")
