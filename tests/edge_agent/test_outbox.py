"""Outbox: durability, seq allocation, lease/ack/release, drop policy, stats."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import BatchKey, Outbox, OutboxError, Priority, priority_of
from protocols.wire import decode_batches
from protocols.wire.codec import encode_envelope_body
from protocols.wire import decode_envelope

from ._delivery_helpers import SteppingClock, hr_batch, imu_batch


@pytest.fixture
def metrics() -> EdgeMetrics:
    return EdgeMetrics()


def test_append_assigns_increasing_seq_and_roundtrips(tmp_path, metrics) -> None:
    with Outbox(tmp_path / "o.db", metrics=metrics) as ob:
        keys = ob.append([hr_batch(n=5), hr_batch(n=5, bpm0=100), imu_batch(n=20)])
        assert [k[1] for k in keys] == ["heart_rate", "heart_rate", "accel"]
        assert keys[1][2] > keys[0][2]
        entries = ob.lease(10)
        assert [e.key for e in entries] == keys
        got = decode_batches(entries[1].body)[0]
        assert got.seq == keys[1][2] and list(got.values) == [100, 101, 102, 103, 104]
        # bodies concatenate into one envelope
        env = decode_envelope(encode_envelope_body(b"".join(e.body for e in entries), agent_id="a", tenant="t", seq=1))
        assert [(b.device_id, b.stream, b.seq) for b in env.batches] == keys
        assert env.batches[2].values.shape == (20, 3)
    assert metrics.registry.get_sample_value("fittrack_edge_outbox_appended_samples_total", {"stream": "accel"}) == 20


def test_seq_never_reused_after_restart_or_clock_going_back(tmp_path) -> None:
    clock = SteppingClock()
    path = tmp_path / "o.db"
    with Outbox(path, clock_us=clock, metrics=EdgeMetrics()) as ob:
        k1 = ob.append([hr_batch()])[0]
        ob.ack([k1])
    clock.t_us -= 3_600_000_000  # host clock jumps back an hour
    with Outbox(path, clock_us=clock, metrics=EdgeMetrics()) as ob:
        k2 = ob.append([hr_batch()])[0]
        k3 = ob.append([hr_batch()])[0]
    assert k1[2] < k2[2] < k3[2]
    # a fresh file with a sane clock still starts above anything issued (seq ~ clock in µs)
    clock.t_us += 7_200_000_000
    with Outbox(tmp_path / "fresh.db", clock_us=clock, metrics=EdgeMetrics()) as ob:
        assert ob.append([hr_batch()])[0][2] > k3[2]


def test_explicit_seq_must_increase(tmp_path) -> None:
    from dataclasses import replace

    with Outbox(tmp_path / "o.db", metrics=EdgeMetrics()) as ob:
        ob.append([replace(hr_batch(), seq=10)], assign_seq=False)
        with pytest.raises(OutboxError, match="seq 10 is not above the last stored seq 11"):
            ob.append([replace(hr_batch(), seq=11), replace(hr_batch(), seq=10)], assign_seq=False)
        assert ob.keys() == [("ble-000000000001", "heart_rate", 10)]  # the failed append stored nothing


def test_envelope_seq_increases_across_restarts(tmp_path) -> None:
    clock = SteppingClock()
    with Outbox(tmp_path / "o.db", clock_us=clock, metrics=EdgeMetrics()) as ob:
        a = [ob.next_envelope_seq() for _ in range(1500)]
    clock.t_us -= 10_000_000
    with Outbox(tmp_path / "o.db", clock_us=clock, metrics=EdgeMetrics()) as ob:
        b = ob.next_envelope_seq()
    assert a == sorted(set(a)) and b > a[-1]


def test_lease_is_oldest_first_and_exclusive_until_release_or_expiry(tmp_path, monkeypatch) -> None:
    with Outbox(tmp_path / "o.db", metrics=EdgeMetrics()) as ob:
        keys = ob.append([hr_batch(device_id=f"ble-{i:012x}") for i in range(10)])
        first = ob.lease(4)
        second = ob.lease(4)
        assert [e.key for e in first + second] == keys[:8]
        ob.release([e.id for e in first[:2]])
        assert [e.key for e in ob.lease(10)] == keys[:2] + keys[8:]
        assert ob.lease(10) == []
        # expired leases are free again
        import edge_agent.outbox as mod

        real = mod.time.monotonic
        monkeypatch.setattr(mod.time, "monotonic", lambda: real() + 3600)
        assert [e.key for e in ob.lease(100)] == keys


def test_lease_respects_byte_budget_but_returns_at_least_one(tmp_path) -> None:
    with Outbox(tmp_path / "o.db", metrics=EdgeMetrics()) as ob:
        ob.append([imu_batch(n=500) for _ in range(3)])
        one = ob.lease(10, max_bytes=1)
        assert len(one) == 1
        rest = ob.lease(10, max_bytes=10**9)
        assert len(rest) == 2


def test_ack_deletes_and_is_idempotent(tmp_path, metrics) -> None:
    with Outbox(tmp_path / "o.db", metrics=metrics) as ob:
        keys = ob.append([hr_batch(n=7), hr_batch(n=3)])
        assert ob.ack([keys[0], keys[0], ("nope", "heart_rate", 1)]) == {keys[0]: 7}
        st = ob.stats()
        assert (st.batches, st.samples) == (1, 3)
        assert ob.ack([keys[0]]) == {}
        ob.ack([keys[1]])
        st = ob.stats()
        assert (st.batches, st.samples, st.bytes, st.oldest_age_s) == (0, 0, 0, 0.0)


def test_priority_classes() -> None:
    assert priority_of("accel") < priority_of("power") < priority_of("heart_rate") < priority_of("hr_zone")
    assert priority_of("rr_interval") == Priority.HEART and priority_of("rep") == Priority.DERIVED


def test_drop_policy_drops_lowest_class_oldest_first_and_counts(tmp_path, metrics) -> None:
    path = tmp_path / "o.db"
    with Outbox(path, max_bytes=10**9, metrics=metrics) as ob:
        imu = ob.append([imu_batch(n=100, t0_us=1_780_000_000_000_000 + i * 10**6) for i in range(6)])
        hr = ob.append([hr_batch(n=60) for _ in range(3)])
        derived = ob.append([hr_batch(n=5, stream="hr_zone")])
        size = ob.stats().bytes
    entries = {}
    with Outbox(path, max_bytes=10**9, metrics=EdgeMetrics()) as ob:
        for e in ob.lease(100):
            entries[e.key] = len(e.body)
    imu_bytes = sum(entries[k] for k in imu)
    bound = size - imu_bytes // 2  # fits only about half of the IMU data
    with Outbox(path, max_bytes=bound, metrics=metrics) as ob:
        # one more HR batch pushes it over: the oldest IMU batches go, nothing else
        new = ob.append([hr_batch(n=60)])
        left = ob.keys()
        st = ob.stats()
        assert st.bytes <= bound
        dropped_keys = [k for k in imu + hr + derived + new if k not in left]
        assert dropped_keys and all(k in imu for k in dropped_keys)
        assert dropped_keys == imu[: len(dropped_keys)]  # oldest first
        counts = ob.dropped_counts()
    assert counts == {("ble-0000000000aa", "accel"): (len(dropped_keys), 100 * len(dropped_keys))}
    assert metrics.registry.get_sample_value("fittrack_edge_dropped_samples_total", {"stream": "accel"}) == 100 * len(dropped_keys)
    # counts survive a restart
    with Outbox(path, max_bytes=bound, metrics=EdgeMetrics()) as ob:
        assert ob.dropped_counts() == counts
        assert ob.stats().dropped_samples == 100 * len(dropped_keys)


def test_drop_policy_spares_leased_batches_while_it_can(tmp_path) -> None:
    with Outbox(tmp_path / "o.db", metrics=EdgeMetrics()) as ob:
        imu = ob.append([imu_batch(n=100) for _ in range(4)])
        leased = ob.lease(1)
        assert leased[0].key == imu[0]
        ob.max_bytes = ob.stats().bytes - 1
        ob.append([hr_batch(n=1)])
        left = ob.keys()
        assert imu[0] in left and imu[1] not in left


def test_full_outbox_of_high_priority_drops_the_new_low_priority_batch(tmp_path) -> None:
    with Outbox(tmp_path / "o.db", metrics=EdgeMetrics()) as ob:
        hr = ob.append([hr_batch(n=60) for _ in range(4)])
        ob.max_bytes = ob.stats().bytes
        (k,) = ob.append([imu_batch(n=50)])
        assert ob.keys() == hr and k not in ob.keys()
        assert ob.dropped_counts()[("ble-0000000000aa", "accel")] == (1, 50)


def test_stats_by_priority_and_age(tmp_path) -> None:
    clock = SteppingClock()
    with Outbox(tmp_path / "o.db", clock_us=clock, metrics=EdgeMetrics()) as ob:
        ob.append([imu_batch(n=10), hr_batch(n=4), hr_batch(n=2, stream="rep")])
        clock.t_us += 5_500_000
        st = ob.stats()
    assert st.by_priority == {Priority.RAW_IMU: (1, 10), Priority.HEART: (1, 4), Priority.DERIVED: (1, 2)}
    assert st.oldest_age_s == pytest.approx(5.5)
    assert st.samples == 16


def test_bad_input_is_refused_with_a_clear_error(tmp_path) -> None:
    with pytest.raises(OutboxError, match="synchronous"):
        Outbox(tmp_path / "o.db", synchronous="OFF")  # type: ignore[arg-type]
    with Outbox(tmp_path / "o.db", metrics=EdgeMetrics()) as ob:
        with pytest.raises(OutboxError, match="expected SampleBatch"):
            ob.append([{"hr": 60}])  # type: ignore[list-item]
        assert ob.append([hr_batch(n=0)]) == []
    with pytest.raises(OutboxError, match="closed"):
        ob.append([hr_batch()])


def test_persisted_across_reopen_with_normal_sync(tmp_path) -> None:
    with Outbox(tmp_path / "o.db", synchronous="NORMAL", metrics=EdgeMetrics()) as ob:
        keys = ob.append([hr_batch(n=3) for _ in range(5)])
    with Outbox(tmp_path / "o.db", metrics=EdgeMetrics()) as ob:
        assert ob.keys() == keys
        assert ob.stats().samples == 15
        assert np.array_equal(decode_batches(ob.lease(1)[0].body)[0].values, [60, 61, 62])


def test_attempts_are_persisted(tmp_path) -> None:
    with Outbox(tmp_path / "o.db", metrics=EdgeMetrics()) as ob:
        ob.append([hr_batch()])
        assert ob.lease(1)[0].attempts == 1
        ob.release()
        assert ob.lease(1)[0].attempts == 2
    with Outbox(tmp_path / "o.db", metrics=EdgeMetrics()) as ob:
        assert ob.lease(1)[0].attempts == 3
        ob.release()
        assert ob.lease(1, count_attempt=False)[0].attempts == 3


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["append", "lease", "release", "release_all", "ack"]), st.integers(1, 7)),
                max_size=40))
def test_lease_matches_a_simple_model(tmp_path_factory, ops) -> None:
    """Whatever the mix of appends, leases, releases and acks: a lease returns the oldest free batches."""
    path = tmp_path_factory.mktemp("model") / "o.db"
    free: list[BatchKey] = []  # model: stored and not leased, in append order
    leased: list[BatchKey] = []
    order: dict[BatchKey, int] = {}
    with Outbox(path, metrics=EdgeMetrics()) as ob:
        ids: dict[BatchKey, int] = {}
        for op, k in ops:
            if op == "append":
                for key in ob.append([hr_batch(n=1) for _ in range(k)]):
                    order[key] = len(order)
                    free.append(key)
            elif op == "lease":
                got = ob.lease(k, 1 << 30)
                want = sorted(free, key=order.__getitem__)[:k]
                assert [e.key for e in got] == want
                for e in got:
                    ids[e.key] = e.id
                    free.remove(e.key)
                    leased.append(e.key)
            elif op == "release" and leased:
                back = leased[::2][:k]
                ob.release([ids[x] for x in back])
                for x in back:
                    leased.remove(x)
                    free.append(x)
            elif op == "release_all":
                ob.release()
                free += leased
                leased.clear()
            elif op == "ack" and (leased or free):
                gone = (leased + free)[:k]
                ob.ack(gone)
                for x in gone:
                    (leased if x in leased else free).remove(x)
        assert ob.stats().batches == len(free) + len(leased)
        assert sorted(e.key for e in ob.lease(10_000, 1 << 30)) == sorted(free)


def test_depth_and_age_gauges(tmp_path) -> None:
    clock = SteppingClock()
    m = EdgeMetrics()
    with Outbox(tmp_path / "o.db", clock_us=clock, metrics=m) as ob:
        ob.append([imu_batch(n=10), hr_batch(n=4)])
        clock.t_us += 42_000_000
        ob.refresh_metrics()
        g = m.registry.get_sample_value
        assert g("fittrack_edge_outbox_oldest_age_seconds") == pytest.approx(42.0)
        assert g("fittrack_edge_outbox_depth_samples", {"priority": "raw_imu"}) == 10
        assert g("fittrack_edge_outbox_depth_batches", {"priority": "heart"}) == 1
        assert g("fittrack_edge_outbox_bytes") == ob.stats().bytes > 0


def test_file_shrinks_after_a_backlog_drains(tmp_path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path, synchronous="NORMAL", metrics=EdgeMetrics()) as ob:
        ob.SHRINK_FREE_PAGES = 256  # 1 MiB instead of 8 MiB, to keep the test small
        for _ in range(40):
            ob.append([imu_batch(n=2000) for _ in range(10)])
        ob._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        full = path.stat().st_size
        assert full > 4 * 1024 * 1024
        while batch := ob.lease(256, 1 << 30):
            ob.ack([e.key for e in batch])
        assert ob.stats().batches == 0
        assert path.stat().st_size < full / 4


def _with_seq(b, seq: int):
    from protocols.wire import SampleBatch

    return SampleBatch(b.device_id, b.stream, seq, b.t_us, b.values, b.scale, b.unit)


def test_allow_past_takes_content_keyed_seqs_below_the_last_and_skips_queued_keys(tmp_path) -> None:
    """FIT imports key batches by first sample time: an older file of a device must still go in."""
    with Outbox(tmp_path / "o.sqlite", metrics=EdgeMetrics()) as ob:
        newer = _with_seq(hr_batch("fit-1-2-3", n=5, bpm0=100), 2_000_000)
        older = _with_seq(hr_batch("fit-1-2-3", n=5, bpm0=70), 1_000_000)
        assert ob.append([newer], assign_seq=False) == [("fit-1-2-3", "heart_rate", 2_000_000)]
        with pytest.raises(OutboxError, match="not above the last stored seq"):
            ob.append([older], assign_seq=False)
        assert ob.append([older], assign_seq=False, allow_past=True) == [("fit-1-2-3", "heart_rate", 1_000_000)]
        # the same keys again (a re-import after a crash, or twice in one call): skipped, not an error
        assert ob.append([older, newer, older], assign_seq=False, allow_past=True) == []
        assert ob.last_seqs()[("fit-1-2-3", "heart_rate")] == 2_000_000  # never moves backwards
        live = ob.append([hr_batch("fit-1-2-3", n=2)])
        assert live[0][2] > 2_000_000
        leased = ob.lease(max_batches=10)
        assert sorted(e.key[2] for e in leased) == sorted([1_000_000, 2_000_000, live[0][2]])
        got = {e.key[2]: decode_batches(e.body)[0].values.tolist() for e in leased}
        assert got[1_000_000] == [70, 71, 72, 73, 74] and got[2_000_000] == [100, 101, 102, 103, 104]
