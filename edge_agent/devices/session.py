"""One configured BLE device: find, connect (bleak-retry-connector), subscribe, reconnect.

:class:`DeviceSession.run` loops until stopped:

1. find the device: BlueZ's object cache first (``bleak_retry_connector.get_device_by_adapter``),
   else a scan (one scan per adapter at a time: a lock, so fifty straps do not start fifty
   discoveries);
2. ``establish_connection(BleakClient, device, ...)`` (bleak-retry-connector: its own retries,
   typed errors, stale-connection clean-up);
3. read battery level and serial number once, ``start_notify`` on every characteristic the
   profile understands (:mod:`edge_agent.devices.profiles`);
4. wait for the disconnected callback (or :meth:`stop`); then back off (full jitter,
   :func:`backoff_s`) and go to 1.

Each notification is stamped on arrival with the agent's :class:`~edge_agent.timebase.Timebase`,
decoded, and handed to ``on_measurement(session, kind, measurement, t_us)``. A payload that fails
to decode is counted (``fittrack_edge_decode_errors``) and its valid part
(``DecodeError.partial``) still handed on; it never stops the session.

After ``give_up_after`` failed attempts in a row the session returns from :meth:`run` with
``state = "unreachable"`` so the agent can give its connection slot to a queued device.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from typing import Any, Callable

from protocols.ble import BleError, DecodeError
from protocols.ble.imu import FLAG_GYRO, IMU_CONFIG_UUID, encode_imu_config

from ..metrics import EdgeMetrics
from ..timebase import Timebase
from .profiles import BATTERY_LEVEL, SERIAL_NUMBER, GattChar, Subscription, kind_label, plan

log = logging.getLogger("edge_agent.devices")

__all__ = ["DeviceSession", "SessionSettings", "backoff_s", "OnMeasurement"]

OnMeasurement = Callable[["DeviceSession", str, Any, int], None]


def backoff_s(attempt: int, *, initial_s: float = 1.0, max_s: float = 60.0, rng: random.Random | None = None) -> float:
    """Delay before reconnect attempt ``attempt`` (0-based): full jitter,
    ``uniform(0, min(max_s, initial_s * 2**attempt))`` (spreads fifty straps that dropped together)."""
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    cap = min(max_s, initial_s * (2 ** min(attempt, 30)))
    return (rng or random).uniform(0, cap)


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """Timing of a session (seconds)."""

    scan_timeout_s: float = 10.0
    connect_timeout_s: float = 30.0
    connect_attempts: int = 3
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    give_up_after: int = 5


@dataclass
class SessionStatus:
    """What ``fittrack edge status`` shows of a device."""

    state: str = "queued"     # queued | connecting | connected | backoff | unreachable | stopped
    kind: str = ""
    connected_since_us: int = 0
    connects: int = 0
    reconnects: int = 0
    failures: int = 0
    notifications: int = 0
    decode_errors: int = 0
    last_notification_us: int = 0
    battery_pct: int | None = None
    last_error: str = ""
    subscriptions: list[str] = field(default_factory=list)


class DeviceSession:
    """See module docstring.

    Args:
        address: BLE address. device_id: stable id (``ble-...``). name: for logs.
        adapter: BlueZ adapter (``hci0``).
        on_measurement: called for every decoded notification (in the event loop).
        timebase: stamps arrival times. metrics: the agent's metrics.
        client_class: ``BleakClient`` (the seam for a fake, like bleak's ``backend=``).
    """

    _scan_locks: dict[str, asyncio.Lock] = {}

    def __init__(
        self,
        address: str,
        device_id: str,
        *,
        name: str = "",
        adapter: str = "hci0",
        on_measurement: OnMeasurement,
        timebase: Timebase,
        metrics: EdgeMetrics,
        settings: SessionSettings = SessionSettings(),
        client_class: Any = None,
        on_disconnect: Callable[["DeviceSession"], None] | None = None,
        imu_rate_hz: float = 0.0,
        imu_gyro: bool = True,
    ) -> None:
        self.address = address.upper()
        self.device_id = device_id
        self.name = name or address
        self.adapter = adapter
        self.on_measurement = on_measurement
        self.on_disconnect = on_disconnect
        self.timebase = timebase
        self.metrics = metrics
        self.settings = settings
        self.client_class = client_class
        self.imu_rate_hz = imu_rate_hz
        self.imu_gyro = imu_gyro
        self.status = SessionStatus()
        self._stop = asyncio.Event()
        self._client: Any = None
        self._attempt = 0
        self._subs: list[Subscription] = []

    # --- lifecycle -------------------------------------------------------------------------------
    async def stop(self) -> None:
        """Disconnect and make :meth:`run` return."""
        self._stop.set()
        client = self._client
        if client is not None:
            try:
                await asyncio.wait_for(client.disconnect(), 10)
            except Exception as exc:  # noqa: BLE001 - best effort on shutdown
                log.debug("%s: disconnect on stop failed: %s", self.name, exc)
        self.status.state = "stopped"

    async def run(self) -> None:
        """Connect, stream, reconnect with backoff, until :meth:`stop` (or unreachable)."""
        self._stop.clear()
        fails = 0
        while not self._stop.is_set():
            self.status.state = "connecting"
            disconnected = asyncio.Event()
            try:
                # bounded: a connect to a device that left (or a stale BlueZ cache entry) can hang
                await asyncio.wait_for(self._connect(disconnected), self.settings.connect_timeout_s)
            except asyncio.CancelledError:
                await self._disconnect_quietly()
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is retried with backoff
                fails += 1
                self.status.failures += 1
                self.status.last_error = f"{type(exc).__name__}: {exc}"
                self.metrics.reconnects_total.labels(self.device_id, "failed").inc()
                await self._disconnect_quietly()
                if fails >= self.settings.give_up_after:
                    self.status.state = "unreachable"
                    log.warning("%s (%s): unreachable after %d attempts: %s; giving up its slot",
                                self.name, self.address, fails, self.status.last_error,
                                extra={"event": "device_unreachable", "device_id": self.device_id})
                    return
                await self._backoff(fails - 1)
                continue
            fails = 0
            if self.status.connects > 1:
                self.metrics.reconnects_total.labels(self.device_id, "ok").inc()
                self.status.reconnects += 1
            stop_task = asyncio.ensure_future(self._stop.wait())
            disc_task = asyncio.ensure_future(disconnected.wait())
            try:
                await asyncio.wait({stop_task, disc_task}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop_task.cancel()
                disc_task.cancel()
            self._mark_disconnected()
            if self._stop.is_set():
                await self._disconnect_quietly()
                break
            log.warning("%s (%s): link dropped; reconnecting", self.name, self.address,
                        extra={"event": "device_disconnected", "device_id": self.device_id})
            await self._disconnect_quietly()
            await self._backoff(0)
        self.status.state = "stopped"

    async def _backoff(self, attempt: int) -> None:
        self.status.state = "backoff"
        delay = backoff_s(attempt, initial_s=self.settings.backoff_initial_s, max_s=self.settings.backoff_max_s)
        try:
            await asyncio.wait_for(self._stop.wait(), delay)
        except asyncio.TimeoutError:
            pass

    def _mark_disconnected(self) -> None:
        if self.status.state == "connected":
            self.metrics.devices_connected.labels(self.adapter, self.status.kind or "other").dec()
        self.status.state = "disconnected"
        if self.on_disconnect is not None:
            self.on_disconnect(self)

    async def _disconnect_quietly(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await asyncio.wait_for(client.disconnect(), 10)
            except Exception:  # noqa: BLE001
                pass

    # --- connect ---------------------------------------------------------------------------------
    async def _find(self) -> Any:
        from bleak import BleakScanner
        from bleak_retry_connector import get_device_by_adapter

        try:
            dev = await get_device_by_adapter(self.address, self.adapter)
        except Exception:  # noqa: BLE001 - not BlueZ, or no cache: scan
            dev = None
        if dev is not None:
            return dev
        lock = self._scan_locks.setdefault(self.adapter, asyncio.Lock())
        async with lock:
            try:
                dev = await get_device_by_adapter(self.address, self.adapter)
            except Exception:  # noqa: BLE001
                dev = None
            if dev is None:
                dev = await BleakScanner.find_device_by_address(
                    self.address, timeout=self.settings.scan_timeout_s, bluez={"adapter": self.adapter},
                )
        if dev is None:
            raise LookupError(f"{self.address} not seen in {self.settings.scan_timeout_s:.0f} s of scanning on {self.adapter}")
        return dev

    async def _connect(self, disconnected: asyncio.Event) -> None:
        from bleak import BleakClient
        from bleak_retry_connector import establish_connection

        device = await self._find()
        if self._stop.is_set():
            return

        def _on_disconnect(_client: Any) -> None:
            disconnected.set()

        self._client = await establish_connection(
            self.client_class or BleakClient, device, self.name,
            disconnected_callback=_on_disconnect, max_attempts=self.settings.connect_attempts,
        )
        client = self._client
        chars = [
            GattChar(s.uuid.lower(), c.uuid.lower(), tuple(c.properties))
            for s in client.services for c in s.characteristics
        ]
        subs, reads = plan(chars)
        self._subs = subs
        self.status.kind = kind_label(subs)
        self.status.subscriptions = [s.kind for s in subs]
        for uuid in reads:
            try:
                data = await client.read_gatt_char(uuid)
            except Exception as exc:  # noqa: BLE001 - optional reads
                log.info("%s: reading %s failed: %s", self.name, uuid, exc)
                continue
            if uuid == BATTERY_LEVEL and data:
                self.status.battery_pct = int(data[0])
            elif uuid == SERIAL_NUMBER:
                pass  # the device id is fixed by config/address (profiles.device_id_for)
        if self.imu_rate_hz and any(c.uuid == IMU_CONFIG_UUID and "write" in c.properties for c in chars):
            value = encode_imu_config(sample_rate_dhz=int(round(self.imu_rate_hz * 10)), flags=FLAG_GYRO if self.imu_gyro else 0)
            await client.write_gatt_char(IMU_CONFIG_UUID, value, response=True)
        for s in subs:
            await client.start_notify(s.uuid, self._handler(s))
        self.status.connects += 1
        self.status.state = "connected"
        self.status.connected_since_us = self.timebase.now_us()
        self.metrics.devices_connected.labels(self.adapter, self.status.kind or "other").inc()
        log.info("%s (%s) connected: %s", self.name, self.address, ", ".join(self.status.subscriptions) or "nothing to subscribe",
                 extra={"event": "device_connected", "device_id": self.device_id})
        if not subs:
            log.warning("%s (%s) offers no characteristic the agent understands", self.name, self.address)
        if not client.is_connected:
            disconnected.set()

    def _handler(self, sub: Subscription) -> Callable[[Any, bytearray], None]:
        stream = sub.kind
        counter = self.metrics.notifications_total.labels(self.device_id, stream)
        errors = self.metrics.decode_errors_total.labels(self.device_id, stream)
        st = self.status

        def on_notify(_char: Any, data: bytearray) -> None:
            t_us = self.timebase.now_us()
            st.notifications += 1
            st.last_notification_us = t_us
            counter.inc()
            try:
                m = sub.decode(bytes(data))
            except DecodeError as exc:
                st.decode_errors += 1
                errors.inc()
                log.info("%s: bad %s notification (%s); keeping the valid part", self.name, stream, exc)
                m = exc.partial
                if m is None:
                    return
            except (BleError, ValueError) as exc:
                st.decode_errors += 1
                errors.inc()
                log.info("%s: bad %s notification: %s", self.name, stream, exc)
                return
            if getattr(m, "trailing_bytes", 0):  # bytes the spec does not define: kept decoded part, counted
                st.decode_errors += 1
                errors.inc()
            if stream == "battery":
                st.battery_pct = getattr(m, "battery_level_pct", st.battery_pct)
            try:
                self.on_measurement(self, stream, m, t_us)
            except Exception:  # noqa: BLE001 - a pipeline bug must not kill the BLE link
                log.exception("%s: processing a %s notification failed", self.name, stream)

        return on_notify
