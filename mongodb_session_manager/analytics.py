"""Usage and guardrail analytics, computed server-side with aggregation pipelines.

:meth:`AsyncSessionCatalog.usage` and :meth:`AsyncSessionCatalog.guardrail_interventions` build their
pipelines here. Every pipeline starts with a ``$match`` on an indexed time field of the messages
collection (``usage.at``, ``redaction.timestamp``), so a time range reads only the messages in it,
and returns grouped rows only: no message is loaded into Python.

Percentiles are exact nearest-rank percentiles: each group's values are collected, sorted with
``$sortArray`` and indexed (MongoDB 5.2+; the group's values are held in memory by the server, with
``allowDiskUse``). Only operators that both MongoDB and the test server support are used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from ._types import Document
from .errors import InvalidInputError

__all__ = [
    "GUARDRAIL_GROUPINGS",
    "PERCENTILES",
    "USAGE_GROUPINGS",
    "GuardrailReport",
    "GuardrailRow",
    "UsageReport",
    "UsageRow",
    "guardrail_pipeline",
    "usage_pipeline",
]

UsageGrouping = Literal["session", "agent", "model", "application", "day", "hour"]
GuardrailGrouping = Literal["policy", "session", "agent", "action", "day", "hour"]
#: What :meth:`AsyncSessionCatalog.usage` can group by (None: one total row).
USAGE_GROUPINGS: tuple[str, ...] = ("session", "agent", "model", "application", "day", "hour")
#: What :meth:`AsyncSessionCatalog.guardrail_interventions` can group by.
GUARDRAIL_GROUPINGS: tuple[str, ...] = ("policy", "session", "agent", "action", "day", "hour")
#: The percentiles reported for latency and tokens per call.
PERCENTILES: tuple[int, ...] = (50, 95, 99)
#: The most rows one query returns.
MAX_ROWS = 10_000

_TIME_FORMATS = {"day": "%Y-%m-%d", "hour": "%Y-%m-%dT%H:00Z"}
_TOKEN_SUMS = ("input_tokens", "output_tokens", "total_tokens", "cache_read_input_tokens", "cache_write_input_tokens")


def check_range(since: object, until: object) -> tuple[datetime | None, datetime | None]:
    for name, value in (("since", since), ("until", until)):
        if value is not None and not isinstance(value, datetime):
            raise InvalidInputError(f"{name} must be a datetime or None, got {type(value).__name__}")
    if isinstance(since, datetime) and isinstance(until, datetime) and _utc(since) >= _utc(until):
        raise InvalidInputError("since must be before until")
    return since, until  # type: ignore[return-value]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_ROWS:
        raise InvalidInputError(f"limit must be an int between 1 and {MAX_ROWS}, got {limit!r}")
    return limit


def check_grouping(by: object, allowed: Sequence[str], *, optional: bool) -> str | None:
    if by is None and optional:
        return None
    if by not in allowed:
        raise InvalidInputError(f"by must be one of {list(allowed)}{' or None' if optional else ''}, got {by!r}")
    return str(by)


# The lower bound of an open range: still a range on the index, which skips documents without the field.
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _time_match(path: str, since: datetime | None, until: datetime | None) -> Document:
    bounds: Document = {"$gte": _EPOCH if since is None else since}
    if until is not None:
        bounds["$lt"] = until
    return {path: bounds}


def _percentile(values: str, p: int) -> Document:
    """Nearest-rank percentile of the sorted array field ``values``: element ceil(p/100 * n) - 1."""
    size = {"$size": values}
    rank = {"$max": [{"$subtract": [{"$ceil": {"$multiply": [p / 100, size]}}, 1]}, 0]}
    return {"$cond": [{"$gt": [size, 0]}, {"$arrayElemAt": [values, {"$toInt": rank}]}, None]}


# -- usage ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageRow:
    """Usage of one group (or of everything, ``key`` None).

    Attributes:
        key: The group: a session id, agent id, model id, application name, ``YYYY-MM-DD`` day or
            ``YYYY-MM-DDTHH:00Z`` hour (UTC); None for the total.
        calls: Model calls stored as messages.
        turns: Invocations ended in the group (messages carrying ``invocation`` totals).
        latency_p50_ms, ...: Nearest-rank percentiles of per-call latency; tokens_p50 ...: of tokens per call.
    """

    key: str | None
    calls: int = 0
    turns: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    latency_ms: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    tokens_p50: float | None = None
    tokens_p95: float | None = None
    tokens_p99: float | None = None
    tool_calls: int = 0
    tool_errors: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> UsageRow:
        values: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            value = document.get(name)
            if name == "key" or value is None:
                continue
            values[name] = _utc(value) if isinstance(value, datetime) else value
        key = document.get("_id")
        return cls(key=None if key is None else str(key), **values)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (times as ISO strings)."""
        result = asdict(self)
        for name in ("first_at", "last_at"):
            value = result[name]
            result[name] = None if value is None else value.isoformat()
        return result


