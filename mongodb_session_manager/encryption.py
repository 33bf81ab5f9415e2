"""Client-side field level encryption of session data: :class:`EncryptionOptions`.

Pass ``encryption=EncryptionOptions(...)`` to a factory, a manager, a repository or
:class:`~mongodb_session_manager.MongoDBStorage`: message content (and redactions), agent and
conversation-manager state, multi-agent state, feedback text, large-message blobs, Storage values
and the metadata fields listed in ``metadata_fields`` are encrypted in this process, with PyMongo's
explicit encryption, before they are sent to MongoDB. Ids, timestamps, usage numbers and the other
metadata stay in clear, so listing, retention and analytics keep working.

Each session gets its own data key by default, stored in the key vault collection and wrapped by
the master key of a KMS; deleting the session deletes its data key, which makes every copy of its
data (backups included) unreadable. See ``docs/encryption.md``.

Example::

    import os
    from mongodb_session_manager import EncryptionOptions, MongoDBSessionManagerFactory

    encryption = EncryptionOptions(kms_providers={"local": {"key": os.urandom(96)}})  # keep this key!
    factory = MongoDBSessionManagerFactory(connection_string=uri, encryption=encryption)
"""

from __future__ import annotations

import base64
import binascii
import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from ._validation import validate_field_names, validate_name
from .errors import EncryptionNotInstalledError, InvalidInputError

__all__ = [
    "DEFAULT_KEY_VAULT_NAMESPACE",
    "DETERMINISTIC",
    "RANDOMIZED",
    "EncryptionOptions",
    "KeyScope",
]

#: The key vault collection MongoDB's documentation uses.
DEFAULT_KEY_VAULT_NAMESPACE = "encryption.__keyVault"
#: Randomized encryption (the default): equal values encrypt differently; not queryable.
RANDOMIZED = "AEAD_AES_256_CBC_HMAC_SHA_512-Random"
#: Deterministic encryption: equal values encrypt equally (leaks equality); queryable by equality.
DETERMINISTIC = "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"

#: ``"session"`` (one data key per session), or a function from a session id to the name of the
#: data key to use (e.g. one key per tenant).
KeyScope = Literal["session"] | Callable[[str], str]

# Master key fields each KMS provider needs to create a data key (``local`` needs none).
_MASTER_KEY_REQUIRED = {
    "aws": ("region", "key"),
    "azure": ("keyVaultEndpoint", "keyName"),
    "gcp": ("projectId", "location", "keyRing", "keyName"),
}
_PROVIDER_TYPES = ("local", "aws", "azure", "gcp", "kmip")


def require_pymongocrypt() -> None:
    """Raise :class:`EncryptionNotInstalledError` unless PyMongo's encryption support is installed."""
    try:
        importlib.import_module("pymongocrypt")
    except ImportError as error:
        raise EncryptionNotInstalledError(
            "encryption= needs PyMongo's encryption support (pymongocrypt, which bundles libmongocrypt): "
            "pip install 'mongodb-session-manager[encryption]'"
        ) from error


