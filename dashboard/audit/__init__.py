"""The audit trail: one write path (`record`), read by the Audit page."""

from dashboard.audit.service import record

__all__ = ["record"]
