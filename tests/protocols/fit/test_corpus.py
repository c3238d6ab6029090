"""Every corpus file: counts and every emitted value equal fitdecode's (the reference, DESIGN §10);
MANIFEST.tsv expectations; corrupt files give the documented problems and keep the valid prefix."""

from __future__ import annotations

import csv
from functools import lru_cache

import numpy as np
import pytest

from protocols.fit import FitError, ProblemKind, read
from protocols.wire import MAX_BATCH_SAMPLES

from .reference import DATA, FIT_EPOCH_S, expected

FILES = sorted(p.name for p in DATA.glob("*.fit"))

#: What is wrong with the damaged corpus files (kind, byte offset). Every other file reads clean.
PROBLEMS = {
    "activity-filecrc.fit": [(ProblemKind.BAD_FILE_CRC, 769)],
    "activity-activity-filecrc.fit": [(ProblemKind.BAD_FILE_CRC, 1540)],
    "activity-settings-corruptheader.fit": [(ProblemKind.INVALID_CHAINED_FILE, 771)],
    "activity-settings-nodata.fit": [(ProblemKind.TRUNCATED, 783)],
    "activity-unexpected-eof.fit": [(ProblemKind.TRUNCATED, 751)],
    # the last record runs 2 bytes past the declared data size, and there is no file CRC
    "nick.fit": [(ProblemKind.MESSAGE_OVERRUNS_DATA, 403437)],
    # a data message of local type 11 that was never defined (fitdecode stops there too)
    "strava-android-app-201.10-b1218918.fit": [(ProblemKind.UNDEFINED_LOCAL_MESSAGE, 7471)],
}
#: Files the fast path hands to fitdecode, and why (kept short on purpose: see docs/fit-import.md).
FALLBACK = {"compressed-speed-distance.fit", "null_compressed_speed_dist.fit"}


@lru_cache(maxsize=None)
def _ours(name: str, fast: bool = True):
    return read(DATA / name, fast=fast)


def _stream(r, stream: str):
    bs = [b for b in r.batches if b.stream == stream]
    if not bs:
        return np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate([b.t_us for b in bs]), np.concatenate([b.physical() for b in bs])


@pytest.mark.parametrize("name", FILES)
def test_counts_and_values_equal_fitdecode(name: str) -> None:
    r = _ours(name)
    e = expected(DATA / name)
    assert (r.record_count, r.message_count) == (e.records, e.messages)
    assert r.decoder == ("fitdecode" if name in FALLBACK else "fast"), r.fallback_reason
    emitted = {b.stream for b in r.batches}
    assert emitted - {"position", "rr_interval"} == set(e.streams)
    for stream, (ts, vals) in e.streams.items():
        t_us, phys = _stream(r, stream)
        np.testing.assert_array_equal(t_us, (np.array(ts, np.int64) + FIT_EPOCH_S) * 1_000_000, err_msg=stream)
        np.testing.assert_allclose(phys, vals, rtol=0, atol=1e-9, err_msg=stream)
    bs = [b for b in r.batches if b.stream == "position"]
    assert bool(bs) == bool(e.position[0])
    if bs:
        np.testing.assert_array_equal(np.concatenate([b.t_us for b in bs]),
                                      (np.array(e.position[0], np.int64) + FIT_EPOCH_S) * 1_000_000)
        np.testing.assert_array_equal(np.concatenate([b.values for b in bs]), np.array(e.position[1]))
        assert bs[0].unit == "deg" and bs[0].scale == pytest.approx(180 / 2**31)
    assert set(r.developer_values) == set(e.dev)
    for k, (ts, vals) in e.dev.items():
        np.testing.assert_array_equal(r.developer_values[k].t_us, (np.array(ts, np.int64) + FIT_EPOCH_S) * 1_000_000)
        np.testing.assert_array_equal(r.developer_values[k].values, vals)
    rr = [b for b in r.batches if b.stream == "rr_interval"]
    assert [int(x) for b in rr for x in b.values] == e.rr_ms
    for b in r.batches:
        assert 0 < len(b) <= MAX_BATCH_SAMPLES
        assert b.device_id == r.device_id


@pytest.mark.parametrize("name", FILES)
def test_fast_path_equals_reference_path(name: str) -> None:
    fast, ref = _ours(name), _ours(name, False)
    assert ref.decoder == "fitdecode"
    key = lambda b: (b.stream, b.seq)  # noqa: E731 - streams interleave differently
    assert sorted(fast.batches, key=key) == sorted(ref.batches, key=key)
    assert (fast.record_count, fast.message_count, fast.summary, fast.developer_fields, fast.developer_values) == (
        ref.record_count, ref.message_count, ref.summary, ref.developer_fields, ref.developer_values)


@pytest.mark.parametrize("name", FILES)
def test_problems_are_the_documented_ones(name: str) -> None:
    r = _ours(name)
    assert [(p.kind, p.offset) for p in r.problems] == PROBLEMS.get(name, [])
    if name in PROBLEMS:
        with pytest.raises(FitError) as ei:
            read(DATA / name, strict=True)
        assert (ei.value.kind, ei.value.offset) == PROBLEMS[name][0]
    else:
        assert read(DATA / name, strict=True).record_count == r.record_count


