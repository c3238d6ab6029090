"""The edge agent: devices (bleak), FIT folder watch, pipeline, durable outbox, uplinks."""
