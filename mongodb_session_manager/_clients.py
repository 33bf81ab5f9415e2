"""Creating clients from connection strings: option defaults and credential masking."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote

from pymongo import AsyncMongoClient, uri_parser
from pymongo.errors import ConfigurationError

from ._client_options import check_client_options
from ._driver import ClientPort, PyMongoAsyncClientPort, port_for
from ._runtime import ClientRuntime
from .errors import InvalidInputError

# The defaults of ``database_name`` and ``collection_name``. The values are the original project's
# literal defaults, kept so that sessions its users stored without naming a namespace are found.
DEFAULT_DATABASE_NAME = "database_name"
DEFAULT_COLLECTION_NAME = "collection_name"

# Applied only where neither the caller's keyword arguments nor the connection string set them.
CLIENT_DEFAULTS: Mapping[str, Any] = {
    "maxPoolSize": 100,
    "minPoolSize": 10,
    "maxIdleTimeMS": 300_000,
    "retryWrites": True,
    "retryReads": True,
    "appname": "mongodb-session-manager",
}

# Query options holding secrets: tlsCertificateKeyFilePassword (and any other *password* option), and
# authMechanismProperties (e.g. AWS_SESSION_TOKEN:...).
_SECRET_OPTION = re.compile(r"(?i)(?<=[?&])((?:[^=&]*password[^=&]*|authmechanismproperties)=)([^&]*)")


def _userinfo(uri: str) -> tuple[str, str, str | None, str] | None:
    """``(scheme, user, password, rest)`` of ``scheme://user:password@rest``, tolerating unescaped
    characters in the password (the last ``@`` before the options ends the user information)."""
    scheme, separator, rest = uri.partition("://")
    if not separator:
        return None
    end = rest.split("?", 1)[0].rfind("@")
    if end < 0:
        return None
    user, colon, password = rest[:end].partition(":")
    return scheme, user, password if colon else None, rest[end + 1 :]


def mask_uri(uri: str) -> str:
    """The connection string with its password and secret options replaced by ``***`` (user names are kept).

    The user information ends at the last ``@`` before the query, so a password that was not
    percent-encoded (an invalid URI, which the driver rejects) is masked too.
    """
    parts = _userinfo(uri)
    if parts is not None and parts[2] is not None:
        scheme, user, _, rest = parts
        uri = f"{scheme}://{user}:***@{rest}"
    return _SECRET_OPTION.sub(r"\1***", uri)


class SecretScrubber:
    """Removes every form of a connection string's secrets (as given, percent-decoded, or the whole
    URI) from a text, e.g. a driver error message that quotes them."""

    def __init__(self, uri: str | None) -> None:
        self._replacements: list[tuple[str, str]] = []
        if not uri:
            return
        self._replacements.append((uri, mask_uri(uri)))
        secrets: set[str] = set()
        parts = _userinfo(uri)
        if parts is not None and parts[2]:
            secrets.add(parts[2])
        secrets.update(option.group(2) for option in _SECRET_OPTION.finditer(uri) if option.group(2))
        for secret in sorted(secrets | {unquote(secret) for secret in secrets}, key=len, reverse=True):
            if secret:
                self._replacements.append((secret, "***"))

    def __call__(self, text: str) -> str:
        for secret, replacement in self._replacements:
            text = text.replace(secret, replacement)
        return text


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
    check_client_options(kwargs)
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
    """The connection string, checked with PyMongo's URI parser without connecting (and, for
    ``mongodb+srv://``, without the DNS lookup). Raises :class:`InvalidInputError` for a wrong scheme,
    host or port, or a malformed option value; the message never repeats the password."""
    if not isinstance(connection_string, str) or not connection_string.startswith(("mongodb://", "mongodb+srv://")):
        raise InvalidInputError("connection_string must be a 'mongodb://' or 'mongodb+srv://' URI")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            uri_parser.parse_uri(_without_srv(connection_string), warn=True)
        # An unknown option only warns, as PyMongo's client does (it repeats the warning when created);
        # a malformed value of a known option is an error.
        malformed = list(dict.fromkeys(str(item.message) for item in caught))
        malformed = [message for message in malformed if not message.startswith("Unknown option")]
        if malformed:
            raise ConfigurationError("; ".join(malformed))
    except (ValueError, ConfigurationError) as error:
        raise InvalidInputError(f"invalid connection string {mask_uri(connection_string)!r}: {error}") from None
    return connection_string


_SRV_ONLY_OPTION = re.compile(r"(?i)(?<=[?&])(?:srvservicename|srvmaxhosts)=[^&]*&?")


def _without_srv(uri: str) -> str:
    """A ``mongodb+srv://`` URI as the equivalent syntax check on ``mongodb://`` (no DNS lookup): one
    host name without a port, and the options minus the SRV-only ones."""
    if not uri.startswith("mongodb+srv://"):
        return uri
    rest = uri[len("mongodb+srv://") :]
    hosts = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    if "," in hosts or ":" in hosts.rsplit("]", 1)[-1]:
        raise InvalidInputError("a 'mongodb+srv://' connection string names exactly one host, without a port")
    return "mongodb://" + _SRV_ONLY_OPTION.sub("", rest).rstrip("?&")


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
