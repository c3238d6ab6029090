"""Without Numba (phones, NUMBA_DISABLE_JIT=1) the kernels run as Python and give the same result."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from protocols.fit import read
from protocols.wire import encode_batches

from .reference import DATA

FILES = ["garmin-fenix-5-run.fit", "activity-activity-filecrc.fit", "antfs-dump.63.fit", "activity-unexpected-eof.fit"]
ROOT = Path(__file__).resolve().parents[3]

SCRIPT = """
import hashlib, sys
from protocols.fit import read
from protocols.fit._jit import HAVE_NUMBA
from protocols.wire import encode_batches
assert not HAVE_NUMBA
for p in sys.argv[1:]:
    r = read(p)
    print(hashlib.sha256(encode_batches(r.batches) if r.batches else b"").hexdigest(), r.record_count,
          [(x.kind.value, x.offset) for x in r.problems])
"""


def test_python_kernels_match_numba() -> None:
    paths = [str(DATA / n) for n in FILES]
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, "-c", SCRIPT, *paths], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=True).stdout.splitlines()
    want = []
    for p in paths:
        r = read(p)
        want.append(f"{hashlib.sha256(encode_batches(r.batches) if r.batches else b'').hexdigest()} {r.record_count} "
                    f"{[(x.kind.value, x.offset) for x in r.problems]}")
    assert out == want
