"""Make ``proto/fittrack/v1/deflate_dict_v1.bin``, the preset DEFLATE dictionary of
``COMPRESSION_DEFLATE_DICT_V1``.

The dictionary is part of the v1 wire contract: once published it never changes (a test pins
its SHA-256). This script documents how it was made; a v2 dictionary would get a new file and a
new Compression value. It holds serialized batch headers of the common streams (DESIGN §3), so
that the first batches of a small envelope compress against it instead of against nothing.

Usage: python tools/gen_deflate_dict.py [--out PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# (stream, unit, scale, time resolution µs, channels): least common first; zlib favours the end.
TEMPLATES = [
    ("calories", "kcal", 0.1, 1_000_000, 0),
    ("trimp", "au", 0.01, 1_000_000, 0),
    ("hrv_rmssd", "ms", 0.01, 1_000_000, 0),
    ("rep", "", 1.0, 1000, 0),
    ("battery", "%", 1.0, 1_000_000, 0),
    ("temperature", "degC", 0.01, 1_000_000, 0),
    ("position", "deg", 180.0 / 2**31, 1_000_000, 2),
    ("altitude", "m", 0.2, 1_000_000, 0),
    ("incline", "%", 0.1, 1000, 0),
    ("resistance", "", 0.1, 1000, 0),
    ("stroke_rate", "spm", 0.5, 1000, 0),
    ("distance", "m", 0.1, 1000, 0),
    ("speed", "km/h", 0.01, 1000, 0),
    ("cadence", "rpm", 0.5, 1000, 0),
    ("power", "W", 1.0, 1000, 0),
    ("energy_expended", "kJ", 1.0, 1000, 0),
    ("gyro", "deg/s", 1 / 16.4, 10_000, 3),
    ("accel", "g", 1 / 4096, 10_000, 3),
    ("hr_zone", "", 1.0, 1000, 0),
    ("rr_interval", "s", 1 / 1024, 1000, 0),
    ("heart_rate", "bpm", 1.0, 1000, 0),
]


def build() -> bytes:
    from protocols.wire import SampleBatch
    from protocols.wire.codec import encode_batches

    parts = []
    for stream, unit, scale, res, ch in TEMPLATES:
        shape = (2,) if ch == 0 else (2, ch)
        t = np.array([1_764_000_000_000_000, 1_764_000_001_000_000])
        b = SampleBatch("device-00000000", stream, 1, t, np.ones(shape, np.int64), scale=scale, unit=unit, time_resolution_us=res)
        parts.append(encode_batches([b]))
    return b"".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "proto" / "fittrack" / "v1" / "deflate_dict_v1.bin")
    ns = ap.parse_args(argv)
    data = build()
    ns.out.write_bytes(data)
    print(f"{ns.out}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
