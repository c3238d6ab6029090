"""MQTT transport: an MQTT 5 shared subscription on the uplink, acks after commit, live topics.

Topics (``root`` = ``fittrack/v1`` unless configured, e.g. for test isolation)::

    {root}/up/{tenant}/{agent_id}            agent -> server, Envelope, QoS 1
    {root}/ack/{tenant}/{agent_id}           server -> agent, Ack, QoS 1, after commit
    {root}/live/{tenant}/{device_id}/{stream} server -> anyone allowed, LiveEvent, QoS 0

Several servers subscribe to ``$share/{group}/{root}/up/+/+`` and the broker splits the agents'
messages between them. paho-mqtt runs its network loop in a thread with **manual acks**: the
PUBACK of an uplink message is sent only after the envelope was committed and its Ack
published, so a server that dies before commit never PUBACKs (with a persistent session
``client_id``, the broker redelivers on reconnect; in any case the agent resends unacked batches).

The broker authenticates agents (password file + ACL, deploy/mosquitto); the server still checks
topic agent == envelope agent == a known, non-revoked agent of that tenant, and device tenancy.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from protocols.wire.gen.fittrack.v1 import batch_pb2
from protocols.wire.gen.fittrack.v1 import envelope_pb2 as epb
from protocols.wire.gen.fittrack.v1 import ingest_pb2

from .auth import Authenticator, AuthError, Principal
from .fanout import LiveHub
from .metrics import Metrics
from .pipeline import Pipeline
from .storage.base import DeadLetter, StorageUnavailable

log = logging.getLogger("ingest_server.mqtt")


class MqttIngest:
    def __init__(self, pipeline: Pipeline, auth: Authenticator, hub: LiveHub, metrics: Metrics, *, host: str, port: int,
                 username: str | None = None, password: str | None = None, client_id: str | None = None,
                 topic_root: str = "fittrack/v1", share_group: str = "ingest", live: bool = True,
                 receive_maximum: int = 1000, tls_ca: str | None = None) -> None:
        self.pipeline = pipeline
        self.auth = auth
        self.hub = hub
        self.metrics = metrics
        self.host, self.port = host, port
        self.root = topic_root.rstrip("/")
        self.share_group = share_group
        self.live = live
        self.persistent = client_id is not None
        self.client_id = client_id or f"fittrack-ingest-{uuid.uuid4().hex[:12]}"
        self.receive_maximum = receive_maximum
        c = self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5)
        c.manual_ack_set(True)
        if username:
            c.username_pw_set(username, password)
        if tls_ca:
            c.tls_set(ca_certs=tls_ca, cert_reqs=ssl.CERT_REQUIRED)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.on_disconnect = self._on_disconnect
        c.on_subscribe = self._on_subscribe
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribed: asyncio.Event | None = None
        self._connect_error: str | None = None
        self._tasks: set[asyncio.Task] = set()
        self._stopping = False

    @property
    def uplink_filter(self) -> str:
        return f"$share/{self.share_group}/{self.root}/up/+/+"

    async def start(self, timeout_s: float = 10.0) -> None:
        self._loop = asyncio.get_running_loop()
        self._subscribed = asyncio.Event()
        props = Properties(PacketTypes.CONNECT)
        props.ReceiveMaximum = self.receive_maximum
        if self.persistent:
            props.SessionExpiryInterval = 3600
        self.client.reconnect_delay_set(1, 30)
        await asyncio.to_thread(self.client.connect, self.host, self.port, 30, clean_start=not self.persistent,
                                properties=props)
        self.client.loop_start()
        try:
            await asyncio.wait_for(self._subscribed.wait(), timeout_s)
        except TimeoutError:
            self.client.loop_stop()
            raise ConnectionError(f"MQTT broker {self.host}:{self.port} did not accept us: {self._connect_error or 'timeout'}") from None
        if self.live:
            self.hub.sinks.append(self._publish_live)

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop taking messages, finish in-flight envelopes (commit, ack, PUBACK), disconnect."""
        self._stopping = True
        try:
            self.client.unsubscribe(self.uplink_filter)
        except Exception:  # noqa: BLE001
            pass
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace_s)
        if self._publish_live in self.hub.sinks:
            self.hub.sinks.remove(self._publish_live)
        await asyncio.to_thread(self.client.disconnect)
        await asyncio.to_thread(self.client.loop_stop)

    # ------------------------------------------------------------------ paho thread callbacks
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        if rc.is_failure:
            self._connect_error = f"CONNACK {rc}"
            log.error("MQTT connect refused", extra={"reason": str(rc)})
            return
        client.subscribe(self.uplink_filter, options=mqtt.SubscribeOptions(qos=1))

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, rcs: list, props: Any = None) -> None:
        if rcs and not rcs[0].is_failure and self._loop and self._subscribed:
            self._loop.call_soon_threadsafe(self._subscribed.set)
        elif rcs:
            self._connect_error = f"SUBACK {rcs[0]} for {self.uplink_filter}"

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        if not self._stopping:
            log.warning("MQTT disconnected; paho reconnects", extra={"reason": str(rc)})

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._spawn, msg)

    # ------------------------------------------------------------------ asyncio side
    def _spawn(self, msg: mqtt.MQTTMessage) -> None:
        t = asyncio.create_task(self._handle(msg))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _handle(self, msg: mqtt.MQTTMessage) -> None:
        parts = msg.topic.split("/")
        root_n = len(self.root.split("/"))
        try:
            if len(parts) != root_n + 3 or parts[root_n] != "up":
                raise AuthError(f"unexpected uplink topic {msg.topic!r}")
            tenant, agent_id = parts[root_n + 1], parts[root_n + 2]
        except AuthError as exc:
            log.warning("MQTT message refused", extra={"reason": str(exc)})
            self.client.ack(msg.mid, msg.qos)
            return
        payload = bytes(msg.payload)
        try:
            principal = await self.auth.check_agent(agent_id, tenant)
            ack = await self.pipeline.handle(principal, payload, "mqtt")
        except AuthError as exc:
            self.metrics.auth_failures.labels("mqtt").inc()
            self.metrics.envelopes.labels("mqtt", "ACK_STATUS_REJECTED").inc()
            log.warning("MQTT envelope refused", extra={"tenant": tenant, "agent_id": agent_id, "reason": str(exc)})
            try:
                await self.pipeline.store.add_dead_letters([DeadLetter(tenant, agent_id, "mqtt", str(exc), payload)])
            except StorageUnavailable:
                pass
            ack = epb.Ack(agent_id=agent_id, envelope_seq=_peek_seq(payload), status=epb.ACK_STATUS_REJECTED, message=str(exc))
        except StorageUnavailable as exc:
            ack = epb.Ack(agent_id=agent_id, envelope_seq=_peek_seq(payload), status=epb.ACK_STATUS_RETRY,
                          message=f"storage unavailable: {exc}", retry_after_ms=1000)
        info = self.client.publish(f"{self.root}/ack/{tenant}/{agent_id}", ack.SerializeToString(), qos=1)
        del info
        self.client.ack(msg.mid, msg.qos)

    def _publish_live(self, tenant: str, agent_id: str, pb: batch_pb2.SampleBatch) -> None:
        ev = ingest_pb2.LiveEvent(tenant=tenant, agent_id=agent_id, batch=pb)
        self.client.publish(f"{self.root}/live/{tenant}/{pb.device_id}/{pb.stream}", ev.SerializeToString(), qos=0)


def _peek_seq(payload: bytes) -> int:
    try:
        return epb.Envelope.FromString(payload).seq
    except Exception:  # noqa: BLE001 - malformed: seq unknown
        return 0


__all__ = ["MqttIngest", "Principal"]
