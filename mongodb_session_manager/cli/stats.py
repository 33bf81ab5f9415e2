"""``stats``: counts, collection sizes and server health."""

from __future__ import annotations

from typing import Any

from ._common import EXIT_OK, Context, add_command, display_uri, size, table, to_json


def register(commands: Any) -> None:
    """Add the ``stats`` command to ``commands`` (the top-level subparsers action)."""
    add_command(commands, "stats", _stats, "counts, collection sizes and server health")


def _stats(context: Context) -> int:
    args = context.args
    server = context.catalog.server_status()
    collections = context.catalog.collection_stats()
    sessions = context.catalog.count_sessions()
    if context.json:
        payload = {
            "uri": display_uri(args.uri),
            "database": args.database,
            "collection": args.collection,
            "application": args.application,
            "status": "ok",
            "server": server,
            "sessions": sessions,
            "collections": [stats.to_dict() for stats in collections],
        }
        context.out(context.scrub(to_json(payload)))
        return EXIT_OK
    pool = server.get("pool") or {}
    pool_text = ", ".join(f"{key}={value}" for key, value in pool.items()) or "-"
    lines = [
        ("uri", display_uri(args.uri)),
        ("namespace", f"{args.database}.{args.collection}"),
        ("application", args.application or "(all)"),
        ("server", f"ok, MongoDB {server['server_version']}, ping {server['ping_ms']:.1f} ms"),
        ("pool", f"{server['client']}, {pool_text}"),
        ("sessions", str(sessions)),
    ]
    for name, value in lines:
        context.out(context.scrub(f"{name:<12} {value}"))
    context.out()
    rows = [
        [
            stats.name,
            str(stats.count),
            size(stats.size_bytes),
            size(stats.storage_bytes),
            size(stats.index_bytes),
        ]
        for stats in collections
    ]
    for line in table(["COLLECTION", "DOCUMENTS", "DATA", "STORAGE", "INDEXES"], rows):
        context.out(line)
    return EXIT_OK
