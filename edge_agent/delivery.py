"""The delivery loop: outbox -> envelopes -> uplink -> Acks -> outbox (DESIGN §5).

One :class:`Delivery` runs for the agent's lifetime::

    lease oldest batches -> envelope (seq per agent, persisted) -> uplink.send
        -> wait for the Ack -> ack STORED / DUPLICATE / REJECTED batches in the outbox

* Backpressure: at most ``max_in_flight`` envelopes are unacknowledged; beyond that nothing is
  leased and the outbox grows (it is bounded by its drop policy).
* Resend: on an ack timeout, a RETRY ack, or a lost connection, every in-flight batch is released
  and leased again from the oldest, so each (device, stream) is resent in ``seq`` order. A late
  Ack for an abandoned envelope is still applied batch by batch (the keys are the truth), and the
  server's DUPLICATE answer for a resent batch deletes it too.
* REJECTED batches are deleted, counted (``rejected_samples``) and logged with the server's reason.
* Reconnect with :func:`~edge_agent.uplink.base.backoff_s`; after :class:`AuthError` the wait is
  ``auth_backoff_s`` (minutes): a refused token does not fix itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from protocols.wire.codec import encode_envelope_body

from .metrics import METRICS, EdgeMetrics
from .outbox import BatchKey, Entry, Outbox
from .uplink import make_uplink
from .uplink.base import Ack, AckStatus, AuthError, BatchStatus, Uplink, UplinkError, backoff_s
from .uplink.config import UplinkConfig

__all__ = ["Delivery", "DeliveryStatus"]

log = logging.getLogger(__name__)

#: Leases are released explicitly by the loop; this only bounds a lease if the loop dies oddly.
_LEASE_S = 3600.0


class _Retry(Exception):
    """The server asked to resend later (ACK_STATUS_RETRY)."""

    def __init__(self, after_s: float) -> None:
        super().__init__(after_s)
        self.after_s = after_s


@dataclass(slots=True)
class _Flight:
    envelope_seq: int
    entries: dict[BatchKey, Entry]
    sent_at: float  # monotonic
    bytes: int


@dataclass
class DeliveryStatus:
    """What ``fittrack edge status`` shows about delivery."""

    transport: str
    connected: bool = False
    in_flight_envelopes: int = 0
    sent_envelopes: int = 0
    acked_batches: int = 0
    rejected_batches: int = 0
    reconnects: int = 0
    last_ack_at_us: int = 0
    last_error: str = ""
    backoff_until_us: int = 0
    extra: dict[str, object] = field(default_factory=dict)


class Delivery:
    """Moves batches from ``outbox`` to the server over ``config.transport``.

    Args:
        outbox: the agent's :class:`Outbox` (other parts append to it).
        config: uplink settings (transport, identity, timeouts, window).
        uplink_factory: builds a fresh unconnected uplink per connection (tests inject fakes).
        metrics: where to count (the agent's module-level metrics by default).
        poll_s: how often an idle loop looks at the outbox when nobody called :meth:`notify`.
        compression_level: DEFLATE level of envelope bodies (0 = off).
    """

    def __init__(
        self,
        outbox: Outbox,
        config: UplinkConfig,
        *,
        uplink_factory: Callable[[UplinkConfig], Uplink] = make_uplink,
        metrics: EdgeMetrics | None = None,
        poll_s: float = 0.2,
        compression_level: int = 6,
    ) -> None:
        self.outbox = outbox
        self.config = config
        self._factory = uplink_factory
        self.metrics = metrics if metrics is not None else METRICS
        self.poll_s = poll_s
        self.compression_level = compression_level
        self.status = DeliveryStatus(transport=config.transport)
        self._flights: dict[int, _Flight] = {}
        self._resend_reason: dict[int, str] = {}  # entry id -> why it is sent again
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._retry_until = 0.0
        self._made_progress = False
        self._metrics_at = 0.0

    # ------------------------------------------------------------------ public

    def notify(self) -> None:
        """New batches were appended: look now instead of at the next poll (call in the loop)."""
        if self._wake is not None:
            self._wake.set()

    def stop(self) -> None:
        """Ask :meth:`run` to return (in-flight batches stay in the outbox for the next run)."""
        if self._stop is not None:
            self._stop.set()
        self.notify()

    async def run(self) -> None:
        """Deliver until :meth:`stop` or cancellation; reconnects forever with backoff."""
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        attempt = 0
        tl = self.config.transport
        while not self._stop.is_set():
            delay = 0.0
            try:
                up = self._factory(self.config)
                async with up:
                    self.status.connected = True
                    self.status.last_error = ""
                    self.metrics.uplink_connected.labels(transport=tl).set(1)
                    await self._session(up)
                    return  # stopped
            except AuthError as exc:
                self.metrics.uplink_errors_total.labels(transport=tl, reason="auth").inc()
                log.error("uplink credential refused, next try in %.0f s: %s", self.config.auth_backoff_s, exc)
                self.status.last_error = str(exc)
                delay = self.config.auth_backoff_s
            except UplinkError as exc:
                self.metrics.uplink_errors_total.labels(transport=tl, reason="unavailable").inc()
                delay = backoff_s(attempt, base=self.config.backoff_base_s, cap=self.config.backoff_cap_s)
                log.warning("uplink %s: %s; reconnecting in %.2f s", tl, exc, delay)
                self.status.last_error = str(exc)
            except Exception as exc:  # noqa: BLE001 - a bug or a local fault must not end delivery
                self.metrics.uplink_errors_total.labels(transport=tl, reason="internal").inc()
                delay = backoff_s(attempt, base=self.config.backoff_base_s, cap=self.config.backoff_cap_s)
                log.exception("delivery failed unexpectedly (%s); retrying in %.2f s", exc, delay)
                self.status.last_error = f"{type(exc).__name__}: {exc}"
            finally:
                self.status.connected = False
                self.metrics.uplink_connected.labels(transport=tl).set(0)
                self._abandon_flights("reconnect")
            if self._made_progress:
                attempt = 0
            else:
                attempt += 1
            self.status.reconnects += 1
            await asyncio.to_thread(self.outbox.refresh_metrics)
            self.status.backoff_until_us = time.time_ns() // 1000 + int(delay * 1e6)
            try:
                await asyncio.wait_for(self._stop.wait(), delay)
            except asyncio.TimeoutError:
                pass

    async def wait_empty(self, timeout_s: float) -> bool:
        """Wait until the outbox is empty and nothing is in flight (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self._flights and (await asyncio.to_thread(self.outbox.stats)).batches == 0:
                return True
            await asyncio.sleep(0.05)
        return False

    # ------------------------------------------------------------------ one connection

    async def _session(self, up: Uplink) -> None:
        assert self._wake is not None and self._stop is not None
        self._made_progress = False
        reader = asyncio.create_task(self._read_acks(up), name="delivery-acks")
        try:
            while not self._stop.is_set():
                if reader.done():
                    reader.result()  # raises why the ack stream ended
                    raise UplinkError("ack stream ended")
                now = time.monotonic()
                if now - self._metrics_at >= 1.0:
                    self._metrics_at = now
                    await asyncio.to_thread(self.outbox.refresh_metrics)
                self._check_timeouts(now)
                if now < self._retry_until:
                    await self._idle(reader, self._retry_until - now)
                    continue
                if len(self._flights) >= self.config.max_in_flight:
                    await self._idle(reader, self._next_deadline(now))
                    continue
                entries = await asyncio.to_thread(
                    self.outbox.lease, self.config.max_batches_per_envelope, self.config.max_envelope_bytes, _LEASE_S
                )
                if not entries:
                    await self._idle(reader, min(self.poll_s, self._next_deadline(now)))
                    continue
                await self._send(up, entries)
        finally:
            reader.cancel()
            try:
                await reader
            except (asyncio.CancelledError, UplinkError):
                pass

    async def _idle(self, reader: asyncio.Task, timeout_s: float) -> None:
        assert self._wake is not None
        self._wake.clear()
        waiter = asyncio.create_task(self._wake.wait())
        try:
            await asyncio.wait({waiter, reader}, timeout=max(0.0, timeout_s), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()

    def _next_deadline(self, now: float) -> float:
        if not self._flights:
            return self.poll_s
        oldest = min(f.sent_at for f in self._flights.values())
        return max(0.0, oldest + self.config.ack_timeout_s - now)

    async def _send(self, up: Uplink, entries: list[Entry]) -> None:
        try:
            env_seq = await asyncio.to_thread(self.outbox.next_envelope_seq)
            envelope = encode_envelope_body(
                b"".join(e.body for e in entries),
                agent_id=self.config.agent_id,
                tenant=self.config.tenant,
                seq=env_seq,
                compression_level=self.compression_level,
            )
        except BaseException:  # not in flight yet: give the batches back before failing
            self.outbox.release(e.id for e in entries)
            raise
        m = self.metrics
        for e in entries:
            reason = self._resend_reason.pop(e.id, None)
            if reason is None and e.attempts > 1:
                reason = "restart"
            if reason is not None:
                m.resent_samples_total.labels(stream=e.stream, reason=reason).inc(e.n_samples)
        self._flights[env_seq] = _Flight(env_seq, {e.key: e for e in entries}, time.monotonic(), len(envelope))
        m.in_flight_envelopes.set(len(self._flights))
        await up.send(envelope, env_seq)
        self.status.sent_envelopes += 1
        self.status.in_flight_envelopes = len(self._flights)
        m.sent_envelopes_total.labels(transport=self.config.transport).inc()
        m.sent_bytes_total.labels(transport=self.config.transport).inc(len(envelope))

    def _check_timeouts(self, now: float) -> None:
        late = [f for f in self._flights.values() if now - f.sent_at > self.config.ack_timeout_s]
        if late:
            log.warning(
                "no Ack for envelope(s) %s within %.1f s: resending every unacknowledged batch in order",
                ", ".join(str(f.envelope_seq) for f in late), self.config.ack_timeout_s,
            )
            self.metrics.uplink_errors_total.labels(transport=self.config.transport, reason="timeout").inc()
            self._abandon_flights("timeout")

    def _abandon_flights(self, reason: str) -> None:
        """Release every in-flight batch so the next lease resends them, oldest first."""
        ids = [e.id for f in self._flights.values() for e in f.entries.values()]
        for i in ids:
            self._resend_reason[i] = reason
        self._flights.clear()
        self.outbox.release(ids)
        self.metrics.in_flight_envelopes.set(0)
        self.status.in_flight_envelopes = 0

    # ------------------------------------------------------------------ acks

    async def _read_acks(self, up: Uplink) -> None:
        async for ack in up.acks():
            await self._handle_ack(ack)

    async def _handle_ack(self, ack: Ack) -> None:
        try:
            await self._apply_ack(ack)
        finally:
            if self._wake is not None:  # the window has room again, or a retry time is set
                self._wake.set()

    async def _apply_ack(self, ack: Ack) -> None:
        m = self.metrics
        flight = self._flights.pop(ack.envelope_seq, None)
        if flight is not None:
            m.ack_latency_s.labels(transport=self.config.transport).observe(time.monotonic() - flight.sent_at)
        if ack.status == AckStatus.RETRY:
            after = max(ack.retry_after_ms, 100) / 1000.0
            log.warning("server asks to retry envelope %d in %.2f s: %s", ack.envelope_seq, after, ack.message)
            if flight is not None:
                self._flights[ack.envelope_seq] = flight
            self._abandon_flights("retry")
            self._retry_until = time.monotonic() + after
            return
        if ack.status == AckStatus.REJECTED and not ack.batches:
            if flight is not None:
                self._flights[ack.envelope_seq] = flight
            raise UplinkError(f"server rejected envelope {ack.envelope_seq}: {ack.message}")
        done: list[BatchKey] = []
        status_of: dict[BatchKey, BatchStatus] = {}
        for b in ack.batches:
            if b.status in (BatchStatus.STORED, BatchStatus.DUPLICATE, BatchStatus.REJECTED):
                done.append(b.key)
                status_of[b.key] = b.status
                if b.status == BatchStatus.REJECTED:
                    log.error("server rejected batch %s/%s seq %d: %s", b.device_id, b.stream, b.seq, b.reason)
        removed = await asyncio.to_thread(self.outbox.ack, done) if done else {}
        for key, n in removed.items():
            st = status_of[key]
            if st == BatchStatus.REJECTED:
                m.rejected_samples_total.labels(stream=key[1]).inc(n)
                self.status.rejected_batches += 1
            else:
                m.acked_samples_total.labels(stream=key[1], status=st.name.lower()).inc(n)
                self.status.acked_batches += 1
        if flight is not None:
            left = [e for k, e in flight.entries.items() if k not in status_of]
            if left:  # the server did not answer for these: send them (and what followed) again
                log.warning("Ack %d left %d batches unanswered; resending them", ack.envelope_seq, len(left))
                for e in left:
                    self._resend_reason[e.id] = "retry"
                self.outbox.release(e.id for e in left)
                self._abandon_flights("retry")
        self._made_progress = True
        self.status.last_ack_at_us = time.time_ns() // 1000
        self.status.in_flight_envelopes = len(self._flights)
        m.in_flight_envelopes.set(len(self._flights))
