"""Prometheus metrics of one ingest server (own registry, so several can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LAT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Counters are labelled by ``transport`` ("grpc", "mqtt")."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.envelopes = Counter("fittrack_ingest_envelopes", "Envelopes handled, by ack status", ["transport", "status"], registry=r)
        self.samples_received = Counter("fittrack_ingest_samples_received", "Samples in decoded envelopes", ["transport"], registry=r)
        self.samples_stored = Counter("fittrack_ingest_samples_stored", "Samples committed (new batches)", ["transport"], registry=r)
        self.batches_stored = Counter("fittrack_ingest_batches_stored", "Batches committed", ["transport"], registry=r)
        self.batches_duplicate = Counter("fittrack_ingest_batches_duplicate", "Batches already in the ledger", ["transport"], registry=r)
        self.samples_duplicate = Counter("fittrack_ingest_samples_duplicate", "Samples of duplicate batches", ["transport"], registry=r)
        self.samples_rejected = Counter(
            "fittrack_ingest_samples_rejected", "Samples refused, by kind (range, time, tenancy, malformed, auth)",
            ["transport", "kind"], registry=r)
        self.batches_rejected = Counter("fittrack_ingest_batches_rejected", "Batches refused, by kind", ["transport", "kind"], registry=r)
        self.auth_failures = Counter("fittrack_ingest_auth_failures", "Refused credentials / identities", ["transport"], registry=r)
        self.ack_latency = Histogram(
            "fittrack_ingest_ack_latency_seconds", "Envelope received -> committed -> ack ready", ["transport"],
            buckets=_LAT_BUCKETS, registry=r)
        self.db_seconds = Histogram("fittrack_ingest_db_seconds", "Time in one group commit", buckets=_LAT_BUCKETS, registry=r)
        self.group_size = Histogram("fittrack_ingest_group_envelopes", "Envelopes per group commit",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=r)
        self.queue_depth = Gauge("fittrack_ingest_queue_depth", "Envelopes waiting for a writer", registry=r)
        self.subscribers = Gauge("fittrack_ingest_subscribers", "Live subscribers (gRPC Subscribe)", registry=r)
        self.live_dropped = Counter("fittrack_ingest_live_dropped", "Live batches a slow subscriber missed", registry=r)
        self.storage_errors = Counter("fittrack_ingest_storage_errors", "Group commits that failed (acked RETRY)", registry=r)
