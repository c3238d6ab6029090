"""Server configuration: defaults < TOML file (``[ingest]`` table) < environment < flags.

Environment variables are ``FITTRACK_INGEST_<FIELD>`` in upper case, e.g.
``FITTRACK_INGEST_DB=postgresql://...``, ``FITTRACK_INGEST_MQTT_PASSWORD=...``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

ENV_PREFIX = "FITTRACK_INGEST_"


@dataclass
class IngestConfig:
    """Everything ``fittrack ingest serve`` takes. Addresses are ``HOST:PORT`` (port 0: any free)."""

    db: str = "sqlite:fittrack-ingest.sqlite"
    grpc: str | None = None                 # e.g. "127.0.0.1:50051"
    mqtt: str | None = None                 # broker, e.g. "127.0.0.1:1883"
    mqtt_username: str | None = None
    mqtt_password: str | None = None        # never logged
    mqtt_client_id: str | None = None       # set: persistent session (broker redelivers un-PUBACKed uplinks)
    mqtt_topic_root: str = "fittrack/v1"
    mqtt_share_group: str = "ingest"
    mqtt_live: bool = True                  # republish committed batches on {root}/live/...
    mqtt_tls_ca: str | None = None
    metrics: str | None = None              # "127.0.0.1:9108": /metrics and /healthz
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None        # set: mutual TLS
    processes: int = 1                      # >1: a supervisor runs this many server processes (gRPC SO_REUSEPORT,
                                            # MQTT shared subscription); Python uses one core per process
    grpc_reuseport: bool = False            # set for the workers of --processes
    writers: int = 2                        # concurrent group-commit transactions
    pool_size: int = 6                      # PostgreSQL connections (writers + auth, claims, dead letters)
    max_group_envelopes: int = 64
    max_future_s: float = 300.0
    max_age_days: float = 400.0
    retention_days: float | None = None     # None: keep everything
    maintain_interval_s: float = 60.0       # HR rollups + retention (0: off)
    auth_cache_s: float = 2.0               # how long a revocation may take to bite
    shutdown_grace_s: float = 10.0
    log_json: bool = False
    log_level: str = "INFO"

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def redacted(self) -> dict[str, Any]:
        """For logs: secrets replaced."""
        d = dataclasses.asdict(self)
        if d.get("mqtt_password"):
            d["mqtt_password"] = "***"
        from .storage.timescale import _redact  # noqa: PLC0415

        if d["db"].startswith(("postgres", "host=", "dbname=")):
            d["db"] = _redact(d["db"])
        return d


def _coerce(name: str, value: Any) -> Any:
    f = {f.name: f for f in fields(IngestConfig)}[name]
    t = str(f.type)
    if value is None:
        return None
    if "bool" in t:
        if isinstance(value, bool):
            return value
        v = str(value).strip().lower()
        if v in ("1", "true", "yes", "on"):
            return True
        if v in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{name}: expected true/false, got {value!r}")
    if t.startswith("int"):
        return int(value)
    if t.startswith("float"):
        return float(value)
    return str(value)


def load_config(toml_path: str | Path | None = None, env: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None) -> IngestConfig:
    """Merge defaults, the TOML file's ``[ingest]`` table (or top level), environment and overrides
    (flags; None values are ignored). Unknown keys are an error naming them."""
    values: dict[str, Any] = {}
    names = set(IngestConfig.field_names())
    if toml_path:
        data = tomllib.loads(Path(toml_path).read_text())
        table = data.get("ingest", data)
        unknown = sorted(set(table) - names)
        if unknown:
            raise ValueError(f"{toml_path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        values.update(table)
    env = os.environ if env is None else env
    for n in names:
        v = env.get(ENV_PREFIX + n.upper())
        if v is not None and v != "":
            values[n] = v
    for k, v in (overrides or {}).items():
        if v is not None:
            values[k] = v
    return IngestConfig(**{k: _coerce(k, v) for k, v in values.items()})
