"""Names for guardrail interventions, as the earlier library exported them.

A model provider's guardrail that blocks content makes Strands redact the latest message;
:meth:`MongoDBSessionManager.redact_latest_message` stores the ``action``, ``stop_reason`` and
``guardrail_trace`` it is given in the message document's ``redaction`` field.
"""

from __future__ import annotations

# The action recorded for a redaction when the caller names none.
GUARDRAIL_ACTION_BLOCKED = "BLOCKED"
# Stop reasons meaning a guardrail intervened.
GUARDRAIL_STOP_REASONS: frozenset[str] = frozenset({"guardrail_intervened", "content_filtered"})

__all__ = ["GUARDRAIL_ACTION_BLOCKED", "GUARDRAIL_STOP_REASONS"]
