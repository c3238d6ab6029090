"""MQTT uplink (aiomqtt): QoS 1 publishes to ``fittrack/v1/up/{tenant}/{agent_id}``, Acks from
``fittrack/v1/ack/{tenant}/{agent_id}`` (DESIGN §6, the agent-credential contract).

Username ``tenant/agent_id``, password = the agent's token. The ack topic is subscribed (and the
SUBACK awaited) before the first publish, on every connection: the session is clean, so Acks
published while the agent was away are lost -- the delivery loop resends what was not
acknowledged and the server answers DUPLICATE for what it already has.
"""

from __future__ import annotations

import logging
import ssl
from typing import AsyncIterator, Self

import aiomqtt

from .base import Ack, AuthError, Unavailable, UplinkError, parse_ack
from .config import UplinkConfig

__all__ = ["MqttUplink"]

log = logging.getLogger(__name__)

#: CONNACK codes meaning "your credential is refused": MQTT 3.1.1 (4, 5) and MQTT 5 (134, 135).
_AUTH_CODES = frozenset({4, 5, 134, 135})


def _rc_value(exc: aiomqtt.MqttCodeError) -> int | None:
    rc = exc.rc
    if rc is None:
        return None
    return int(getattr(rc, "value", rc))


def _mark_disconnect_seen(client: aiomqtt.Client) -> None:
    """aiomqtt 2.x leaves the exception of its private ``_disconnected`` future unretrieved when the
    connection was lost before ``__aexit__`` (asyncio then logs "Future exception was never
    retrieved"); we have already handled the loss, so mark it retrieved."""
    fut = getattr(client, "_disconnected", None)
    if fut is not None and fut.done() and not fut.cancelled():
        fut.exception()


class MqttUplink:
    """One MQTT connection; see :class:`edge_agent.uplink.base.Uplink`."""

    transport = "mqtt"

    def __init__(self, config: UplinkConfig, *, client_id: str | None = None) -> None:
        if config.transport != "mqtt":
            raise ValueError(f"MqttUplink needs transport 'mqtt', got {config.transport!r}")
        self.config = config
        self.client_id = client_id or f"fittrack-edge-{config.tenant}-{config.agent_id}"
        self._client: aiomqtt.Client | None = None

    def _tls_context(self) -> ssl.SSLContext | None:
        c = self.config
        if not c.tls:
            return None
        ctx = ssl.create_default_context(cafile=str(c.ca_file) if c.ca_file else None)
        if c.cert_file and c.key_file:
            ctx.load_cert_chain(str(c.cert_file), str(c.key_file))
        return ctx

    async def __aenter__(self) -> Self:
        c = self.config
        token = c.token.reveal()
        client = aiomqtt.Client(
            c.host,
            c.port,
            username=c.mqtt_username if token else None,
            password=token or None,
            identifier=self.client_id,
            clean_session=True,
            keepalive=c.keepalive_s,
            timeout=c.connect_timeout_s,
            tls_context=self._tls_context(),
            max_queued_incoming_messages=10_000,
        )
        try:
            try:
                await client.__aenter__()
            finally:
                _mark_disconnect_seen(client)
        except aiomqtt.MqttCodeError as exc:
            if _rc_value(exc) in _AUTH_CODES:
                raise AuthError(
                    f"MQTT broker {c.host}:{c.port} refused user {c.mqtt_username!r}: {exc} "
                    "(check uplink.token; `fittrack ingest agent add` issues one)"
                ) from exc
            raise Unavailable(f"MQTT connect to {c.host}:{c.port} failed: {exc}") from exc
        except (aiomqtt.MqttError, OSError) as exc:
            raise Unavailable(f"MQTT connect to {c.host}:{c.port} failed: {exc}") from exc
        self._client = client
        try:
            await client.subscribe(c.ack_topic, qos=1, timeout=c.connect_timeout_s)
        except aiomqtt.MqttError as exc:
            await self.__aexit__(None, None, None)
            raise Unavailable(f"MQTT subscribe to {c.ack_topic} failed: {exc}") from exc
        log.info("mqtt uplink connected to %s:%d as %s", c.host, c.port, c.mqtt_username)
        return self

    async def __aexit__(self, *exc: object) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.__aexit__(None, None, None)
            except (aiomqtt.MqttError, OSError) as e:  # already gone
                log.debug("mqtt disconnect: %s", e)
            finally:
                _mark_disconnect_seen(client)

    async def send(self, envelope: bytes, envelope_seq: int) -> None:
        if self._client is None:
            raise Unavailable("MQTT uplink is not connected")
        try:
            await self._client.publish(
                self.config.up_topic, envelope, qos=1, timeout=self.config.ack_timeout_s
            )
        except aiomqtt.MqttError as exc:
            raise Unavailable(f"MQTT publish of envelope {envelope_seq} failed: {exc}") from exc

    async def acks(self) -> AsyncIterator[Ack]:
        if self._client is None:
            raise Unavailable("MQTT uplink is not connected")
        try:
            async for msg in self._client.messages:
                if not msg.topic.matches(self.config.ack_topic):
                    continue
                try:
                    yield parse_ack(msg.payload)  # type: ignore[arg-type]
                except UplinkError as exc:
                    log.warning("ignoring a malformed message on %s: %s", msg.topic, exc)
        except aiomqtt.MqttError as exc:
            raise Unavailable(f"MQTT connection lost: {exc}") from exc
        raise Unavailable("MQTT connection closed")
