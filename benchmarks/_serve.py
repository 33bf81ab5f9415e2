"""Serve one variant of the chat app with uvicorn on 127.0.0.1 (run by the HTTP benchmark).

``python -m benchmarks._serve {factory|per-request|factory-app-loop} URI DATABASE COLLECTION PORT``

Registers process-wide PyMongo listeners (they apply to every client created afterwards, so the
apps stay unmodified) and adds ``GET /_bench/counters``: commands sent, connections created, and
this process's peak RSS.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import uvicorn
from pymongo import monitoring

from ._common import CommandCounter, ConnectionCounter, proc_status_kib


def main(variant: str, uri: str, database: str, collection: str, port: int) -> None:
    commands = CommandCounter()
    connections = ConnectionCounter()
    monitoring.register(commands)
    monitoring.register(connections)
    if variant == "factory":
        from examples.fastapi_app import create_app

        app = create_app(uri, database_name=database, collection_name=collection)
    elif variant == "per-request":
        from .per_request_app import create_app as create_per_request_app

        app = create_per_request_app(uri, database_name=database, collection_name=collection)
    elif variant == "factory-app-loop":
        from .app_loop_app import create_app as create_app_loop_app

        app = create_app_loop_app(uri, database_name=database, collection_name=collection)
    else:
        raise SystemExit(f"unknown variant {variant!r}")

    @app.get("/_bench/counters")
    async def counters() -> dict[str, Any]:
        return {
            "commands": commands.total,
            "by_name": dict(commands.snapshot()),
            "connections_created": connections.created,
            "connections_closed": connections.closed,
            "checkout_failures": connections.checkout_failures,
            "pool_clears": connections.pool_clears,
            "command_failures": dict(commands.failures),
            "vmhwm_kib": proc_status_kib(os.getpid(), "VmHWM"),
            "vmrss_kib": proc_status_kib(os.getpid(), "VmRSS"),
        }

    # A long keep-alive: the load generator's idle pooled connections are never closed under it mid-run.
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on", timeout_keep_alive=120
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
