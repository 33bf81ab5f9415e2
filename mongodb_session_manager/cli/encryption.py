"""``encryption rewrap|erase-orphans``: key rotation and erasure of encrypted sessions' data keys.

Both need ``--encryption-config FILE`` (or ``$MONGODB_SESSION_ENCRYPTION_CONFIG``): a JSON file of
:meth:`~mongodb_session_manager.EncryptionOptions.from_config`. With it, every other command also reads
encrypted sessions, and ``sessions delete`` erases the deleted sessions' data keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..encryption import EncryptionOptions
from ..errors import InvalidInputError
from ._common import EXIT_OK, EXIT_USAGE, Context, Failure, add_command, add_group, to_json


def register(commands: Any) -> None:
    """Add the ``encryption`` command group to ``commands`` (the top-level subparsers action)."""
    actions = add_group(commands, "encryption", "rotate the master key; erase orphaned data keys")
    rewrap = add_command(actions, "rewrap", _rewrap, "re-wrap every data key of the key vault with a new master key")
    rewrap.add_argument(
        "--to-provider",
        metavar="NAME",
        help="the configured KMS provider whose master key wraps the keys from now on (default: kms_provider)",
    )
    rewrap.add_argument(
        "--master-key",
        metavar="JSON",
        type=_json_object,
        help='the new master key, e.g. \'{"region": ..., "key": ...}\'',
    )
    add_command(
        actions,
        "erase-orphans",
        _erase_orphans,
        "delete the data keys of sessions that no longer exist (e.g. removed by the TTL monitor)",
    )


def options_from_file(path: str | None) -> EncryptionOptions | None:
    """The encryption options in the JSON file at ``path`` (None without a path)."""
    if not path:
        return None
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise Failure(f"cannot read the encryption configuration {path!r}: {error}", EXIT_USAGE) from None
    try:
        return EncryptionOptions.from_config(config)
    except InvalidInputError as error:
        raise Failure(f"invalid encryption configuration {path!r}: {error}", EXIT_USAGE) from None


def _json_object(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def _require_encryption(context: Context) -> None:
    if context.repository.core.encryption is None:
        raise Failure("this command needs --encryption-config FILE (or $MONGODB_SESSION_ENCRYPTION_CONFIG)", EXIT_USAGE)


def _rewrap(context: Context) -> int:
    _require_encryption(context)
    count = context.repository.rewrap_data_keys(context.args.to_provider, context.args.master_key)
    if context.json:
        context.out(to_json({"rewrapped": count}))
    else:
        context.out(f"re-wrapped {count} data key(s)")
    return EXIT_OK


def _erase_orphans(context: Context) -> int:
    _require_encryption(context)
    count = context.repository.erase_orphaned_keys()
    if context.json:
        context.out(to_json({"erased": count}))
    else:
        context.out(f"erased {count} orphaned data key(s)")
    return EXIT_OK
