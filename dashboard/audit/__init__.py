"""The audit trail: one write path (`record`), read by the Audit page; `sign_digest` signs
where the chain stands (dashboard.audit.digests), for the moments that call for one (a sync
run's end)."""

from dashboard.audit.digests import sign as sign_digest
from dashboard.audit.service import record, record_all

__all__ = ["record", "record_all", "sign_digest"]
