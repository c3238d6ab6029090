"""Each problem kind on a hand-damaged file: reported with its byte offset, valid part kept,
strict mode raises FitError carrying the same kind and offset."""

from __future__ import annotations

import numpy as np
import pytest

from protocols.fit import FitError, ProblemKind, read
from protocols.fit.scan import crc16
from protocols.fit.writer import write_activity

T0_US = 1_780_000_000 * 1_000_000


@pytest.fixture(scope="module")
def blob() -> bytes:
    n = 30
    return write_activity(T0_US, {"heart_rate_bpm": list(range(100, 100 + n)), "power_w": [200] * n},
                          rr_s=[0.8] * 30)


def _fix_crc(data: bytearray) -> bytes:
    end = len(data) - 2
    c = crc16(np.frombuffer(bytes(data), np.uint8), 0, end)
    data[end:] = c.to_bytes(2, "little")
    return bytes(data)


def _kinds(r) -> list[tuple[ProblemKind, int]]:
    return [(p.kind, p.offset) for p in r.problems]


def _strict(data: bytes, kind: ProblemKind, offset: int) -> None:
    with pytest.raises(FitError) as ei:
        read(data, strict=True)
    assert (ei.value.kind, ei.value.offset) == (kind, offset)
    assert isinstance(ei.value, ValueError) and str(offset) in str(ei.value)


def test_sound_file(blob: bytes) -> None:
    r = read(blob, strict=True)
    assert r.problems == [] and r.samples["heart_rate"] == 30 and r.valid_bytes == len(blob)
    assert blob[0] == 14  # header with CRC


def test_bad_header_crc_keeps_everything(blob: bytes) -> None:
    d = bytearray(blob)
    d[12] ^= 0xFF
    r = read(bytes(d))  # the file CRC covers the header too
    assert _kinds(r) == [(ProblemKind.BAD_HEADER_CRC, 12), (ProblemKind.BAD_FILE_CRC, len(blob) - 2)]
    d = _fix_crc(d)
    r = read(d)
    assert _kinds(r) == [(ProblemKind.BAD_HEADER_CRC, 12)]
    assert r.batches == read(blob).batches
    _strict(d, ProblemKind.BAD_HEADER_CRC, 12)


def test_unknown_base_type_is_read_as_bytes(blob: bytes) -> None:
    d = bytearray(blob)
    assert d[14] & 0x40 and d[17] == 0  # the first record is file_id's definition (global 0)
    d[22] = 0x55  # base type of file_id's first field
    d = _fix_crc(d)
    r = read(d)
    assert _kinds(r) == [(ProblemKind.UNKNOWN_BASE_TYPE, 14)]
    assert r.samples == read(blob).samples
    _strict(d, ProblemKind.UNKNOWN_BASE_TYPE, 14)


def test_undefined_local_message_keeps_the_prefix(blob: bytes) -> None:
    good = read(blob)
    # make the 13th data message's header point at a local type that was never defined
    from protocols.fit.reader import _walk  # white box: message offsets

    offs = []
    _walk(np.frombuffer(blob, np.uint8), on_chunk=lambda b, d, o, *_: offs.extend(o.tolist()))
    at = offs[12]
    d = bytearray(blob)
    d[at] = 0x0F  # local type 15: never defined by the encoder in a file this small
    d = _fix_crc(d)
    r = read(d)
    assert _kinds(r) == [(ProblemKind.UNDEFINED_LOCAL_MESSAGE, at)]
    assert 0 < r.message_count == 12 < good.message_count and r.valid_bytes == at
    _strict(d, ProblemKind.UNDEFINED_LOCAL_MESSAGE, at)


def test_data_size_too_small_and_too_large(blob: bytes) -> None:
    size = int.from_bytes(blob[4:8], "little")
    d = bytearray(blob)
    d[4:8] = (size - 3).to_bytes(4, "little")
    d[12:14] = crc16(np.frombuffer(bytes(d), np.uint8), 0, 12).to_bytes(2, "little")
    r = read(bytes(d))
    assert r.problems[0].kind is ProblemKind.MESSAGE_OVERRUNS_DATA and r.record_count == 30
    d[4:8] = (size + 100).to_bytes(4, "little")
    d[12:14] = crc16(np.frombuffer(bytes(d), np.uint8), 0, 12).to_bytes(2, "little")
    r = read(bytes(d))
    # the old CRC bytes are now read as a message that the end of the file cuts short
    assert _kinds(r) == [(ProblemKind.TRUNCATED, len(blob) - 2)] and r.record_count == 30


def test_garbage_after_the_file_and_not_fit_at_all(blob: bytes) -> None:
    r = read(blob + b"\x00" * 20)
    assert _kinds(r) == [(ProblemKind.INVALID_CHAINED_FILE, len(blob))]
    assert r.batches == read(blob).batches
    r = read(blob + b"\x00" * 5)
    assert _kinds(r) == [(ProblemKind.INVALID_CHAINED_FILE, len(blob))]
    assert _kinds(read(b"hello world, not a FIT file")) == [(ProblemKind.BAD_HEADER, 0)]
    assert _kinds(read(blob[:10])) == [(ProblemKind.BAD_HEADER, 0)]
    _strict(blob[:10], ProblemKind.BAD_HEADER, 0)


def test_chained_copy_doubles_the_data(blob: bytes) -> None:
    r = read(blob + blob, strict=True)
    assert r.summary.files == 2 and r.record_count == 60
    # the same samples twice at the same times: batches cut where time goes back
    assert r.samples["heart_rate"] == 60
