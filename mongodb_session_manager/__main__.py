"""``python -m mongodb_session_manager``: the admin command line (see :mod:`mongodb_session_manager.cli`)."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