@dataclass(frozen=True)
class UsageReport:
    """What :meth:`AsyncSessionCatalog.usage` returns: one row per group, and the total."""

    by: str | None
    since: datetime | None
    until: datetime | None
    rows: list[UsageRow]
    total: UsageRow
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return {
            "by": self.by,
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "rows": [row.to_dict() for row in self.rows],
            "total": self.total.to_dict(),
            "truncated": self.truncated,
        }


def _usage_key(by: str | None) -> Any:
    if by is None:
        return None
    if by in _TIME_FORMATS:
        return {"$dateToString": {"date": "$usage.at", "format": _TIME_FORMATS[by]}}
    return {
        "session": "$session_id",
        "agent": "$agent_id",
        "model": "$usage.model",
        "application": "$usage.application",
    }[by]


def _usage_group(key: Any) -> list[Document]:
    is_turn = {"$cond": [{"$eq": [{"$type": "$invocation"}, "object"]}, 1, 0]}
    group: Document = {
        "_id": key,
        "calls": {"$sum": 1},
        "turns": {"$sum": is_turn},
        **{name: {"$sum": {"$ifNull": [f"$usage.{name}", 0]}} for name in _TOKEN_SUMS},
        "latency_ms": {"$sum": {"$ifNull": ["$usage.latency_ms", 0]}},
        "tool_calls": {"$sum": {"$ifNull": ["$invocation.tool_calls", 0]}},
        "tool_errors": {"$sum": {"$ifNull": ["$invocation.tool_errors", 0]}},
        "first_at": {"$min": "$usage.at"},
        "last_at": {"$max": "$usage.at"},
        "latencies": {"$push": {"$ifNull": ["$usage.latency_ms", 0]}},
        "tokens": {"$push": {"$ifNull": ["$usage.total_tokens", 0]}},
    }
    return [
        {"$group": group},
        {
            "$set": {
                "latencies": {"$sortArray": {"input": "$latencies", "sortBy": 1}},
                "tokens": {"$sortArray": {"input": "$tokens", "sortBy": 1}},
            }
        },
        {
            "$set": {
                **{f"latency_p{p}_ms": _percentile("$latencies", p) for p in PERCENTILES},
                **{f"tokens_p{p}": _percentile("$tokens", p) for p in PERCENTILES},
            }
        },
        {"$unset": ["latencies", "tokens"]},
    ]


def usage_pipeline(match: Mapping[str, Any], by: str | None, *, limit: int = 1000) -> list[Document]:
    """The pipeline of :meth:`AsyncSessionCatalog.usage`: one ``$facet`` with the grouped rows
    (``limit`` + 1 of them, to tell truncation) and the total."""
    if by in _TIME_FORMATS:
        order: Document = {"_id": 1}
    else:
        order = {"total_tokens": -1, "_id": 1}
    return [
        {"$match": dict(match)},
        {
            "$facet": {
                "rows": [*_usage_group(_usage_key(by)), {"$sort": order}, {"$limit": limit + 1}],
                "total": _usage_group(None),
            }
        },
    ]


def usage_match(
    since: datetime | None,
    until: datetime | None,
    *,
    application_name: str | None = None,
    session_ids: Sequence[str] | None = None,
    agent_id: str | None = None,
    model: str | None = None,
) -> Document:
    """The ``$match`` of a usage query (``usage.at`` first: the indexed range). Values are validated ids,
    compared as plain values (some planners pick an index for those only)."""
    match = _time_match("usage.at", since, until)
    if application_name is not None:
        match["usage.application"] = application_name
    if session_ids is not None:
        match["session_id"] = {"$in": list(session_ids)}
    if agent_id is not None:
        match["agent_id"] = agent_id
    if model is not None:
        match["usage.model"] = model
    return match


def usage_report(
    result: Mapping[str, Any] | None, by: str | None, since: datetime | None, until: datetime | None, limit: int
) -> UsageReport:
    """Build the report from the pipeline's single result document."""
    rows = [UsageRow.from_document(document) for document in (result or {}).get("rows") or []]
    totals = (result or {}).get("total") or []
    total = UsageRow.from_document(totals[0]) if totals else UsageRow(key=None)
    return UsageReport(by, since, until, rows[:limit], total, truncated=len(rows) > limit)


