"""``encode_envelope_body``: envelopes built from pre-encoded (concatenated) batch bodies."""

import numpy as np
import pytest

from protocols.wire import SampleBatch, WireError, decode_envelope, encode_batches, encode_envelope
from protocols.wire.codec import encode_envelope_body


def _batch(i: int) -> SampleBatch:
    t = 1_700_000_000_000_000 + np.arange(50, dtype=np.int64) * 1_000_000
    return SampleBatch(f"ble-{i:012x}", "heart_rate", i, t, 60 + (np.arange(50) % 7) + i, unit="bpm")


@pytest.mark.parametrize("level", [0, 6])
def test_concatenated_bodies_decode_to_all_batches(level: int) -> None:
    bs = [_batch(i) for i in range(5)]
    body = b"".join(encode_batches([b]) for b in bs)
    env = decode_envelope(encode_envelope_body(body, agent_id="a", tenant="t", seq=9, compression_level=level))
    assert env.seq == 9 and [b.device_id for b in env.batches] == [b.device_id for b in bs]
    for got, want in zip(env.batches, bs):
        assert got.seq == want.seq
        np.testing.assert_array_equal(got.t_us, want.t_us)
        np.testing.assert_array_equal(got.values, want.values)


def test_same_bytes_as_encode_envelope() -> None:
    bs = [_batch(i) for i in range(3)]
    a = encode_envelope(bs, agent_id="a", tenant="t", seq=1, sent_at_us=5)
    b = encode_envelope_body(encode_batches(bs), agent_id="a", tenant="t", seq=1, sent_at_us=5)
    assert a == b


def test_empty_body_is_refused() -> None:
    with pytest.raises(WireError, match="at least one batch"):
        encode_envelope_body(b"", agent_id="a", tenant="t", seq=1)
