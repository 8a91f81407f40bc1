"""Prometheus metrics, one registry per runtime so tests and two bots in one process do not collide.

Counters and the latency histogram are updated where things happen; the figures that live in the database (the
send and redaction queues, the mail outbox, the escalations) are read on each scrape (``scrape``), so they are
exact instead of capped at a batch size. docs/operations.md lists every metric with alert rules.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import time
from collections.abc import Iterable
from datetime import datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from config.build import version
from domain.clock import Clock
from storage import audit, ops_queries, outgoing, redaction
from storage.db import SessionFactory, read_only

log = logging.getLogger(__name__)
# A command commits within milliseconds (a !check some 2 ms on SQLite); the top buckets catch a slow registry or
# database.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SCRAPE_TIMEOUT_S = 5.0


class _AuditTurnTimeouts(Collector):
    def collect(self) -> Iterable[Metric]:
        yield CounterMetricFamily(
            "zsm_audit_turn_timeouts", "PostgreSQL: commits that waited the longest for this process's turn at the "
            "audit head (storage.audit.TURN_WAIT_S) and went on without it", value=audit.turn_timeouts)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.commands = Counter(
            "zsm_commands_handled", "Commands handled, by command and outcome", ["command", "outcome"],
            registry=self.registry,
        )
        self.errors = Counter("zsm_command_errors", "Commands that failed unexpectedly", registry=self.registry)
        self.rerun_in_transaction = Counter(
            "zsm_commands_rerun_in_transaction", "PostgreSQL: commands begun without a transaction that had to run "
            "again in one (nothing was written the first time)", ["command"], registry=self.registry)
        # Read from storage.audit at each scrape: the turn is taken deep in a commit, where no metrics object is.
        self.registry.register(_AuditTurnTimeouts())
        self.sync_errors = Counter("zsm_sync_errors", "Failed sync attempts", registry=self.registry)
        self.last_sync = Gauge("zsm_last_sync_timestamp_seconds", "Unix time of the last good sync",
                               registry=self.registry)
        self.sync_lag = Gauge("zsm_sync_lag_seconds", "Seconds since the last good sync", registry=self.registry)
        self.sync_lag.set_function(self.seconds_since_sync)
        self.send_queue_length = Gauge("zsm_send_queue_length", "Messages waiting to be sent",
                                       registry=self.registry)
        self.messages_sent = Counter("zsm_messages_sent", "Matrix messages sent", registry=self.registry)
        self.send_errors = Counter("zsm_send_errors", "Failed send attempts", registry=self.registry)
        self.rate_limited = Counter("zsm_rate_limited", "429 answers from the homeserver", registry=self.registry)
        self.cross_signed = Gauge("zsm_device_cross_signed", "1 when the bot's device carries its own "
                                  "self-signing signature", registry=self.registry)
        self.redactions = Counter("zsm_messages_redacted", "Bot messages redacted in the room (retention, sepot 01)",
                                  registry=self.registry)
        self.redaction_errors = Counter("zsm_redaction_errors", "Failed redaction attempts", registry=self.registry)
        self.redaction_queue_length = Gauge("zsm_redaction_queue_length", "Bot messages waiting to be redacted",
                                            registry=self.registry)
        self.device_conflict = Gauge("zsm_device_keys_conflict", "1 when the homeserver refuses the bot's one-time "
                                     "keys: crypto store lost while device_id was kept", registry=self.registry)
        self.active_instance = Gauge("zsm_active_instance", "1 on the active instance, 0 on a standby (it syncs and "
                                     "waits for the active lock)", registry=self.registry)
        self.command_seconds = Histogram(
            "zsm_command_duration_seconds", "Time from receiving a command to its committed answer, by command",
            ["command"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.build_info = Gauge("zsm_build_info", "Always 1; the labels say what runs",
                                ["version", "python", "database"], registry=self.registry)
        self.outbox = Gauge("zsm_mail_outbox", "Mails in the outbox by state (pending: first attempt due; retrying: "
                            "failed before; dead: given up; concept: waits for !outbox bevestig)", ["state"],
                            registry=self.registry)
        self.outbox_oldest_age = Gauge("zsm_mail_outbox_oldest_age_seconds", "Age of the oldest mail not yet sent "
                                       "(pending or retrying); 0 when none", registry=self.registry)
        self.requests_open = Gauge("zsm_aanvragen_open", "Open advice requests by state", ["state"],
                                   registry=self.registry)
        self.escalation_steps_due = Gauge("zsm_escalation_steps_due", "Escalation steps whose time has come and "
                                          "that were not carried out yet", registry=self.registry)
        self.requests_past_deadline = Gauge("zsm_aanvragen_past_deadline", "Open advice requests whose term has "
                                            "ended", registry=self.registry)
        self.scrape_errors = Counter("zsm_metrics_scrape_errors", "Scrapes whose database figures could not be "
                                     "read (the figures keep their last value)", registry=self.registry)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.build_info.labels(version(), platform.python_version(), "-").set(1)
        self._last_sync_monotonic: float | None = None
        self._known: frozenset[str] = frozenset()

    def set_database(self, kind: str) -> None:
        """The database kind in the build info (``sqlite`` or ``postgresql``; never the URL)."""
        self.build_info.clear()
        self.build_info.labels(version(), platform.python_version(), kind).set(1)

    def known_commands(self, names: Iterable[str]) -> None:
        """Label values for commands: any other name (a typo, a flood of invented ones) is counted as ``-``, so
        users cannot grow the number of series."""
        self._known = frozenset(names)

    def command_done(self, command: str, status: str, seconds: float) -> None:
        if self._known and command not in self._known:
            command = "-"
        self.commands.labels(command, status).inc()
        self.command_seconds.labels(command).observe(seconds)

    def synced(self) -> None:
        self._last_sync_monotonic = time.monotonic()
        self.last_sync.set(time.time())

    def seconds_since_sync(self) -> float:
        if self._last_sync_monotonic is None:
            return float("inf")
        return time.monotonic() - self._last_sync_monotonic

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))

    async def scrape(self, sessions: SessionFactory, clock: Clock) -> bytes:
        """Read the database figures, then render; a slow or unreachable database leaves the last values (and
        counts a scrape error) rather than failing the scrape."""
        try:
            await asyncio.wait_for(self._refresh(sessions, clock.now()), SCRAPE_TIMEOUT_S)
        except Exception as exc:
            self.scrape_errors.inc()
            log.warning("metrics: database figures not read", extra={"error": type(exc).__name__})
        return self.render()

    async def _refresh(self, sessions: SessionFactory, now: datetime) -> None:
        # A reader: a scrape neither takes nor waits for the write lock, and its timeout never cancels a writer's
        # BEGIN halfway.
        async with read_only(sessions) as s:
            self.send_queue_length.set(await outgoing.pending_count(s))
            self.redaction_queue_length.set(await redaction.pending_count(s))
            box = await ops_queries.outbox_figures(s, now)
            esc = await ops_queries.escalation_figures(s, now)
        for state in ("pending", "retrying", "dead", "concept"):
            self.outbox.labels(state).set(getattr(box, state))
        self.outbox_oldest_age.set(box.oldest_age_seconds)
        for state, n in esc.open_requests.items():
            self.requests_open.labels(state).set(n)
        self.escalation_steps_due.set(esc.steps_due)
        self.requests_past_deadline.set(esc.past_deadline)
