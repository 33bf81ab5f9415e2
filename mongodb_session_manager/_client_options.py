"""Checking MongoDB client keyword options before any client is created."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo import common
from pymongo.errors import ConfigurationError

from .errors import InvalidInputError

# Option names whose values must never appear in an error message.
_SECRET_HINTS = ("password", "secret", "token", "authmechanismproperties", "key")


def check_client_options(options: Mapping[str, Any]) -> None:
    """Raise :class:`InvalidInputError` for an option name PyMongo does not know or a value it rejects.

    Run where the options arrive, so a typo fails at construction instead of later, on the client's
    first use on another thread.
    """
    for name, value in options.items():
        if not isinstance(name, str):
            raise InvalidInputError(f"client option names must be strings, got {type(name).__name__}")
        try:
            common.validate(name, value)
        except (ConfigurationError, ValueError, TypeError) as error:
            if any(hint in name.lower() for hint in _SECRET_HINTS):
                raise InvalidInputError(f"invalid value for MongoDB client option {name!r}") from None
            raise InvalidInputError(f"invalid MongoDB client option {name!r}: {error}") from None
