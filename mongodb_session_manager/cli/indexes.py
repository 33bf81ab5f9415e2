"""``indexes verify|create``: compare the library's indexes with the server's, create the missing ones."""

from __future__ import annotations

from typing import Any

from ..catalog import IndexStatus
from . import environment
from ._common import EXIT_NOT_FOUND, EXIT_OK, PROG, Context, add_command, add_group, table, to_json


def register(commands: Any) -> None:
    """Add the ``indexes`` command group to ``commands`` (the top-level subparsers action)."""
    index_actions = add_group(commands, "indexes", "verify or create the library's indexes")
    for name, handler, help_text in (
        ("verify", _verify_indexes, "compare expected and existing indexes; exit 1 if any is missing"),
        ("create", _create_indexes, "create the missing indexes"),
    ):
        sub = add_command(index_actions, name, handler, help_text)
        sub.add_argument(
            "--metadata-field",
            action="append",
            metavar="FIELD",
            help=f"a metadata key the managers index (metadata_fields; repeatable; default: "
            f"${environment.METADATA_FIELDS}, comma-separated)",
        )
        sub.add_argument(
            "--ttl", action="store_true", help="include the TTL indexes of expiring sessions (ttl_seconds)"
        )


def _index_report(context: Context, report: list[IndexStatus]) -> int:
    missing = [status for status in report if status.missing]
    if context.json:
        context.out(to_json({"indexes": [status.to_dict() for status in report], "missing": len(missing)}))
    else:
        rows = [
            [
                status.collection,
                status.name,
                ", ".join(f"{key}: {direction}" for key, direction in status.keys),
                "yes" if status.unique else "no",
                "-" if status.expire_after_seconds is None else f"{status.expire_after_seconds}s",
                "missing" if status.missing else ("ok" if status.expected else "extra"),
            ]
            for status in report
        ]
        for line in table(["COLLECTION", "INDEX", "KEYS", "UNIQUE", "TTL", "STATUS"], rows):
            context.out(line)
    if missing:
        context.info(f"{len(missing)} expected index(es) missing; create them with `{PROG} indexes create`")
        return EXIT_NOT_FOUND
    return EXIT_OK


def _metadata_fields(context: Context) -> list[str]:
    """The --metadata-field flags, or else the fields named by the environment."""
    fields: list[str] | None = context.args.metadata_field
    return fields if fields else environment.metadata_fields()


def _verify_indexes(context: Context) -> int:
    return _index_report(context, context.catalog.verify_indexes(_metadata_fields(context), ttl=context.args.ttl))


def _create_indexes(context: Context) -> int:
    return _index_report(context, context.catalog.create_indexes(_metadata_fields(context), ttl=context.args.ttl))
