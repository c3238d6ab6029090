"""The transport-independent core: envelope bytes + who sent them -> validated, stored once,
acknowledged after commit, fanned out.

Writers take several queued envelopes per transaction (group commit) and resolve each
envelope's future only after that transaction committed; the transports send acks from there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Sequence

from protocols.wire import SampleBatch, WireError, decode_envelope, encode_batches
from protocols.wire.codec import Envelope
from protocols.wire.gen.fittrack.v1 import envelope_pb2 as epb

from .auth import Authenticator, AuthError, Principal
from .fanout import LiveHub
from .metrics import Metrics
from .storage.base import BatchOutcome, DeadLetter, StorageBackend, StorageUnavailable, WriteRequest, WriteStatus
from .validate import Limits, split_valid

log = logging.getLogger("ingest_server.pipeline")

RETRY_AFTER_MS = 1000


class StorageRefused(Exception):
    """The store rejected one envelope's data for a non-transient reason (not a connection problem)."""


@dataclass
class _Job:
    request: WriteRequest
    future: asyncio.Future
    samples: int


class Pipeline:
    """``handle(principal, raw, transport) -> Ack`` for every transport."""

    def __init__(self, store: StorageBackend, auth: Authenticator, metrics: Metrics, hub: LiveHub, *,
                 limits: Limits | None = None, writers: int = 2, max_group_envelopes: int = 64,
                 max_group_samples: int = 2_000_000, max_queue: int = 10_000) -> None:
        self.store = store
        self.auth = auth
        self.metrics = metrics
        self.hub = hub
        self.limits = limits or Limits()
        self.n_writers = writers
        self.max_group_envelopes = max_group_envelopes
        self.max_group_samples = max_group_samples
        self.queue: asyncio.Queue[_Job | None] = asyncio.Queue(max_queue)
        self._writers: list[asyncio.Task] = []
        self._device_tenant: dict[str, str] = {}
        self._claim_queue: dict[tuple[str, str], list[str]] = {}
        self._claim_futs: dict[str, asyncio.Future] = {}
        self._claimer: asyncio.Task | None = None
        self.healthy = True

    async def start(self) -> None:
        self._writers = [asyncio.create_task(self._writer(i), name=f"ingest.writer[{i}]") for i in range(self.n_writers)]

    async def stop(self) -> None:
        """Finish every queued commit (their acks go out), then stop the writers."""
        for _ in self._writers:
            await self.queue.put(None)
        await asyncio.gather(*self._writers, return_exceptions=True)
        self._writers = []

    # ------------------------------------------------------------------------------ handle
    async def handle(self, principal: Principal, raw: bytes, transport: str) -> epb.Ack:
        t_start = time.perf_counter()
        m = self.metrics
        try:
            env = decode_envelope(raw)
        except WireError as exc:
            return await self._reject_envelope(principal, raw, transport, f"malformed envelope: {exc}", "malformed", 0)
        if env.agent_id != principal.agent_id or env.tenant != principal.tenant:
            m.auth_failures.labels(transport).inc()
            return await self._reject_envelope(
                principal, raw, transport,
                f"envelope says agent {env.agent_id!r} of tenant {env.tenant!r} but the credential is agent "
                f"{principal.agent_id!r} of tenant {principal.tenant!r}", "auth", env.seq, env)
        try:
            await self.auth.check_agent(principal.agent_id, principal.tenant)  # revoked since the stream opened?
        except AuthError as exc:
            m.auth_failures.labels(transport).inc()
            return await self._reject_envelope(principal, raw, transport, str(exc), "auth", env.seq, env, dead=False)
        except StorageUnavailable as exc:
            return self._retry(env.seq, principal, transport, str(exc))
        m.samples_received.labels(transport).inc(env.sample_count)
        ok, rejected = split_valid(env.batches, self.limits)
        reasons: dict[int, tuple[str, str]] = {r.index: (r.reason, _kind(r.reason)) for r in rejected}
        # tenancy: a device belongs to the tenant that first sent it
        try:
            owners = await self._owners(principal, [b.device_id for b in ok])
        except StorageUnavailable as exc:
            return self._retry(env.seq, principal, transport, str(exc))
        index = {id(b): i for i, b in enumerate(env.batches)}
        keep: list[SampleBatch] = []
        for b in ok:
            owner = owners.get(b.device_id)
            if owner != principal.tenant:
                reasons[index[id(b)]] = (f"{b.device_id}/{b.stream}#{b.seq}: device {b.device_id!r} belongs to another tenant", "tenancy")
            else:
                keep.append(b)
        dead = [
            DeadLetter(principal.tenant, principal.agent_id, transport, reason, encode_batches([env.batches[i]]),
                       env.batches[i].device_id, env.batches[i].stream, min(env.batches[i].seq, (1 << 63) - 1))
            for i, (reason, _) in sorted(reasons.items())
        ]
        job = _Job(WriteRequest(principal.tenant, principal.agent_id, keep, dead),
                   asyncio.get_running_loop().create_future(), sum(len(b) for b in keep))
        await self.queue.put(job)
        m.queue_depth.set(self.queue.qsize())
        try:
            outcomes: list[BatchOutcome] = await job.future
        except StorageUnavailable as exc:
            return self._retry(env.seq, principal, transport, str(exc))
        except StorageRefused as exc:  # not transient: REJECTED + dead letter, never an endless resend
            return await self._reject_envelope(principal, raw, transport, str(exc), "storage", env.seq, env)
        committed_us = time.time_ns() // 1000
        outcome_of = {id(b): o for b, o in zip(keep, outcomes)}
        ack = epb.Ack(agent_id=principal.agent_id, envelope_seq=env.seq, committed_at_us=committed_us)
        stored_batches = []
        for i, b in enumerate(env.batches):
            if i in reasons:
                reason, kind = reasons[i]
                ack.batches.add(device_id=b.device_id, stream=b.stream, seq=b.seq, status=epb.BATCH_STATUS_REJECTED, reason=reason)
                m.batches_rejected.labels(transport, kind).inc()
                m.samples_rejected.labels(transport, kind).inc(len(b))
                continue
            o = outcome_of[id(b)]
            if o.status is WriteStatus.STORED:
                ack.batches.add(device_id=b.device_id, stream=b.stream, seq=b.seq, status=epb.BATCH_STATUS_STORED, samples_stored=len(b))
                stored_batches.append(b)
            else:
                ack.batches.add(device_id=b.device_id, stream=b.stream, seq=b.seq, status=epb.BATCH_STATUS_DUPLICATE)
                m.batches_duplicate.labels(transport).inc()
                m.samples_duplicate.labels(transport).inc(len(b))
        n_stored = sum(len(b) for b in stored_batches)
        m.samples_stored.labels(transport).inc(n_stored)
        m.batches_stored.labels(transport).inc(len(stored_batches))
        ack.status = epb.ACK_STATUS_PARTIAL if reasons else epb.ACK_STATUS_OK
        if reasons:
            ack.message = f"{len(reasons)} of {len(env.batches)} batches rejected; see batches[].reason"
            log.warning("batches rejected", extra={"agent_id": principal.agent_id, "tenant": principal.tenant,
                                                   "envelope_seq": env.seq, "reasons": [r for r, _ in reasons.values()][:5]})
        m.envelopes.labels(transport, epb.AckStatus.Name(ack.status)).inc()
        m.ack_latency.labels(transport).observe(time.perf_counter() - t_start)
        self.hub.publish(principal.tenant, principal.agent_id, stored_batches)
        return ack

    async def _owners(self, principal: Principal, device_ids: list[str]) -> dict[str, str]:
        """Owner tenant of each device; unknown devices are claimed for ``principal.tenant``.
        Concurrent claims are coalesced: one query per tenant per round, however many envelopes."""
        cache = self._device_tenant
        unknown = {d for d in device_ids if d not in cache}
        if unknown:
            loop = asyncio.get_running_loop()
            futs = []
            for d in unknown:
                f = self._claim_futs.get(d)
                if f is None:
                    f = self._claim_futs[d] = loop.create_future()
                    self._claim_queue.setdefault((principal.tenant, principal.agent_id), []).append(d)
                futs.append(f)
            if self._claimer is None or self._claimer.done():
                self._claimer = asyncio.create_task(self._claim_rounds(), name="ingest.claim")
            await asyncio.gather(*futs)
        return {d: cache.get(d, "") for d in device_ids}

    async def _claim_rounds(self) -> None:
        while self._claim_queue:
            queue, self._claim_queue = self._claim_queue, {}
            by_tenant: dict[str, tuple[str, list[str]]] = {}
            for (tenant, agent), ids in queue.items():
                by_tenant.setdefault(tenant, (agent, []))[1].extend(ids)
            for tenant, (agent, ids) in by_tenant.items():
                try:
                    owners = await self.store.claim_devices(tenant, agent, ids)
                except Exception as exc:  # noqa: BLE001 - handed to every waiter
                    for d in ids:
                        f = self._claim_futs.pop(d, None)
                        if f is not None and not f.done():
                            f.set_exception(exc if isinstance(exc, StorageUnavailable) else StorageUnavailable(repr(exc)))
                    continue
                if len(self._device_tenant) > 1_000_000:
                    self._device_tenant.clear()
                self._device_tenant.update(owners)
                for d in ids:
                    f = self._claim_futs.pop(d, None)
                    if f is not None and not f.done():
                        f.set_result(None)

    def _retry(self, seq: int, principal: Principal, transport: str, why: str) -> epb.Ack:
        self.metrics.envelopes.labels(transport, "ACK_STATUS_RETRY").inc()
        log.warning("storage unavailable; envelope not stored (RETRY)", extra={"agent_id": principal.agent_id, "error": why})
        return epb.Ack(agent_id=principal.agent_id, envelope_seq=seq, status=epb.ACK_STATUS_RETRY,
                       message="storage unavailable; resend later", retry_after_ms=RETRY_AFTER_MS)

    async def _reject_envelope(self, principal: Principal, raw: bytes, transport: str, reason: str, kind: str, seq: int,
                               env: Envelope | None = None, dead: bool = True) -> epb.Ack:
        m = self.metrics
        m.envelopes.labels(transport, "ACK_STATUS_REJECTED").inc()
        n = env.sample_count if env is not None else 0
        m.samples_rejected.labels(transport, kind).inc(n)
        log.warning("envelope rejected", extra={"agent_id": principal.agent_id, "tenant": principal.tenant, "reason": reason})
        if dead:
            try:
                await self.store.add_dead_letters([DeadLetter(principal.tenant, principal.agent_id, transport, reason, bytes(raw))])
            except StorageUnavailable as exc:
                return self._retry(seq, principal, transport, str(exc))
        ack = epb.Ack(agent_id=principal.agent_id, envelope_seq=seq, status=epb.ACK_STATUS_REJECTED, message=reason,
                      committed_at_us=time.time_ns() // 1000)
        if env is not None:
            for b in env.batches:
                ack.batches.add(device_id=b.device_id, stream=b.stream, seq=b.seq, status=epb.BATCH_STATUS_REJECTED, reason=reason)
        return ack

    # ------------------------------------------------------------------------------ writers
    async def _writer(self, i: int) -> None:
        q = self.queue
        stopping = False
        while not stopping:
            job = await q.get()
            if job is None:
                return
            jobs = [job]
            samples = job.samples
            while len(jobs) < self.max_group_envelopes and samples < self.max_group_samples and not q.empty():
                nxt = q.get_nowait()
                if nxt is None:
                    stopping = True
                    break
                jobs.append(nxt)
                samples += nxt.samples
            self.metrics.queue_depth.set(q.qsize())
            await self._commit(jobs)

    async def _commit(self, jobs: Sequence[_Job]) -> None:
        t0 = time.perf_counter()
        try:
            results = await self.store.write_many([j.request for j in jobs])
        except StorageUnavailable as exc:
            self.metrics.storage_errors.inc()
            self.healthy = False
            for j in jobs:
                if not j.future.done():
                    j.future.set_exception(exc)
            return
        except Exception as exc:  # one bad request must not poison the group: retry one by one
            if len(jobs) > 1:
                log.warning("group commit failed; retrying envelope by envelope", extra={"error": repr(exc)})
                for j in jobs:
                    await self._commit([j])
                return
            log.exception("commit of one envelope failed: refusing it (a resend would fail the same way)")
            self.metrics.storage_errors.inc()
            if not jobs[0].future.done():
                jobs[0].future.set_exception(StorageRefused(f"the store refused the envelope: {exc!r}"))
            return
        self.healthy = True
        self.metrics.db_seconds.observe(time.perf_counter() - t0)
        self.metrics.group_size.observe(len(jobs))
        for j, r in zip(jobs, results):
            if not j.future.done():
                j.future.set_result(r)


def _kind(reason: str) -> str:
    if "future" in reason or "days old" in reason:
        return "time"
    if "physical range" in reason:
        return "range"
    return "limit"
