"""The metrics as Prometheus families, built from one set of readings per scrape.

A value nobody can know yet is NaN rather than a 0 that would read as "down" or "failed" (a
connection never checked, the success of a run that never happened); a time that never came
is 0. Every series is always present, so an alert rule never has to reckon with one missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dashboard.metrics.readings import Readings

NAN = float("nan")


def timestamp(at: datetime | None) -> float:
    """Seconds since the epoch; 0 for never."""
    return at.timestamp() if at is not None else 0.0


def flag(value: bool | None) -> float:
    """1 or 0; NaN when not known."""
    return NAN if value is None else float(value)


class DatabaseCollector(Collector):
    """Reads the database when collected: register it on a registry made for one scrape."""

    def __init__(self, read: Callable[[], Readings]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        readings = self._read()
        yield from people(readings)
        yield from runs(readings)
        yield from connections(readings)
        yield GaugeMetricFamily(
            "dashboard_audit_entries",
            "Entries in the audit trail now: those written (the hash chain's head) less "
            "those pruned (the newest checkpoint), not a count of rows.",
            value=readings.audit_entries,
        )


def people(readings: Readings) -> Iterator[Metric]:
    states = GaugeMetricFamily(
        "dashboard_people",
        "People by provisioning state as the last plan or run left them (the Users page).",
        labels=["state"],
    )
    for state, count in readings.people.items():
        states.add_metric([state], count)
    yield states
    yield GaugeMetricFamily(
        "dashboard_people_needing_attention",
        "People the last plan flagged loudly: active in Workato while OneLogin says they "
        "should not be (the Users page's Needs attention).",
        value=readings.needing_attention,
    )
    yield GaugeMetricFamily(
        "dashboard_people_read_timestamp_seconds",
        "When the people were last read from OneLogin and Workato (a plan, a run or a "
        "provision-now); 0 before any.",
        value=timestamp(readings.people_read_at),
    )


def runs(readings: Readings) -> Iterator[Metric]:
    last = readings.last_run
    yield GaugeMetricFamily(
        "dashboard_last_run_finished_timestamp_seconds",
        "When the last sync or retry run finished, however it ended (one-user provisions "
        "and suspensions of chosen orphans are not counted); 0 before any.",
        value=timestamp(last.finished_at if last else None),
    )
    yield GaugeMetricFamily(
        "dashboard_last_run_success",
        "1 if the last sync or retry run succeeded (every write done), 0 if it failed, "
        "stopped, was cancelled or was interrupted; NaN before any.",
        value=flag(last.succeeded if last else None),
    )
    yield GaugeMetricFamily(
        "dashboard_last_reconcile_success_timestamp_seconds",
        "When a reconcile last completed: a scheduled plan made (in sync, applied or "
        "planned) or a sync run that succeeded, whichever is later; 0 before any.",
        value=timestamp(readings.last_reconcile_success_at),
    )
    yield GaugeMetricFamily(
        "dashboard_reconcile_interval_seconds",
        "DASHBOARD_RECONCILE_EVERY: how often a reconcile is planned unattended; 0 off.",
        value=readings.reconcile_every,
    )
    yield GaugeMetricFamily(
        "dashboard_reconcile_next_timestamp_seconds",
        "When the next scheduled reconcile is due (now, while the current interval's is "
        "still to be made); 0 when the schedule is off.",
        value=timestamp(readings.reconcile_next_at),
    )
    yield GaugeMetricFamily(
        "dashboard_run_active",
        "1 while a run is queued or running (one-user provisions aside), else 0.",
        value=float(readings.run_active),
    )


def connections(readings: Readings) -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "dashboard_connection_up",
        "1 if the connection answered its last test, setup check, plan or run; 0 if it "
        "could not be reached or refused the credential; NaN if not configured or not "
        "checked since its secret was saved.",
        labels=["connection"],
    )
    configured = GaugeMetricFamily(
        "dashboard_connection_configured",
        "1 if the connection is saved with its secret, else 0.",
        labels=["connection"],
    )
    checked = GaugeMetricFamily(
        "dashboard_connection_checked_timestamp_seconds",
        "When dashboard_connection_up was last found; 0 never.",
        labels=["connection"],
    )
    for kind, health in readings.connections.items():
        up.add_metric([kind], flag(health.ok))
        configured.add_metric([kind], float(health.configured))
        checked.add_metric([kind], timestamp(health.checked_at))
    yield up
    yield configured
    yield checked
    yield GaugeMetricFamily(
        "dashboard_scim_writes_enabled",
        "1 if a run may write to Workato (a SCIM connection with its token, not disabled "
        "with Disable SCIM), else 0.",
        value=float(readings.scim_writes_enabled),
    )