class EncryptionOptions:
    """How session data is encrypted before it leaves the process.

    Args:
        kms_providers: KMS credentials exactly as PyMongo takes them, e.g. ``{"local": {"key": <96
            bytes>}}`` for tests and development, or ``{"aws": {"accessKeyId": ..., "secretAccessKey":
            ...}}``; ``azure``, ``gcp`` and ``kmip`` are passed through, as are named providers
            (``"aws:eu"``). An empty dict for a provider asks PyMongo to fetch credentials on demand.
        master_key: The master key that wraps new data keys, as PyMongo's ``create_data_key`` takes it
            (``{"region": ..., "key": <ARN>}`` for AWS); not needed for ``local``.
        kms_provider: The provider new data keys are created with; defaults to the only one given.
        key_vault_namespace: ``"<database>.<collection>"`` of the data keys.
        key_scope: ``"session"`` (default): one data key per session, deleted with the session. Or a
            function from a session id to a key name (e.g. one key per tenant): that key is created on
            first use and is not deleted with a session.
        metadata_fields: Top-level metadata keys whose values are encrypted (and replaced whole on
            update, not merged); every other metadata key stays in clear and queryable.
        algorithm: :data:`RANDOMIZED` (default) or :data:`DETERMINISTIC`.
        key_cache_seconds: How long a data key, once fetched and unwrapped, is kept in memory
            (libmongocrypt's cache; 60 s by default, 0 keeps it for the life of the process).
        kms_tls_options: TLS options per KMS provider, as PyMongo takes them.
        key_name_prefix: Prefix of the per-session key names (``<prefix><db>.<collection>/<session id>``).

    Raises:
        EncryptionNotInstalledError: ``pymongocrypt`` is not installed.
        InvalidInputError: an option is malformed.
    """

    def __init__(
        self,
        kms_providers: Mapping[str, Mapping[str, Any]],
        *,
        master_key: Mapping[str, Any] | None = None,
        kms_provider: str | None = None,
        key_vault_namespace: str = DEFAULT_KEY_VAULT_NAMESPACE,
        key_scope: KeyScope = "session",
        metadata_fields: Sequence[str] | None = None,
        algorithm: str = RANDOMIZED,
        key_cache_seconds: float | None = None,
        kms_tls_options: Mapping[str, Mapping[str, Any]] | None = None,
        key_name_prefix: str = "session:",
    ) -> None:
        require_pymongocrypt()
        if not isinstance(kms_providers, Mapping) or not kms_providers:
            raise InvalidInputError("kms_providers must be a non-empty dict, e.g. {'local': {'key': <96 bytes>}}")
        for name, credentials in kms_providers.items():
            if not isinstance(name, str) or name.split(":", 1)[0] not in _PROVIDER_TYPES:
                raise InvalidInputError(f"unknown KMS provider {name!r}; expected one of {', '.join(_PROVIDER_TYPES)}")
            if not isinstance(credentials, Mapping):
                raise InvalidInputError(f"the credentials of KMS provider {name!r} must be a dict")
        if kms_provider is None:
            if len(kms_providers) != 1:
                raise InvalidInputError("several KMS providers are configured: say which one wraps new data keys")
            kms_provider = next(iter(kms_providers))
        if kms_provider not in kms_providers:
            raise InvalidInputError(f"kms_provider {kms_provider!r} is not among the configured kms_providers")
        provider_type = kms_provider.split(":", 1)[0]
        missing = [field for field in _MASTER_KEY_REQUIRED.get(provider_type, ()) if field not in (master_key or {})]
        if missing:
            raise InvalidInputError(f"master_key for {provider_type!r} needs {', '.join(missing)}")
        if master_key is not None and not isinstance(master_key, Mapping):
            raise InvalidInputError("master_key must be a dict")
        database, _, collection = str(key_vault_namespace).partition(".")
        validate_name(database, "key vault database")
        validate_name(collection, "key vault collection")
        if key_scope != "session" and not callable(key_scope):
            raise InvalidInputError("key_scope must be 'session' or a function from session id to key name")
        if algorithm not in (RANDOMIZED, DETERMINISTIC):
            raise InvalidInputError(f"algorithm must be {RANDOMIZED!r} or {DETERMINISTIC!r}")
        if key_cache_seconds is not None and (
            isinstance(key_cache_seconds, bool)
            or not isinstance(key_cache_seconds, (int, float))
            or key_cache_seconds < 0
        ):
            raise InvalidInputError("key_cache_seconds must be None or a non-negative number")
        if not isinstance(key_name_prefix, str):
            raise InvalidInputError("key_name_prefix must be a str")
        self.kms_providers: Mapping[str, Mapping[str, Any]] = {
            name: dict(value) for name, value in kms_providers.items()
        }
        self.master_key = None if master_key is None else dict(master_key)
        self.kms_provider = kms_provider
        self.key_vault_namespace = f"{database}.{collection}"
        self.key_scope = key_scope
        self.metadata_fields = tuple(validate_field_names(metadata_fields))
        self.algorithm = algorithm
        self.key_cache_seconds = key_cache_seconds
        self.kms_tls_options = None if kms_tls_options is None else {k: dict(v) for k, v in kms_tls_options.items()}
        self.key_name_prefix = key_name_prefix

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> EncryptionOptions:
        """Options from a JSON-style mapping (a configuration file, the CLI's ``--encryption-config``):
        the keyword arguments of the constructor (except ``key_scope``, always per session), with a
        ``local`` provider's ``key`` given as base64 text.

        Example: ``{"kms_providers": {"local": {"key": "<base64 of 96 bytes>"}}, "key_vault_namespace":
        "encryption.__keyVault"}``.
        """
        if not isinstance(config, Mapping) or "kms_providers" not in config:
            raise InvalidInputError("an encryption configuration needs kms_providers")
        allowed = {
            "kms_providers",
            "master_key",
            "kms_provider",
            "key_vault_namespace",
            "metadata_fields",
            "algorithm",
            "key_cache_seconds",
            "kms_tls_options",
            "key_name_prefix",
        }
        unknown = sorted(set(config) - allowed)
        if unknown:
            raise InvalidInputError(f"unknown encryption configuration fields {unknown}")
        providers: dict[str, Any] = {}
        for name, credentials in dict(config["kms_providers"]).items():
            credentials = dict(credentials)
            if str(name).split(":", 1)[0] == "local" and isinstance(credentials.get("key"), str):
                try:
                    credentials["key"] = base64.b64decode(credentials["key"], validate=True)
                except (binascii.Error, ValueError):
                    raise InvalidInputError(f"the key of KMS provider {name!r} is not valid base64") from None
            providers[name] = credentials
        options = {key: value for key, value in config.items() if key != "kms_providers"}
        return cls(providers, **options)

    @property
    def key_vault(self) -> tuple[str, str]:
        """The key vault's database and collection names."""
        database, _, collection = self.key_vault_namespace.partition(".")
        return database, collection

    @property
    def per_session(self) -> bool:
        """Whether each session has its own data key (deleted with the session)."""
        return self.key_scope == "session"

    def __repr__(self) -> str:
        # Credentials never appear: only the providers' names.
        scope = "session" if self.per_session else "custom"
        return (
            f"EncryptionOptions(kms_providers=[{', '.join(self.kms_providers)}], kms_provider={self.kms_provider!r}, "
            f"key_vault_namespace={self.key_vault_namespace!r}, key_scope={scope!r})"
        )
