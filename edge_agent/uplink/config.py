"""Configuration of the agent's uplink (the ``[uplink]`` table of ``edge.toml``)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

__all__ = ["ConfigError", "Secret", "UplinkConfig"]


class ConfigError(ValueError):
    """An uplink setting is missing or wrong; the message names the key."""


class Secret:
    """A credential whose ``repr``/``str`` never show the value; :meth:`reveal` returns it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise ConfigError("a secret must be a string")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class UplinkConfig:
    """Where and how the agent delivers envelopes.

    Attributes:
        transport: ``"mqtt"`` (QoS 1 publish, Acks on the ack topic) or ``"grpc"`` (``Upload`` stream).
        host, port: the broker (MQTT) or ingest server (gRPC).
        tenant, agent_id: who the agent is; with MQTT the username is ``tenant/agent_id``.
        token: the agent's credential ``<agent_id>.<secret>`` (from ``fittrack ingest agent add``).
        tls: use TLS; ``ca_file`` verifies the server (system CAs when empty); ``cert_file`` +
            ``key_file`` present a client certificate (mutual TLS).
        ack_timeout_s: an envelope not acknowledged within this many seconds is sent again.
        max_in_flight: envelopes sent and not yet acknowledged (backpressure beyond it).
        max_envelope_bytes: an envelope holds batches up to about this many bytes of body.
        max_batches_per_envelope: and at most this many batches.
        connect_timeout_s: time allowed to connect (and, for MQTT, to subscribe).
        backoff_base_s, backoff_cap_s: reconnect backoff (doubling, full jitter).
        auth_backoff_s: wait after the server refused the credential (do not hammer it).
        topic_root: MQTT topic root (``fittrack/v1``; tests put a private prefix in front).
        keepalive_s: MQTT keep-alive.
    """

    transport: Literal["mqtt", "grpc"]
    host: str
    port: int
    tenant: str
    agent_id: str
    token: Secret = field(default_factory=lambda: Secret(""))
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    ack_timeout_s: float = 10.0
    max_in_flight: int = 8
    max_envelope_bytes: int = 256 * 1024
    max_batches_per_envelope: int = 256
    connect_timeout_s: float = 10.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    auth_backoff_s: float = 300.0
    topic_root: str = "fittrack/v1"
    keepalive_s: int = 30

    def __post_init__(self) -> None:
        if self.transport not in ("mqtt", "grpc"):
            raise ConfigError(f"uplink.transport must be 'mqtt' or 'grpc', got {self.transport!r}")
        if not isinstance(self.host, str) or not self.host:
            raise ConfigError("uplink.host must be a non-empty string")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ConfigError(f"uplink.port must be an integer in 1..65535, got {self.port!r}")
        for name in ("tenant", "agent_id"):
            v = getattr(self, name)
            if not isinstance(v, str) or not v or "/" in v or "+" in v or "#" in v:
                raise ConfigError(f"uplink.{name} must be a non-empty string without '/', '+' or '#', got {v!r}")
        if isinstance(self.token, str):
            object.__setattr__(self, "token", Secret(self.token))
        for name in ("ca_file", "cert_file", "key_file"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, Path):
                object.__setattr__(self, name, Path(v))
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError("uplink.cert_file and uplink.key_file go together (client certificate)")
        for name in ("ack_timeout_s", "connect_timeout_s", "backoff_base_s", "backoff_cap_s", "auth_backoff_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise ConfigError(f"uplink.{name} must be a positive number of seconds, got {v!r}")
        for name in ("max_in_flight", "max_envelope_bytes", "max_batches_per_envelope", "keepalive_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"uplink.{name} must be a positive integer, got {v!r}")

    @property
    def up_topic(self) -> str:
        """MQTT topic the agent publishes envelopes to."""
        return f"{self.topic_root}/up/{self.tenant}/{self.agent_id}"

    @property
    def ack_topic(self) -> str:
        """MQTT topic the server publishes Acks to."""
        return f"{self.topic_root}/ack/{self.tenant}/{self.agent_id}"

    @property
    def mqtt_username(self) -> str:
        return f"{self.tenant}/{self.agent_id}"

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any], *, base_dir: Path | None = None) -> "UplinkConfig":
        """Build from the ``[uplink]`` TOML table. ``token_file`` / ``token_env`` may replace
        ``token``; relative file paths are resolved against ``base_dir`` (the config's folder).
        Unknown keys are an error (a typo must not silently fall back to a default).
        """
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)} | {"token_file", "token_env"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown uplink key(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        for req in ("transport", "host", "port", "tenant", "agent_id"):
            if req not in d:
                raise ConfigError(f"uplink.{req} is required")

        def path(v: Any) -> Path:
            p = Path(v).expanduser()
            return p if p.is_absolute() or base_dir is None else base_dir / p

        sources = [k for k in ("token", "token_file", "token_env") if k in d]
        if len(sources) > 1:
            raise ConfigError(f"give only one of uplink.token, token_file, token_env (got {', '.join(sources)})")
        if "token_file" in d:
            p = path(d.pop("token_file"))
            try:
                d["token"] = p.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"uplink.token_file {p}: {exc.strerror}") from exc
        if "token_env" in d:
            name = d.pop("token_env")
            if name not in os.environ:
                raise ConfigError(f"uplink.token_env: environment variable {name} is not set")
            d["token"] = os.environ[name]
        for k in ("ca_file", "cert_file", "key_file"):
            if d.get(k):
                d[k] = path(d[k])
        return cls(**d)
