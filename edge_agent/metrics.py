"""Prometheus metrics of the edge agent (devices, outbox, delivery).

One :class:`EdgeMetrics` object owns its own :class:`prometheus_client.CollectorRegistry`, so tests
create fresh ones (``EdgeMetrics()``) and never see counts from another test. The agent uses the
module-level :data:`METRICS` (registry :data:`REGISTRY`), which ``fittrack edge run`` exposes over
HTTP with :func:`start_http_server`.

Labels:

* ``device_id`` -- stable per physical sensor (``ble-`` + 12 hex), ``stream`` -- DESIGN §3 stream name.
* ``kind`` -- device kind (hr, csc, cps, rsc, ftms, imu), ``adapter`` -- BlueZ adapter (hci0).
* ``transport`` -- ``mqtt`` or ``grpc``; ``reason`` -- why something happened (see each metric).

Device-side metrics (``devices_connected``, ``notifications_total``, ``reconnects_total``,
``devices_queued``) are incremented by the devices layer; the outbox and delivery metrics by
:mod:`edge_agent.outbox` and :mod:`edge_agent.delivery`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

__all__ = ["EdgeMetrics", "METRICS", "REGISTRY", "serve_metrics"]


@dataclass(eq=False)
class EdgeMetrics:
    """All metrics of one agent, registered in ``registry`` (a fresh one unless given)."""

    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))

    def __post_init__(self) -> None:
        r = self.registry
        # --- devices (incremented by the devices layer) ---
        self.devices_connected = Gauge(
            "fittrack_edge_devices_connected",
            "BLE devices currently connected and subscribed, by adapter and kind.",
            ["adapter", "kind"],
            registry=r,
        )
        self.devices_queued = Gauge(
            "fittrack_edge_devices_queued",
            "Configured devices waiting for a connection slot (over the adapter's budget).",
            ["adapter"],
            registry=r,
        )
        self.notifications_total = Counter(
            "fittrack_edge_notifications",
            "GATT notifications received, by device and characteristic/stream.",
            ["device_id", "stream"],
            registry=r,
        )
        self.decode_errors_total = Counter(
            "fittrack_edge_decode_errors",
            "Notifications or files that failed to decode (the valid part is kept), by device and stream.",
            ["device_id", "stream"],
            registry=r,
        )
        self.reconnects_total = Counter(
            "fittrack_edge_reconnects",
            "Reconnection attempts to a device after a dropped link, by device and outcome (ok|failed).",
            ["device_id", "outcome"],
            registry=r,
        )
        self.fit_files_imported_total = Counter(
            "fittrack_edge_fit_files_imported",
            "FIT files imported from the watched folder, by outcome (ok|error|duplicate).",
            ["outcome"],
            registry=r,
        )
        # --- outbox ---
        self.outbox_depth_batches = Gauge(
            "fittrack_edge_outbox_depth_batches",
            "Batches in the outbox (not yet acknowledged), by priority class.",
            ["priority"],
            registry=r,
        )
        self.outbox_depth_samples = Gauge(
            "fittrack_edge_outbox_depth_samples",
            "Samples in the outbox (not yet acknowledged), by priority class.",
            ["priority"],
            registry=r,
        )
        self.outbox_bytes = Gauge(
            "fittrack_edge_outbox_bytes",
            "Encoded batch bytes held in the outbox.",
            registry=r,
        )
        self.outbox_oldest_age_s = Gauge(
            "fittrack_edge_outbox_oldest_age_seconds",
            "Age in seconds of the oldest unacknowledged batch (0 when empty).",
            registry=r,
        )
        self.outbox_appended_samples_total = Counter(
            "fittrack_edge_outbox_appended_samples",
            "Samples written durably to the outbox, by stream.",
            ["stream"],
            registry=r,
        )
        # --- delivery ---
        self.acked_samples_total = Counter(
            "fittrack_edge_acked_samples",
            "Samples acknowledged by the server and removed from the outbox, by stream and status "
            "(stored|duplicate).",
            ["stream", "status"],
            registry=r,
        )
        self.rejected_samples_total = Counter(
            "fittrack_edge_rejected_samples",
            "Samples the server rejected (removed from the outbox, logged), by stream.",
            ["stream"],
            registry=r,
        )
        self.resent_samples_total = Counter(
            "fittrack_edge_resent_samples",
            "Samples sent again, by stream and reason (timeout|reconnect|retry|restart).",
            ["stream", "reason"],
            registry=r,
        )
        self.dropped_samples_total = Counter(
            "fittrack_edge_dropped_samples",
            "Samples dropped by the outbox's drop policy when full, by stream.",
            ["stream"],
            registry=r,
        )
        self.sent_envelopes_total = Counter(
            "fittrack_edge_sent_envelopes",
            "Envelopes handed to the uplink, by transport.",
            ["transport"],
            registry=r,
        )
        self.sent_bytes_total = Counter(
            "fittrack_edge_sent_bytes",
            "Envelope bytes handed to the uplink, by transport.",
            ["transport"],
            registry=r,
        )
        self.in_flight_envelopes = Gauge(
            "fittrack_edge_in_flight_envelopes",
            "Envelopes sent and not yet acknowledged (bounded by max_in_flight: backpressure).",
            registry=r,
        )
        self.uplink_connected = Gauge(
            "fittrack_edge_uplink_connected",
            "1 while the uplink is connected, by transport.",
            ["transport"],
            registry=r,
        )
        self.uplink_errors_total = Counter(
            "fittrack_edge_uplink_errors",
            "Uplink failures, by transport and reason (unavailable|auth|timeout|protocol).",
            ["transport", "reason"],
            registry=r,
        )
        self.ack_latency_s = Histogram(
            "fittrack_edge_ack_latency_seconds",
            "Time from sending an envelope to its Ack, by transport.",
            ["transport"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=r,
        )


#: The agent's metrics (module-level registry); tests build their own ``EdgeMetrics()``.
METRICS = EdgeMetrics()
REGISTRY: CollectorRegistry = METRICS.registry


def serve_metrics(host: str, port: int, metrics: EdgeMetrics = METRICS) -> None:
    """Expose ``metrics`` on ``http://host:port/metrics`` (a daemon thread of prometheus-client)."""
    start_http_server(port, addr=host, registry=metrics.registry)
