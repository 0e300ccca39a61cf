"""Unattended operation: the reconcile planned (and, when allowed, applied) on a schedule,
once per interval across every process and instance."""
