"""Session expiry: when a session and everything stored with it may be removed.

A session configured with ``ttl_seconds`` carries ``expires_at`` (a BSON date) on its document and on
every message, feedback and GridFS blob stored for it. A TTL index on each collection removes them
once that time has passed; reads treat a session whose ``expires_at`` has passed as absent even
before the TTL monitor runs.

Activity refreshes the expiry at most once per ``touch_after`` seconds (a "touch"), so a turn does
not pay an extra write per message. To keep the promise that a session lives at least
``ttl_seconds`` after its last activity anyway, a touch sets ``expires_at`` to
``now + ttl_seconds + touch_after``: a session is removed between ``ttl_seconds`` and
``ttl_seconds + touch_after`` after its last activity.

Children are stamped with ``now + ttl_seconds + touch_after`` when written, never earlier than their
session's expiry, and a touch extends them with the session. They may outlive their session by at
most ``touch_after``, so a session re-created under the same id first removes what is left of the
expired one (:meth:`Retention.leftover_before` tells the two generations apart).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ._types import Document
from .errors import InvalidInputError

EXPIRES_AT = "expires_at"
# The TTL index of each collection; ``expireAfterSeconds=0`` because ``expires_at`` is the deadline itself.
TTL_INDEX_NAME = "expires_at_ttl"

# The default touch interval is a tenth of the TTL, capped so that long TTLs still refresh hourly.
_DEFAULT_TOUCH_FRACTION = 10
_DEFAULT_TOUCH_CAP_SECONDS = 3600


def _seconds(value: object, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= 10**9:
        raise InvalidInputError(f"{name} must be an int from {minimum} to 10**9 seconds, got {value!r}")
    return value


@dataclass(frozen=True)
class Retention:
    """How long sessions live after their last activity.

    Args:
        ttl_seconds: A session is removed at least this long after its last activity.
        touch_after: Activity refreshes the expiry at most once per this many seconds; defaults to a
            tenth of ``ttl_seconds`` (at least 1, at most 3600).
    """

    ttl_seconds: int
    touch_after: int

    @classmethod
    def of(cls, ttl_seconds: int | None, touch_after: int | None = None) -> Retention | None:
        """The retention for these settings, or None without ``ttl_seconds``. Raises
        :class:`InvalidInputError` for a non-positive or non-integer value."""
        if ttl_seconds is None:
            if touch_after is not None:
                raise InvalidInputError("touch_after needs ttl_seconds")
            return None
        ttl = _seconds(ttl_seconds, "ttl_seconds", minimum=1)
        if touch_after is None:
            touch_after = min(max(ttl // _DEFAULT_TOUCH_FRACTION, 1), _DEFAULT_TOUCH_CAP_SECONDS)
        return cls(ttl, _seconds(touch_after, "touch_after", minimum=0))

    def expiry(self, now: datetime) -> datetime:
        """The ``expires_at`` of a session touched, or a child written, at ``now``."""
        return now + timedelta(seconds=self.ttl_seconds + self.touch_after)

    def touch_due(self, expires_at: datetime | None, now: datetime) -> bool:
        """Whether activity at ``now`` must refresh a session whose known expiry is ``expires_at``.

        ``expires_at - ttl_seconds`` is when the last touch happened plus ``touch_after``. A session
        stored before retention was configured has no expiry and is touched on its first activity.
        """
        return expires_at is None or now >= as_utc(expires_at) - timedelta(seconds=self.ttl_seconds)

    def leftover_before(self, previous_expiry: datetime) -> datetime:
        """Children expiring before this instant belong to a session generation that expired at
        ``previous_expiry`` (or earlier), not to one created after it.

        The previous generation's children expire before ``previous_expiry + touch_after``; the new
        generation's, written after ``previous_expiry``, not before ``previous_expiry + ttl_seconds +
        touch_after``. The threshold sits halfway, which tolerates clock skew of up to half the TTL
        between the machines writing.
        """
        return previous_expiry + timedelta(seconds=self.touch_after + self.ttl_seconds / 2)


def live(now: datetime) -> Document:
    """Query clause matching documents that have not expired (those without ``expires_at`` included)."""
    return {EXPIRES_AT: {"$not": {"$lte": now}}}


def expired(now: datetime) -> Document:
    """Query clause matching documents whose ``expires_at`` has passed."""
    return {EXPIRES_AT: {"$lte": now}}


def as_utc(value: datetime) -> datetime:
    """PyMongo returns naive UTC datetimes unless the client is ``tz_aware``: make them comparable."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
