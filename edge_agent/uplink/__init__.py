"""Uplinks of the edge agent: MQTT (QoS 1 + ack topic) and gRPC (``Upload`` stream).

``make_uplink(config)`` returns a fresh, unconnected :class:`Uplink` for ``config.transport``;
each ``async with`` is one connection (the delivery loop makes a new one to reconnect).
"""

from __future__ import annotations

from .base import (
    Ack,
    AckStatus,
    AuthError,
    BatchResult,
    BatchStatus,
    Unavailable,
    Uplink,
    UplinkError,
    backoff_s,
    parse_ack,
)
from .config import ConfigError, Secret, UplinkConfig

__all__ = [
    "Ack",
    "AckStatus",
    "AuthError",
    "BatchResult",
    "BatchStatus",
    "ConfigError",
    "Secret",
    "Unavailable",
    "Uplink",
    "UplinkConfig",
    "UplinkError",
    "backoff_s",
    "make_uplink",
    "parse_ack",
]


def make_uplink(config: UplinkConfig) -> Uplink:
    """A new uplink for ``config.transport`` (imports only that transport's library)."""
    if config.transport == "mqtt":
        from .mqtt import MqttUplink

        return MqttUplink(config)
    from .grpc import GrpcUplink

    return GrpcUplink(config)