# -- guardrails -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GuardrailRow:
    """Guardrail interventions of one group.

    Attributes:
        key: The group (a policy name, session id, agent id, action, day or hour).
        interventions: Redactions with an audit record in the group.
        policies: Interventions per triggered policy (an intervention may trigger several).
    """

    key: str | None
    interventions: int
    policies: dict[str, int] = field(default_factory=dict)
    last_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return {
            "key": self.key,
            "interventions": self.interventions,
            "policies": dict(self.policies),
            "last_at": None if self.last_at is None else self.last_at.isoformat(),
        }


@dataclass(frozen=True)
class GuardrailReport:
    """What :meth:`AsyncSessionCatalog.guardrail_interventions` returns."""

    by: str
    since: datetime | None
    until: datetime | None
    rows: list[GuardrailRow]
    total: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return {
            "by": self.by,
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "rows": [row.to_dict() for row in self.rows],
            "total": self.total,
        }


def guardrail_match(
    since: datetime | None,
    until: datetime | None,
    *,
    session_ids: Sequence[str] | None = None,
    agent_id: str | None = None,
) -> Document:
    """The ``$match`` of a guardrail query (``redaction.timestamp``: the indexed range)."""
    match = _time_match("redaction.timestamp", since, until)
    if session_ids is not None:
        match["session_id"] = {"$in": list(session_ids)}
    if agent_id is not None:
        match["agent_id"] = agent_id
    return match


def guardrail_pipeline(match: Mapping[str, Any], by: str, *, limit: int = 1000) -> list[Document]:
    """Interventions per group, with per-policy counts: each redaction is unwound into its policies
    (kept once with none), counted per (group, policy), then folded per group."""
    if by == "policy":
        key: Any = "$policy"
    elif by in _TIME_FORMATS:
        key = {"$dateToString": {"date": "$redaction.timestamp", "format": _TIME_FORMATS[by]}}
    else:
        key = {"session": "$session_id", "agent": "$agent_id", "action": "$redaction.action"}[by]
    policy_names = {
        "$map": {
            "input": {"$objectToArray": {"$ifNull": ["$redaction.policies_triggered", {}]}},
            "as": "entry",
            "in": "$$entry.k",
        }
    }
    order: Document = {"_id": 1} if by in _TIME_FORMATS else {"interventions": -1, "_id": 1}
    rows = [
        {"$project": {"session_id": 1, "agent_id": 1, "redaction": 1, "policy": policy_names}},
        {"$unwind": {"path": "$policy", "preserveNullAndEmptyArrays": True, "includeArrayIndex": "position"}},
        {
            "$group": {
                "_id": {"key": key, "policy": "$policy"},
                "count": {"$sum": 1},
                # Each redaction is counted once: at its first policy, or alone without policies.
                "interventions": {"$sum": {"$cond": [{"$gt": [{"$ifNull": ["$position", 0]}, 0]}, 0, 1]}},
                "last_at": {"$max": "$redaction.timestamp"},
            }
        },
        {
            "$group": {
                "_id": "$_id.key",
                "interventions": {"$sum": "$interventions"},
                "policies": {"$push": {"policy": "$_id.policy", "count": "$count"}},
                "last_at": {"$max": "$last_at"},
            }
        },
        {"$sort": order},
        {"$limit": limit},
    ]
    return [{"$match": dict(match)}, {"$facet": {"rows": rows, "total": [{"$count": "interventions"}]}}]


def guardrail_report(
    result: Mapping[str, Any] | None, by: str, since: datetime | None, until: datetime | None
) -> GuardrailReport:
    """Build the report from the pipeline's single result document (policy counts folded into dicts)."""
    rows = []
    for document in (result or {}).get("rows") or ():
        policies = {
            str(item["policy"]): int(item["count"])
            for item in document.get("policies") or ()
            if item.get("policy") is not None
        }
        last_at = document.get("last_at")
        key = document.get("_id")
        interventions = int(document.get("interventions") or 0)
        if by == "policy":
            # Grouped by policy, an intervention is counted under each policy it triggered.
            interventions = sum(policies.values()) or interventions
        rows.append(
            GuardrailRow(
                key=None if key is None else str(key),
                interventions=interventions,
                policies=dict(sorted(policies.items())),
                last_at=_utc(last_at) if isinstance(last_at, datetime) else None,
            )
        )
    totals = (result or {}).get("total") or []
    return GuardrailReport(by, since, until, rows, int(totals[0]["interventions"]) if totals else 0)
