"""The agent: config -> devices, FIT watch, pipeline, batchers -> outbox -> delivery.

:class:`EdgeAgent` wires the parts and runs them in one asyncio loop:

* one :class:`~edge_agent.devices.session.DeviceSession` per admitted device (the
  :class:`~edge_agent.devices.slots.SlotScheduler` decides who holds the adapter's connection
  slots; queued and rotated devices are logged and shown in the status);
* each notification -> :class:`~edge_agent.streams.StreamMapper` (samples, stamped by the
  :class:`~edge_agent.timebase.Timebase`) -> :class:`~edge_agent.batcher.Batcher` and the device's
  :class:`~edge_agent.pipeline.DevicePipeline` (derived streams, batched like the others);
* a housekeeping tick (every ``TICK_S``): timebase resync, slot decisions, derived streams, closed
  batches -> :meth:`Outbox.append <edge_agent.outbox.Outbox.append>` (in a worker thread: an fsync
  must not stall BLE callbacks) -> ``Delivery.notify``; the status file (JSON, atomically replaced)
  every ``status_interval_s``;
* :class:`~edge_agent.delivery.Delivery` (engineer A's) sends the outbox over MQTT or gRPC;
* :class:`~edge_agent.watch.FitFolderWatch` imports FIT files into the same outbox.

On shutdown open batches and derived streams are flushed into the outbox; what is not yet
acknowledged stays there for the next start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from protocols.wire import SampleBatch

from .batcher import Batcher
from .config import DeviceConfig, EdgeConfig
from .devices.session import DeviceSession, SessionSettings
from .devices.slots import SlotScheduler
from .metrics import METRICS, EdgeMetrics
from .outbox import Outbox
from .pipeline import DevicePipeline
from .streams import StreamMapper
from .timebase import ClockSource, Timebase

log = logging.getLogger("edge_agent.agent")

__all__ = ["EdgeAgent", "TICK_S"]

#: Housekeeping period: batch closing, slot decisions, derived streams (s).
TICK_S = 0.25


class _Device:
    """Everything the agent keeps per configured device."""

    def __init__(self, cfg: DeviceConfig, pipeline: DevicePipeline, mapper: StreamMapper) -> None:
        self.cfg = cfg
        self.pipeline = pipeline
        self.mapper = mapper
        self.session: DeviceSession | None = None
        self.task: asyncio.Task[None] | None = None
        self.queued_since_s: float | None = None
        self.rotations = 0


class EdgeAgent:
    """See module docstring.

    Args:
        config: the loaded ``edge.toml``.
        metrics: the agent's metrics (module-level by default).
        clock: clock source of the timebase (tests inject host clock jumps).
        client_class: bleak client class for the sessions (default ``BleakClient``).
        uplink_factory: passed to :class:`Delivery` (tests).
    """

    def __init__(self, config: EdgeConfig, *, metrics: EdgeMetrics | None = None, clock: ClockSource | None = None,
                 client_class: Any = None, uplink_factory: Callable[..., Any] | None = None) -> None:
        self.config = config
        self.metrics = metrics if metrics is not None else METRICS
        tb = config.timebase
        self.timebase = Timebase(clock, jump_threshold_us=int(tb.jump_threshold_s * 1e6),
                                 max_slew_ppm=tb.max_slew_ppm, jump_confirm_s=tb.jump_confirm_s)
        self.client_class = client_class
        self.uplink_factory = uplink_factory
        pl = config.pipeline
        # the outbox assigns the persisted seq at append; the batcher's is a placeholder
        self.batcher = Batcher(lambda d, s: 0, batch_s=pl.batch_s,
                               batch_s_by_stream={"accel": pl.imu_batch_s, "gyro": pl.imu_batch_s})
        bt = config.bluetooth
        self.slots = SlotScheduler(dict(bt.slots_per_adapter), default_slots=bt.default_slots, rotation_s=bt.rotation_s)
        self.session_settings = SessionSettings(
            scan_timeout_s=bt.scan_timeout_s, connect_timeout_s=bt.connect_timeout_s, connect_attempts=bt.connect_attempts,
            backoff_initial_s=bt.backoff_initial_s, backoff_max_s=bt.backoff_max_s, give_up_after=bt.give_up_after,
        )
        self.devices: dict[str, _Device] = {}
        for d in config.devices:
            if not d.enabled:
                continue
            athlete = config.athletes.get(d.athlete) if d.athlete else None
            self.devices[d.address] = _Device(d, DevicePipeline(d.device_id, athlete, pl),
                                              StreamMapper(bt.wheel_circumference_m))
        self.outbox: Outbox | None = None
        self.delivery: Any = None
        self.watch: Any = None
        self._pending: list[SampleBatch] = []
        self._stop = asyncio.Event()
        self._drain_s = 0.0
        self._started_us = 0
        self.appended_batches = 0
        self.appended_samples = 0
        self.append_errors = 0

    # ------------------------------------------------------------------------------- public
    def stop(self, drain_s: float = 0.0) -> None:
        """Ask :meth:`run` to shut down cleanly: devices disconnected, open batches and derived
        streams flushed into the outbox; with ``drain_s`` > 0 the uplink then gets up to that
        long to deliver everything before it is stopped (what is left stays in the outbox)."""
        self._drain_s = drain_s
        self._stop.set()

    async def run(self) -> None:
        """Run until :meth:`stop` (or cancellation)."""
        cfg = self.config
        cfg.agent.data_dir.mkdir(parents=True, exist_ok=True)
        self._started_us = self.timebase.now_us()
        self.outbox = Outbox(cfg.outbox_path, max_bytes=int(cfg.outbox.max_mb * 1024 * 1024),
                             synchronous=cfg.outbox.synchronous, metrics=self.metrics)  # type: ignore[arg-type]
        tasks: list[asyncio.Task[Any]] = []
        try:
            if cfg.uplink is not None:
                from .delivery import Delivery

                kw: dict[str, Any] = {"metrics": self.metrics}
                if self.uplink_factory is not None:
                    kw["uplink_factory"] = self.uplink_factory
                self.delivery = Delivery(self.outbox, cfg.uplink, **kw)
                tasks.append(asyncio.create_task(self.delivery.run(), name="edge.delivery"))
            else:
                log.warning("no [uplink] configured: data is kept in the outbox only")
            if cfg.watch.enabled and cfg.watch.folder is not None:
                from .watch import FitFolderWatch

                self.watch = FitFolderWatch(cfg.watch.folder, cfg.watch_state_path, self.outbox, self.metrics,
                                            poll_interval_s=cfg.watch.poll_interval_s, settle_s=cfg.watch.settle_s)
                tasks.append(asyncio.create_task(self.watch.run(self._stop), name="edge.watch"))
            if cfg.bluetooth.enabled:
                for dev in self.devices.values():
                    self.slots.add(dev.cfg.address, dev.cfg.adapter)
            log.info("edge agent %s/%s started: %d devices, uplink %s, outbox %s", cfg.agent.tenant, cfg.agent.agent_id,
                     len(self.devices), cfg.uplink.transport if cfg.uplink else "none", cfg.outbox_path,
                     extra={"event": "agent_started"})
            await self._loop()
        finally:
            await self._shutdown(tasks)

    # ------------------------------------------------------------------------------- loop
    async def _loop(self) -> None:
        cfg = self.config
        next_resync = next_derived = next_status = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_resync:
                self.timebase.resync()
                next_resync = now + cfg.timebase.resync_interval_s
            self._slots(now)
            now_us = self.timebase.now_us()
            if now >= next_derived:
                next_derived = now + cfg.pipeline.derived_interval_s
                for dev in self.devices.values():
                    self._add_samples(dev, dev.pipeline.tick(now_us), feed=False)
            self._pending += self.batcher.due(now_us)
            if self._pending:
                await self._append()
            if now >= next_status:
                next_status = now + cfg.agent.status_interval_s
                await asyncio.to_thread(self.write_status)
            try:
                await asyncio.wait_for(self._stop.wait(), TICK_S)
            except asyncio.TimeoutError:
                pass

    def _slots(self, now_s: float) -> None:
        for dev in self.devices.values():  # sessions that gave up free their slot
            if dev.task is not None and dev.task.done():
                if not dev.task.cancelled() and dev.task.exception() is not None:
                    log.error("%s: session crashed: %r", dev.cfg.address, dev.task.exception())
                dev.task = None
                self.slots.release(dev.cfg.address)
        decision = self.slots.tick(now_s)
        for addr in decision.evict:
            dev = self.devices[addr]
            dev.rotations += 1
            self._stop_session(dev)
        for addr in decision.admit:
            self._start_session(self.devices[addr])
        for a in self.slots.allocations():
            self.metrics.devices_queued.labels(a.adapter).set(len(a.queued))

    def _start_session(self, dev: _Device) -> None:
        c = dev.cfg
        if dev.session is None:
            dev.session = DeviceSession(
                c.address, c.device_id, name=c.name, adapter=c.adapter, on_measurement=self._on_measurement,
                timebase=self.timebase, metrics=self.metrics, settings=self.session_settings,
                client_class=self.client_class, on_disconnect=self._on_disconnect,
                imu_rate_hz=c.imu_rate_hz, imu_gyro=c.imu_gyro,
            )
        dev.task = asyncio.create_task(dev.session.run(), name=f"edge[{c.address}].session")

    def _stop_session(self, dev: _Device) -> None:
        if dev.session is not None:
            asyncio.create_task(dev.session.stop(), name=f"edge[{dev.cfg.address}].stop")
        if dev.task is not None:
            task = dev.task
            dev.task = None

            async def _wait() -> None:
                try:
                    await asyncio.wait_for(asyncio.shield(task), 15)
                except (asyncio.TimeoutError, Exception):  # noqa: BLE001
                    task.cancel()
            asyncio.create_task(_wait())

    def _on_measurement(self, session: DeviceSession, kind: str, m: Any, t_us: int) -> None:
        dev = self.devices.get(session.address)
        if dev is None:
            return
        self._add_samples(dev, dev.mapper.map(m, t_us), feed=True)

    def _add_samples(self, dev: _Device, samples: list[Any], *, feed: bool) -> None:
        did = dev.cfg.device_id
        for s in samples:
            self._pending += self.batcher.add(did, s)
            if feed:
                dev.pipeline.feed(s)

    def _on_disconnect(self, session: DeviceSession) -> None:
        dev = self.devices.get(session.address)
        if dev is not None:
            dev.mapper.reset()

    async def _append(self) -> None:
        batches, self._pending = self._pending, []
        assert self.outbox is not None
        try:
            await asyncio.to_thread(self.outbox.append, batches)
        except Exception as exc:  # noqa: BLE001 - keep them and retry at the next tick
            self.append_errors += 1
            log.error("outbox append of %d batches failed (kept, retrying): %s", len(batches), exc)
            self._pending = batches + self._pending
            return
        self.appended_batches += len(batches)
        self.appended_samples += sum(len(b) for b in batches)
        if self.delivery is not None:
            self.delivery.notify()

    async def _shutdown(self, tasks: list[asyncio.Task[Any]]) -> None:
        self._stop.set()
        stops = [d.session.stop() for d in self.devices.values() if d.session is not None]
        if stops:
            await asyncio.gather(*stops, return_exceptions=True)
        for d in self.devices.values():
            if d.task is not None:
                d.task.cancel()
        await asyncio.gather(*(d.task for d in self.devices.values() if d.task is not None), return_exceptions=True)
        if self.outbox is not None:
            now_us = self.timebase.now_us()
            for dev in self.devices.values():
                self._add_samples(dev, dev.pipeline.finish(now_us), feed=False)
            self._pending += self.batcher.flush()
            if self._pending:
                await self._append()
        if self.delivery is not None:
            if self._drain_s > 0:
                drained = await self.delivery.wait_empty(self._drain_s)
                log.info("shutdown: outbox %s", "drained" if drained else f"not drained within {self._drain_s:.0f} s (kept)")
            self.delivery.stop()
        for t in tasks:
            try:
                await asyncio.wait_for(t, 10)
            except (asyncio.TimeoutError, asyncio.CancelledError, Exception):  # noqa: BLE001
                t.cancel()
        if self.outbox is not None:
            try:
                self.write_status()
            except OSError:
                pass
            self.outbox.close()
        if self.watch is not None:
            self.watch.close()
        log.info("edge agent stopped", extra={"event": "agent_stopped"})

    # ------------------------------------------------------------------------------- status
    def status(self) -> dict[str, Any]:
        """The status document (what ``fittrack edge status`` shows)."""
        now_us = self.timebase.now_us()
        devs = []
        for dev in self.devices.values():
            s = dev.session.status if dev.session is not None else None
            state = s.state if s is not None else "queued"
            if s is not None and dev.task is None and state not in ("unreachable",):
                state = "queued"
            devs.append({
                "address": dev.cfg.address, "device_id": dev.cfg.device_id, "name": dev.cfg.name,
                "athlete": dev.cfg.athlete, "session": dev.cfg.session, "adapter": dev.cfg.adapter,
                "state": state, "kind": (s.kind if s else "") or dev.cfg.kind,
                "battery_pct": s.battery_pct if s else None,
                "notifications": s.notifications if s else 0, "decode_errors": s.decode_errors if s else 0,
                "reconnects": s.reconnects if s else 0, "failures": s.failures if s else 0,
                "rotations": dev.rotations, "last_error": s.last_error if s else "",
                "last_seen_s": round((now_us - s.last_notification_us) / 1e6, 1) if s and s.last_notification_us else None,
                "live": asdict(dev.pipeline.live),
            })
        doc: dict[str, Any] = {
            "agent_id": self.config.agent.agent_id, "tenant": self.config.agent.tenant, "pid": os.getpid(),
            "started_at_us": self._started_us, "updated_at_us": now_us, "wall_clock_us": time.time_ns() // 1000,
            "timebase": {**asdict(self.timebase.stats), "pending_jump_us": self.timebase.pending_jump_us},
            "adapters": [asdict(a) | {"queued": list(a.queued)} for a in self.slots.allocations()],
            "devices": devs,
            "pipeline": {"appended_batches": self.appended_batches, "appended_samples": self.appended_samples,
                         "pending_samples": self.batcher.pending_samples, "append_errors": self.append_errors},
        }
        if self.outbox is not None:
            try:
                st = self.outbox.stats()
                doc["outbox"] = {"batches": st.batches, "samples": st.samples, "bytes": st.bytes,
                                 "oldest_age_s": st.oldest_age_s, "dropped_samples": st.dropped_samples,
                                 "leased_batches": st.leased_batches, "max_bytes": self.outbox.max_bytes,
                                 "path": str(self.outbox.path)}
            except Exception as exc:  # noqa: BLE001
                doc["outbox"] = {"error": str(exc)}
        if self.delivery is not None:
            doc["delivery"] = asdict(self.delivery.status)
        if self.watch is not None:
            doc["watch"] = {"folder": str(self.watch.folder), "imported_files": self.watch.imported_count()}
        return doc

    def write_status(self) -> None:
        """Write the status document atomically (tmp + rename)."""
        path = Path(self.config.agent.status_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.status(), default=str, indent=1))
        os.replace(tmp, path)
