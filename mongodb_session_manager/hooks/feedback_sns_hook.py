"""Feedback notifications to Amazon SNS, one topic per rating (needs the ``[aws]`` extra).

``create_feedback_hook(...)`` gives a ``feedback_hook``: each feedback is stored first, then a
notification is published in the background to the topic of its rating (``"up"`` -> good,
``"down"`` -> bad, anything else -> neutral; a topic of ``"none"`` sends nothing).

Subject: ``{subject_prefix}on session {session_id}`` (cut to SNS's 99 characters, one line).
Body: ``{body_prefix}Password: {viewer password}\\n\\nSession: {session_id}\\n\\n{comment}``; the
session viewer password (a legacy per-session token, "N/A" when the manager has none) is read from
the session manager in the background. Attributes: ``session_id`` and ``rating`` (``positive``,
``negative`` or ``neutral``). Prefixes are ``str.format`` templates with ``{session_id}``,
``{rating}`` and ``{timestamp}`` (ISO 8601, UTC).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import MongoDBSessionError
from ._base import NotificationHook, manager_of, utc_timestamp
from ._delivery import Job
from .utils_sns import publish_message

logger = logging.getLogger(__name__)

#: The topic value that turns notifications of a rating off.
DISABLED_TOPIC = "none"
#: SNS subjects must be shorter than 100 characters, on one line.
MAX_SUBJECT_LENGTH = 99
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class _Route:
    topic_arn: str
    rating: str
    subject_prefix: str | None
    body_prefix: str | None


class FeedbackSNSHook(NotificationHook):
    """A ``feedback_hook`` that publishes each stored feedback to the SNS topic of its rating."""

    def __init__(
        self,
        topic_arn_good: str,
        topic_arn_bad: str,
        topic_arn_neutral: str,
        subject_prefix_good: str | None = None,
        subject_prefix_bad: str | None = None,
        subject_prefix_neutral: str | None = None,
        body_prefix_good: str | None = None,
        body_prefix_bad: str | None = None,
        body_prefix_neutral: str | None = None,
    ) -> None:
        """Route feedback by rating to three topics.

        Args:
            topic_arn_good: Topic for ``rating="up"``; ``"none"`` sends nothing.
            topic_arn_bad: Topic for ``rating="down"``; ``"none"`` sends nothing.
            topic_arn_neutral: Topic for any other rating (e.g. ``None``); ``"none"`` sends nothing.
            subject_prefix_good: Template put before the subject of positive feedback.
            subject_prefix_bad: Template put before the subject of negative feedback.
            subject_prefix_neutral: Template put before the subject of neutral feedback.
            body_prefix_good: Template put before the body of positive feedback.
            body_prefix_bad: Template put before the body of negative feedback.
            body_prefix_neutral: Template put before the body of neutral feedback.

        Raises:
            AWSHooksUnavailableError: boto3 is not installed (an ``ImportError`` too).
        """
        super().__init__("FeedbackSNSHook")
        self.topic_arn_good = topic_arn_good
        self.topic_arn_bad = topic_arn_bad
        self.topic_arn_neutral = topic_arn_neutral
        self.subject_prefix_good = subject_prefix_good
        self.subject_prefix_bad = subject_prefix_bad
        self.subject_prefix_neutral = subject_prefix_neutral
        self.body_prefix_good = body_prefix_good
        self.body_prefix_bad = body_prefix_bad
        self.body_prefix_neutral = body_prefix_neutral
        logger.info(
            "FeedbackSNSHook: good -> %s, bad -> %s, neutral -> %s", topic_arn_good, topic_arn_bad, topic_arn_neutral
        )

    def _route(self, rating: object) -> _Route:
        if rating == "up":
            return _Route(self.topic_arn_good, "positive", self.subject_prefix_good, self.body_prefix_good)
        if rating == "down":
            return _Route(self.topic_arn_bad, "negative", self.subject_prefix_bad, self.body_prefix_bad)
        return _Route(self.topic_arn_neutral, "neutral", self.subject_prefix_neutral, self.body_prefix_neutral)

    def _apply_template(self, template: str | None, variables: Mapping[str, str]) -> str:
        """``template`` with ``{session_id}``, ``{rating}`` and ``{timestamp}`` filled in; unchanged if
        it names another variable or is not a valid template; ``""`` for None."""
        if template is None:
            return ""
        try:
            return template.format(**variables)
        except (KeyError, IndexError, ValueError, AttributeError) as error:
            logger.warning("FeedbackSNSHook: prefix template left as is (%s: %s)", type(error).__name__, error)
            return template

    def _arguments(self, action: str, kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
        return (kwargs["feedback"],) if action == "add" and "feedback" in kwargs else ()

    def _notification(
        self, original_func: Callable[..., Any], action: str, session_id: str, kwargs: Mapping[str, Any]
    ) -> tuple[str, Job] | None:
        if action != "add" or "feedback" not in kwargs:
            return None
        return self._prepared(session_id, kwargs["feedback"], manager_of(original_func, kwargs))

    def _prepared(self, session_id: str, feedback: Mapping[str, Any], manager: Any) -> tuple[str, Job] | None:
        route = self._route(feedback.get("rating"))
        if not route.topic_arn or route.topic_arn == DISABLED_TOPIC:
            logger.debug("FeedbackSNSHook: %s feedback of session %r not sent (topic none)", route.rating, session_id)
            return None
        variables = {"session_id": session_id, "rating": route.rating, "timestamp": utc_timestamp()}
        subject = self._apply_template(route.subject_prefix, variables) + f"on session {session_id}"
        subject = _LINE_BREAKS.sub(" ", subject)[:MAX_SUBJECT_LENGTH]
        body_prefix = self._apply_template(route.body_prefix, variables)
        comment = feedback.get("comment")
        text = f"Session: {session_id}\n\n{'' if comment is None else comment}"

        def publish() -> None:
            # The viewer password is read here, off the caller's thread.
            publish_message(
                topic_arn=route.topic_arn,
                message=f"{body_prefix}Password: {_viewer_password(manager)}\n\n{text}",
                subject=subject,
                message_attributes={
                    "session_id": {"DataType": "String", "StringValue": session_id},
                    "rating": {"DataType": "String", "StringValue": route.rating},
                },
            )
            logger.info(
                "FeedbackSNSHook: %s feedback of session %r sent to %s", route.rating, session_id, route.topic_arn
            )

        return "feedback notification to SNS", publish

    async def on_feedback_add(self, session_id: str, feedback: Mapping[str, Any], **kwargs: Any) -> None:
        """Publish the notification for ``feedback`` now and wait for it (failures are logged, not
        raised). ``session_manager=`` supplies the viewer password."""
        self._queue(session_id, self._prepared(session_id, feedback, kwargs.get("session_manager")))
        await self.flush_async(session_id=session_id)


def _viewer_password(manager: Any) -> str:
    """The session viewer password, or "N/A" (the notification still goes out if it cannot be read)."""
    getter = getattr(manager, "get_session_viewer_password", None)
    if getter is None:
        return "N/A"
    try:
        password = getter()
    except Exception as error:
        logger.warning("FeedbackSNSHook: viewer password not read (%s); sending N/A", type(error).__name__)
        return "N/A"
    return "N/A" if password is None else str(password)


def create_feedback_hook(
    topic_arn_good: str,
    topic_arn_bad: str,
    topic_arn_neutral: str,
    subject_prefix_good: str | None = None,
    subject_prefix_bad: str | None = None,
    subject_prefix_neutral: str | None = None,
    body_prefix_good: str | None = None,
    body_prefix_bad: str | None = None,
    body_prefix_neutral: str | None = None,
) -> FeedbackSNSHook | None:
    """A :class:`FeedbackSNSHook` to pass as ``feedback_hook=``; same arguments.

    Returns None (and logs why at WARNING) when the hook cannot be built, e.g. boto3 is not
    installed or the endpoint is not a valid URL, as the earlier library did.
    """
    try:
        return FeedbackSNSHook(
            topic_arn_good,
            topic_arn_bad,
            topic_arn_neutral,
            subject_prefix_good,
            subject_prefix_bad,
            subject_prefix_neutral,
            body_prefix_good,
            body_prefix_bad,
            body_prefix_neutral,
        )
    except MongoDBSessionError as error:
        logger.warning("feedback SNS hook not created: %s", error)
        return None
