"""Compatibility names for modules not yet moved: the outbox (queueing, the worker) is ``services.mail_outbox``,
template checking is ``integrations.mail.compose``.

Only ``services.aanvraag`` and ``cli.config_check`` still import from here; once they import from those modules,
delete this file (it points from integrations up to services, against the arrows).
"""

from __future__ import annotations

from integrations.mail.compose import check_templates, ref_for
from services.mail_outbox import LABELS, MailService

__all__ = ["LABELS", "MailService", "check_templates", "ref_for"]
