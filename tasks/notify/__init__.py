"""Telling people: redaction (redact), Slack messages (messages), their delivery (delivery),
and the daily standup (standup). Flows call `notify_failure` and `post_alert`."""
from runbook.tasks.notify.delivery import notify_failure, post_alert

__all__ = ["notify_failure", "post_alert"]
