"""The batch codec: :class:`SampleBatch` in, compact protobuf envelopes out (DESIGN §4).

Public API::

    SampleBatch(device_id, stream, seq, t_us, values, scale=1.0, unit="", time_resolution_us=1)
    encode_envelope(batches, *, agent_id, tenant, seq) -> bytes
    decode_envelope(data) -> Envelope   # .agent_id .tenant .seq .batches
    WireError(ValueError)

The contract is ``proto/fittrack/v1/*.proto``; the generated classes are in
:mod:`protocols.wire.gen.fittrack.v1`. docs/wire-format.md explains the coding.
"""

from .batch import SampleBatch
from .codec import (
    MAX_BATCH_SAMPLES,
    MAX_BODY_BYTES,
    MAX_ENVELOPE_BYTES,
    MAX_ENVELOPE_VALUES,
    Envelope,
    decode_batch_message,
    decode_batches,
    decode_envelope,
    encode_batches,
    encode_envelope,
)
from .errors import WireError

__all__ = [
    "MAX_BATCH_SAMPLES",
    "MAX_BODY_BYTES",
    "MAX_ENVELOPE_BYTES",
    "MAX_ENVELOPE_VALUES",
    "Envelope",
    "SampleBatch",
    "WireError",
    "decode_batch_message",
    "decode_batches",
    "decode_envelope",
    "encode_batches",
    "encode_envelope",
]
