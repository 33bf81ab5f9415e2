"""Creating clients from connection strings: option defaults and credential masking."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from pymongo import AsyncMongoClient

from ._driver import ClientPort, PyMongoAsyncClientPort, port_for
from ._runtime import ClientRuntime
from .errors import InvalidInputError

DEFAULT_DATABASE = "database_name"
DEFAULT_COLLECTION = "collection_name"

# Applied only where neither the caller's keyword arguments nor the connection string set them.
CLIENT_DEFAULTS: Mapping[str, Any] = {
    "maxPoolSize": 100,
    "minPoolSize": 10,
    "maxIdleTimeMS": 300_000,
    "retryWrites": True,
    "retryReads": True,
    "appname": "mongodb-session-manager",
}

_SCHEME = re.compile(r"^mongodb(?:\+srv)?://", re.IGNORECASE)
# Query options holding secrets: tlsCertificateKeyFilePassword (and any other *password* option), and
# authMechanismProperties (e.g. AWS_SESSION_TOKEN:...).
_SECRET_OPTION = re.compile(r"(?i)(?<=[?&])((?:[^=&]*password[^=&]*|authmechanismproperties)=)[^&]*")


def mask_uri(uri: str) -> str:
    """The connection string with its password and secret options replaced by ``***`` (user names are kept).

    The user information ends at the last ``@`` before the query, so a password that was not
    percent-encoded (an invalid URI, which the driver rejects) is masked too.
    """
    scheme = _SCHEME.match(uri)
    if scheme is not None:
        rest = uri[scheme.end() :]
        at = rest.split("?", 1)[0].rfind("@")
        if at >= 0:
            user, colon, _ = rest[:at].partition(":")
            if colon:
                uri = f"{scheme.group(0)}{user}:***{rest[at:]}"
    return _SECRET_OPTION.sub(r"\1***", uri)


def uri_options(uri: str) -> dict[str, str]:
    """The options a connection string sets, by lower-cased name (MongoDB options are case-insensitive)."""
    query = uri.split("?", 1)[1] if "?" in uri else ""
    return {name.lower(): value for name, value in parse_qsl(query, keep_blank_values=True)}


def uri_option_names(uri: str) -> set[str]:
    """The option names a connection string sets, lower-cased (MongoDB options are case-insensitive)."""
    return set(uri_options(uri))


def client_options(uri: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The caller's options plus :data:`CLIENT_DEFAULTS` for every option nobody set.

    The default ``minPoolSize`` never exceeds a ``maxPoolSize`` the caller chose (PyMongo rejects
    ``minPoolSize > maxPoolSize``): with ``maxPoolSize=5`` the default minimum becomes 5.
    """
    from_uri = uri_options(uri)
    from_kwargs = {name.lower(): value for name, value in kwargs.items()}
    taken = set(from_uri) | set(from_kwargs)
    options = {name: value for name, value in CLIENT_DEFAULTS.items() if name.lower() not in taken}
    if "minPoolSize" in options:
        max_pool_size = _as_int(from_kwargs.get("maxpoolsize", from_uri.get("maxpoolsize")))
        if max_pool_size:  # None or 0 (no limit) leave the default alone
            options["minPoolSize"] = min(options["minPoolSize"], max_pool_size)
    options.update(kwargs)
    return options


def _as_int(value: object) -> int | None:
    """An integer option value given as int or string; None when absent or not an integer (PyMongo will
    report a malformed value itself)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def validate_connection_string(connection_string: object) -> str:
    if not isinstance(connection_string, str) or not connection_string.startswith(("mongodb://", "mongodb+srv://")):
        raise InvalidInputError("connection_string must be a 'mongodb://' or 'mongodb+srv://' URI")
    return connection_string


def owned_port_factory(connection_string: str, kwargs: Mapping[str, Any]) -> Callable[[], ClientPort]:
    """A factory of new ``AsyncMongoClient`` ports (called again after a fork)."""
    uri = validate_connection_string(connection_string)
    options = client_options(uri, kwargs)

    def create() -> ClientPort:
        return PyMongoAsyncClientPort(AsyncMongoClient(uri, **options))

    return create


def runtime_for(connection_string: str | None, client: Any, kwargs: Mapping[str, Any], *, name: str) -> ClientRuntime:
    """A runtime over the borrowed ``client`` if given, else over a new client it owns."""
    if client is not None:
        return ClientRuntime(port=port_for(client), name=name)
    if connection_string is None:
        raise InvalidInputError("either connection_string or client is required")
    return ClientRuntime(owned_port_factory(connection_string, kwargs), name=name)
