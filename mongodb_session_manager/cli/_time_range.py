"""``--since`` / ``--until`` of the usage commands: ISO dates or durations back from now (``7d``)."""

from __future__ import annotations

import argparse
import re
from datetime import datetime, timedelta, timezone

_DURATION = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def moment(text: str) -> datetime:
    """An ISO 8601 date or date-time (UTC when it has no offset), or ``<n>m|h|d|w`` ago."""
    value = text.strip()
    duration = _DURATION.match(value)
    if duration:
        amount, unit = duration.groups()
        return datetime.now(timezone.utc) - timedelta(**{_UNITS[unit]: int(amount)})
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 date/date-time or a duration like 7d, 12h: {text!r}"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def add_range(parser: argparse.ArgumentParser) -> None:
    """``--since`` and ``--until``."""
    parser.add_argument("--since", type=moment, help="from this ISO date/time, or a duration ago (7d, 12h, 30m)")
    parser.add_argument("--until", type=moment, help="before this ISO date/time, or a duration ago")
