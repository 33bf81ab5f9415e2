"""Guardrail audit records: what a redaction stores, and the session-level summary.

A redaction (:meth:`MongoDBSessionManager.redact_latest_message`) stores, in the message document's
``redaction`` field::

    {action: "BLOCKED", timestamp: ISODate(...), stop_reason: "guardrail_intervened",
     policies_triggered: {contentPolicy: ["HATE/HIGH"], topicPolicy: ["investment/BLOCKED"]},
     guardrail_trace: {...}}                      # stop reason, policies and trace when known

(the shape the earlier library stored as ``guardrail_event``, which the legacy migration maps to
this field), and updates the session document's summary ``guardrails``::

    {count: 3, last_at: ISODate(...), policies: ["contentPolicy", "topicPolicy"]}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ._types import Document
from .errors import InvalidInputError
from .guardrails import GUARDRAIL_ACTION_BLOCKED

__all__ = ["GUARDRAIL_SUMMARY_FIELD", "REDACTION_FIELD", "policies_triggered", "redaction_record", "summary_update"]

#: Message document field holding a redaction's audit record.
REDACTION_FIELD = "redaction"
#: Session document field holding the guardrail summary.
GUARDRAIL_SUMMARY_FIELD = "guardrails"

# (policy, list inside the policy, fields describing one triggered item), following Bedrock's
# GuardrailAssessment shape.
_POLICY_ITEMS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("contentPolicy", "filters", ("type", "confidence")),
    ("topicPolicy", "topics", ("name", "action")),
    ("wordPolicy", "customWords", ("match",)),
    ("wordPolicy", "managedWordLists", ("type", "match")),
    ("sensitiveInformationPolicy", "piiEntities", ("type", "action")),
    ("sensitiveInformationPolicy", "regexes", ("name", "action")),
    ("contextualGroundingPolicy", "filters", ("type", "score", "threshold")),
    ("automatedReasoningPolicy", "findings", ("type",)),
)
_POLICY_NAMES = frozenset(policy for policy, _, _ in _POLICY_ITEMS)


def _assessments(node: object) -> Iterable[Mapping[str, Any]]:
    """Every assessment under ``node``: an assessment itself, or a map or list of them (Bedrock nests
    them per guardrail id: ``{id: assessment}`` for input, ``{id: [assessment]}`` for output)."""
    if isinstance(node, Mapping):
        if _POLICY_NAMES & set(node):
            yield node
            return
        for value in node.values():
            yield from _assessments(value)
    elif isinstance(node, list):
        for value in node:
            yield from _assessments(value)


def policies_triggered(trace: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """A queryable summary of a guardrail trace: policy name -> triggered items.

    Example: ``{"contentPolicy": ["HATE/HIGH"], "sensitiveInformationPolicy": ["EMAIL/ANONYMIZED"]}``.
    Accepts Bedrock's ``trace``, its ``guardrail`` part, or a single assessment; unknown shapes give ``{}``.
    """
    if not isinstance(trace, Mapping):
        return {}
    if isinstance(trace.get("guardrail"), Mapping):
        trace = trace["guardrail"]
    parts = [trace[key] for key in ("inputAssessment", "outputAssessments") if key in trace] or [trace]
    summary: dict[str, list[str]] = {}
    for part in parts:
        for assessment in _assessments(part):
            for policy, items, fields in _POLICY_ITEMS:
                section = assessment.get(policy)
                listed = section.get(items) if isinstance(section, Mapping) else None
                for item in listed if isinstance(listed, list) else ():
                    if isinstance(item, Mapping):
                        summary.setdefault(policy, []).append("/".join(str(item.get(f, "UNKNOWN")) for f in fields))
    return summary


def redaction_record(
    *,
    at: datetime,
    action: object = None,
    stop_reason: object = None,
    guardrail_trace: object = None,
) -> Document:
    """The audit record stored with a redaction (see the module documentation).

    Raises:
        InvalidInputError: ``action`` or ``stop_reason`` is not a string, or the trace is not a dict.
    """
    if action is not None and not isinstance(action, str):
        raise InvalidInputError(f"action must be a str, got {type(action).__name__}")
    if stop_reason is not None and not isinstance(stop_reason, str):
        raise InvalidInputError(f"stop_reason must be a str, got {type(stop_reason).__name__}")
    if guardrail_trace is not None and not isinstance(guardrail_trace, Mapping):
        raise InvalidInputError(f"guardrail_trace must be a dict, got {type(guardrail_trace).__name__}")
    record: Document = {"action": action or GUARDRAIL_ACTION_BLOCKED, "timestamp": at}
    if stop_reason:
        record["stop_reason"] = stop_reason
    policies = policies_triggered(guardrail_trace)
    if policies:
        record["policies_triggered"] = policies
    if guardrail_trace:
        record["guardrail_trace"] = dict(guardrail_trace)
    return record


def summary_update(record: Mapping[str, Any]) -> Document:
    """The session-document update adding one redaction to the ``guardrails`` summary."""
    update: Document = {
        "$inc": {f"{GUARDRAIL_SUMMARY_FIELD}.count": 1},
        "$max": {f"{GUARDRAIL_SUMMARY_FIELD}.last_at": record["timestamp"]},
    }
    policies = sorted(record.get("policies_triggered") or {})
    if policies:
        update["$addToSet"] = {f"{GUARDRAIL_SUMMARY_FIELD}.policies": {"$each": policies}}
    return update
