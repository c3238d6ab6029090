"""Mutated and truncated corpus files: never anything but FitError (strict), never a hang, and
without strict never an exception at all; what is kept is always a valid wire batch."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.fit import FitError, read
from protocols.wire import SampleBatch, decode_batches, encode_batches

from .reference import DATA

SEEDS = ["Activity.fit", "garmin-fenix-5-run.fit", "antfs-dump.63.fit", "DeveloperData.fit",
         "activity-settings.fit", "WeightScaleMultiUser.fit", "garmin-edge-820-bike.fit",
         "compressed-speed-distance.fit"]
BLOBS = {n: (DATA / n).read_bytes() for n in SEEDS}


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(BLOBS[draw(st.sampled_from(SEEDS))])
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["set", "cut", "insert", "delete", "header"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if op == "set":
            data[i] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[i:]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[i:i + draw(st.integers(1, 16))]
        else:  # the header and first definitions hold sizes and types: hit them often
            j = draw(st.integers(0, min(40, len(data) - 1)))
            data[j] = draw(st.integers(0, 255))
    return bytes(data)


def _check(data: bytes, strict: bool, fast: bool = True) -> None:
    try:
        r = read(data, strict=strict, fast=fast)
    except FitError as exc:
        assert strict and exc.problems and exc.offset >= 0
        return
    assert r.valid_bytes <= len(data)
    if strict:
        assert r.problems == []
    for p in r.problems:
        assert 0 <= p.offset <= len(data) and p.message
    bs = r.batches
    assert all(isinstance(b, SampleBatch) for b in bs)
    if bs:
        assert decode_batches(encode_batches(bs[:20])) == bs[:20]


@pytest.mark.timeout(120)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated(), strict=st.booleans(), fast=st.sampled_from([True, True, True, False]))
def test_mutated_files_fail_cleanly(data: bytes, strict: bool, fast: bool) -> None:
    _check(data, strict, fast)  # fast=False: the fitdecode path must fail as cleanly


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", SEEDS)
def test_every_truncation(name: str) -> None:
    blob = BLOBS[name]
    step = max(1, len(blob) // 150)
    for n in range(0, len(blob), step):
        _check(blob[:n], strict=False)
        _check(blob[:n], strict=True)


@pytest.mark.timeout(60)
@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    _check(data, True)
    _check(b".FIT"[:0] + bytes([14, 0x20, 0, 0, len(data) & 0xFF, len(data) >> 8, 0, 0]) + b".FIT\0\0" + data, False)
