"""Prometheus metrics, one registry per runtime so tests and two bots in one process do not collide."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.commands = Counter(
            "zsm_commands_handled", "Commands handled, by command and outcome", ["command", "outcome"],
            registry=self.registry,
        )
        self.errors = Counter("zsm_command_errors", "Commands that failed unexpectedly", registry=self.registry)
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
        self._last_sync_monotonic: float | None = None

    def synced(self) -> None:
        self._last_sync_monotonic = time.monotonic()
        self.last_sync.set(time.time())

    def seconds_since_sync(self) -> float:
        if self._last_sync_monotonic is None:
            return float("inf")
        return time.monotonic() - self._last_sync_monotonic

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))
