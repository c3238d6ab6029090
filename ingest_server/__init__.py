"""The ingest server: gRPC + MQTT in, authentication, validation, dedup, storage, fan-out."""
