"""Device models without any transport: determinism, physiology, counters, control semantics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_sims.models import (
    CadenceSensor,
    HeartRateStrap,
    ImuWearable,
    IndoorBike,
    PowerMeter,
    Rower,
    Treadmill,
    build_devices,
    parse_spec,
)
from firmware_sims.models.ftms import CONTROL_POINT
from protocols.ble import ControlPointOpCode as Op
from protocols.ble import CscRates, ResultCode, decode, encode
from protocols.ble import imu as imu_codec


def test_same_seed_same_bytes_different_seed_different_bytes() -> None:
    a = [n.payload for d in build_devices("hr:1,imu:1,bike:1", seed=5) for n in d.advance(120)]
    b = [n.payload for d in build_devices("hr:1,imu:1,bike:1", seed=5) for n in d.advance(120)]
    c = [n.payload for d in build_devices("hr:1,imu:1,bike:1", seed=6) for n in d.advance(120)]
    assert a == b and a != c
    # stepping in small increments gives the same stream as one big step
    d = build_devices("hr:1", seed=5)[0]
    small = [n.payload for k in range(1, 1201) for n in d.advance(k / 10)]
    assert small == [n.payload for n in build_devices("hr:1", seed=5)[0].advance(120)]


def test_parse_spec_errors_are_clear() -> None:
    assert parse_spec("hr:3, imu:1,bike") == [("hr", 3), ("imu", 1), ("bike", 1)]
    with pytest.raises(ValueError, match="unknown device kind 'hrm'"):
        parse_spec("hrm:1")
    with pytest.raises(ValueError, match="bad count 'x'"):
        parse_spec("hr:x")


def test_hr_strap_rr_adds_up_to_beats_with_ectopic_missed_and_contact_loss() -> None:
    m = HeartRateStrap("C0:00:00:00:00:01", "s", seed=11, p_ectopic=0.01, p_missed=0.01)
    notes = [n for n in m.advance(1800) if n.char_uuid.startswith("00002a37")]
    gt = m.ground_truth()
    assert len(notes) == len(gt["notifications"]) >= 1799
    decoded = [decode(0x2A37, n.payload) for n in notes]
    for d, rec in zip(decoded, gt["notifications"]):
        assert (d.heart_rate_bpm, d.sensor_contact, list(d.rr_intervals_1024 or [])) == (
            rec["heart_rate_bpm"], rec["sensor_contact"], rec["rr_intervals_1024"])
    beats = np.array(gt["beats_s"])
    assert gt["ectopic_s"] and gt["missed_s"] and gt["contact_loss"]
    # every reported RR is the gap between two detected beats: a missed beat makes one RR span two
    rr = np.array([r for d in decoded for r in (d.rr_intervals_1024 or [])]) / 1024
    assert rr.max() > 1.6 * np.median(rr)  # missed beats / compensatory pauses
    assert rr.min() < 0.75 * np.median(rr)  # premature (ectopic) beats
    total = rr.sum()
    assert total < beats[-1] - beats[0] + 1e-6
    # no RR while contact is lost, HR 0 and contact bit cleared
    lost = [(d, r) for d, r in zip(decoded, gt["notifications"]) if not r["sensor_contact"]]
    assert lost and all(d.heart_rate_bpm == 0 and not d.rr_intervals_1024 for d, _ in lost)
    # HR follows the workout: the hard intervals are well above the warm-up
    hr = np.array([r["true_hr_bpm"] for r in gt["notifications"]])
    assert hr[900:1000].mean() > hr[30:90].mean() + 30
    energy = [d.energy_expended_kj for d in decoded if d.energy_expended_kj is not None]
    assert len(energy) == len(decoded) // 10 and energy == sorted(energy) and energy[-1] > 100


def test_hr_strap_battery_drains_and_notifies() -> None:
    m = HeartRateStrap("C0:00:00:00:00:01", "s", seed=1)
    start = m.battery_start_pct
    notes = [n for n in m.advance(3 * 3600) if n.char_uuid.startswith("00002a19")]
    levels = [decode(0x2A19, n.payload).battery_level_pct for n in notes]
    assert levels == list(range(start - 1, start - 1 - len(levels), -1)) and len(levels) >= 11


def test_imu_reps_and_samples_match_ground_truth() -> None:
    m = ImuWearable("C0:00:00:00:00:02", "i", seed=3, rate_dhz=500)
    notes = m.advance(200)
    packets = [imu_codec.decode_imu_data(n.payload) for n in notes]
    assert [p.packet_seq for p in packets] == list(range(len(packets)))
    accel = [s for p in packets for s in p.accel_1_4096g]
    assert accel == m.samples_accel and len(accel) == 50 * 200
    gt = m.ground_truth()
    first = gt["sets"][0]
    assert first["exercise"] == "squat" and len(first["rep_times_s"]) == first["reps"] == 10
    # each squat rep shows as one dip of the vertical acceleration (decelerating at the bottom)
    t = np.array(m.sample_t_s)
    az = np.array([a[2] for a in accel]) / 4096
    sel = (t >= first["start_s"] - 1) & (t <= first["end_s"] + 1)
    smooth = np.convolve(az[sel], np.ones(10) / 10, mode="valid")
    below = smooth < np.median(smooth) - 0.06
    assert int(np.sum(below[1:] & ~below[:-1])) == first["reps"]
    # rest between sets: gravity only
    rest = (t > first["end_s"] + 5) & (t < gt["sets"][1]["start_s"] - 1) if len(gt["sets"]) > 1 else (t > first["end_s"] + 5)
    mag = np.linalg.norm(np.array(accel)[rest] / 4096, axis=1)
    assert abs(mag.mean() - 1.0) < 0.02


def test_imu_config_write_changes_rate_and_rejects_bad_rate() -> None:
    m = ImuWearable("C0:00:00:00:00:02", "i", seed=3)
    m.advance(1)
    m.write(imu_codec.IMU_CONFIG_UUID, imu_codec.encode_imu_config(sample_rate_dhz=2000, flags=0))
    p = imu_codec.decode_imu_data(m.advance(2)[-1].payload)
    assert p.sample_rate_hz == 200 and p.gyro_0_1dps is None
    from firmware_sims.models.base import AttError

    with pytest.raises(AttError):
        m.write(imu_codec.IMU_CONFIG_UUID, imu_codec.encode_imu_config(sample_rate_dhz=333))


@pytest.mark.parametrize("cls", [Treadmill, IndoorBike, Rower])
def test_ftms_control_point_result_codes(cls) -> None:
    m = cls("C0:00:00:00:00:03", "m", seed=0)
    m.advance(30)

    def cp(**f):
        out = m.write(CONTROL_POINT, encode(0x2AD9, **f))
        return decode(0x2AD9, out[0].payload).result_code, out[1:]

    assert cp(op_code=Op.START_OR_RESUME)[0] == ResultCode.CONTROL_NOT_PERMITTED
    assert cp(op_code=Op.REQUEST_CONTROL)[0] == ResultCode.SUCCESS
    assert cp(op_code=Op.SET_TARGETED_CADENCE, targeted_cadence_rpm=90)[0] == ResultCode.OP_CODE_NOT_SUPPORTED
    assert m.write(CONTROL_POINT, b"\x02")[0].payload == bytes([0x80, 0x02, ResultCode.INVALID_PARAMETER])
    res, extra = cp(op_code=Op.STOP_OR_PAUSE, stop_or_pause=2)
    assert res == ResultCode.SUCCESS and decode(0x2ADA, extra[0].payload).stop_or_pause == 2
    dist = m.distance_m
    m.advance(60)
    assert m.distance_m == pytest.approx(dist, abs=30)  # stopped: the belt/flywheel spins down
    assert cp(op_code=Op.START_OR_RESUME)[0] == ResultCode.SUCCESS
    m.advance(120)
    assert m.distance_m > dist + 100
    if cls is Treadmill:
        assert cp(op_code=Op.SET_TARGET_SPEED, target_speed_kmh=16.0)[0] == ResultCode.SUCCESS
        m.advance(160)
        assert m.history[-1]["speed_kmh"] == 16.0
    else:
        assert cp(op_code=Op.SET_TARGET_POWER, target_power_w=2000)[0] == ResultCode.INVALID_PARAMETER
        assert cp(op_code=Op.SET_TARGET_POWER, target_power_w=222)[0] == ResultCode.SUCCESS
        m.advance(160)
        assert m.history[-1]["power_w"] == 222


def test_power_meter_and_csc_counters_roll_over_and_give_true_cadence() -> None:
    for cls in (PowerMeter, CadenceSensor):
        m = cls("C0:00:00:00:00:04", "p", seed=9)
        m.crank.revs = 65536 - 500  # a sensor that has been pedalled a while
        notes = m.advance(1200)
        uuid = notes[0].char_uuid[4:8]
        dec = [decode(uuid, n.payload) for n in notes]
        crank = [d.crank_revolutions for d in dec]
        assert any(b < a for a, b in zip(crank, crank[1:])), "uint16 crank counter must roll over"
        ev = [d.crank_event_time_1024 for d in dec]
        assert sum(b < a for a, b in zip(ev, ev[1:])) >= 18  # 1/1024 s uint16 wraps every 64 s
        gt = m.ground_truth()["data"]
        unwrapped = gt[-1]["crank_revs_total"] - gt[0]["crank_revs_total"]
        assert sum((b - a) % 65536 for a, b in zip(crank, crank[1:])) == unwrapped
    rates = CscRates()
    m = CadenceSensor("C0:00:00:00:00:05", "c", seed=2)
    cad = []
    for n in m.advance(300):
        r = rates.update(decode(0x2A5B, n.payload))
        if r is not None and getattr(r, "cadence_rpm", None) is not None:
            cad.append(r.cadence_rpm)
    truth = [h["cadence_rpm"] for h in m.history]
    assert cad and abs(np.mean(cad) - np.mean(truth)) < 3
    assert math.isclose(m.ground_truth()["wheel_circumference_m"], 2.105)


@settings(max_examples=25)
@given(seed=st.integers(0, 2**31), p_ectopic=st.floats(0, 0.05), p_missed=st.floats(0, 0.05),
       step=st.sampled_from([0.05, 0.5, 1.0, 7.0]))
def test_hr_notifications_are_exactly_the_detected_beats(seed, p_ectopic, p_missed, step) -> None:
    """Property: every RR sent is round(t*1024) difference of consecutive detected beats, none lost."""
    m = HeartRateStrap("C0:00:00:00:00:01", "s", seed=seed, p_ectopic=p_ectopic, p_missed=p_missed)
    t = 0.0
    notes = []
    while t < 300:
        t += step
        notes += [n for n in m.advance(t) if n.char_uuid.startswith("00002a37")]
    gt = m.ground_truth()
    sent = [r for d in (decode(0x2A37, n.payload) for n in notes) for r in (d.rr_intervals_1024 or [])]
    assert sent == [r for rec in gt["notifications"] for r in rec["rr_intervals_1024"]]
    beats = np.array(m.beats_s)
    det = np.array(m.detected)
    lost = [(a, b) for a, b in gt["contact_loss"]]
    in_loss = np.array([any(a <= x < b for a, b in lost) for x in beats])
    q = np.round(beats[det & ~in_loss & (beats <= notes[-1].t_s)] * 1024).astype(int)
    diffs = set(np.diff(q).tolist())
    assert set(sent) <= diffs  # every RR is a gap between consecutive detected beats
    assert len(sent) >= len(q) - 1 - 2 * len(lost) - 9  # ... and (almost) every such gap is sent