def test_bad_crc_keeps_all_data_and_truncation_keeps_the_prefix() -> None:
    good = _ours("Activity.fit")
    assert _ours("activity-filecrc.fit").batches == good.batches
    cut = _ours("activity-unexpected-eof.fit")
    assert cut.record_count == good.record_count == 14
    for b in cut.batches:
        g = next(x for x in good.batches if x.stream == b.stream and x.seq == b.seq)
        n = len(b)
        np.testing.assert_array_equal(b.values, g.values[:n])
    # chained: the first activity is kept whole when the second file is bad
    for name in ("activity-settings-corruptheader.fit", "activity-settings-nodata.fit", "activity-settings.fit"):
        assert _ours(name).batches == good.batches, name
    both = _ours("activity-activity-filecrc.fit")
    assert both.record_count == 28 and both.summary.files == 2


def test_manifest_expectations() -> None:
    rows = list(csv.DictReader(open(DATA / "MANIFEST.tsv"), delimiter="\t"))
    assert {r["path"].rsplit("/", 1)[1] for r in rows} == set(FILES)
    for row in rows:
        name = row["path"].rsplit("/", 1)[1]
        exp = row["expected_by_source_tests"]
        r = _ours(name)
        if "FitCRCError" in exp:
            assert any(p.kind is ProblemKind.BAD_FILE_CRC for p in r.problems), name
        elif "FitHeaderError" in exp:
            assert any(p.kind is ProblemKind.INVALID_CHAINED_FILE for p in r.problems), name
        elif "FitEOFError" in exp:
            assert any(p.kind is ProblemKind.TRUNCATED for p in r.problems), name
        elif "parses" in exp:
            assert r.problems == [], name
    # specific assertions of the sources' tests
    assert _ours("2019-02-17-062644-ELEMNT-297E-195-0.fit").summary.avg_speed_mps == pytest.approx(5.86)
    assert _ours("coros-pace-2-cycling-misaligned-fields.fit").message_count == 11293
    assert _ours("sample_mulitple_header.fit").message_count == 3023
    csd = _ours("compressed-speed-distance.fit")
    # first record at raw timestamp 17217864 (relative: < 0x10000000) carries no values; 753+ after it
    assert csd.summary.first_record_us == (17217864 + FIT_EPOCH_S) * 1_000_000 and csd.summary.relative_time
    t_hr, _ = _stream(csd, "heart_rate")
    assert int(t_hr[0]) > csd.summary.first_record_us
    assert csd.record_count == 755 and min(csd.samples.values()) >= 753
    assert _ours("garmin-fr935-cr.fit").summary.files == 7


def test_summary_and_developer_fields() -> None:
    s = _ours("activity-small-fenix2-run.fit").summary
    assert (s.file_type, s.manufacturer, s.sport, s.sessions) == ("activity", "garmin", "running", 1)
    assert s.laps >= 1 and s.duration_s and s.duration_s > 60 and s.start_time_us
    r = _ours("developer-types-sample.fit")
    names = {(d.name, d.units) for d in r.developer_fields}
    assert names and all(n for n, _ in names)
    assert any(d.messages == (20,) or 20 in d.messages for d in r.developer_fields)
    by_num = {d.field_number: d for d in r.developer_fields}
    assert (by_num[8].name, by_num[8].units) == ("Form Power", "Watts")
    fp = r.developer_values[(0, 8)]
    assert len(fp.t_us) == r.record_count and 0 <= fp.values.min() and fp.values.max() < 1000
    assert r.device_id.startswith("fit-")


def test_sources_bytes_file_and_path_agree() -> None:
    p = DATA / "garmin-fenix-5-run.fit"
    a = read(p)
    with open(p, "rb") as f:
        b = read(f)
    c = read(p.read_bytes())
    assert a.batches == b.batches == c.batches
    assert read(b"").problems[0].kind is ProblemKind.BAD_HEADER
    with pytest.raises(FitError):
        read(b"not a fit file at all", strict=True)
    with pytest.raises(TypeError):
        read(12345)  # type: ignore[arg-type]


def test_sink_receives_the_same_batches() -> None:
    got = []
    r = read(DATA / "garmin-edge-500-activity.fit", sink=got.append)
    assert r.batches == [] and got == _ours("garmin-edge-500-activity.fit").batches


def test_seq_strictly_increasing_and_windows() -> None:
    r = _ours("activity-large-fenxi2-multisport.fit")
    by: dict[str, list] = {}
    for b in r.batches:
        by.setdefault(b.stream, []).append(b)
    for stream, bs in by.items():
        seqs = [b.seq for b in bs]
        assert seqs == sorted(set(seqs)), stream
        for b in bs:
            assert b.t_us[-1] - b.t_us[0] < 300_000_000
