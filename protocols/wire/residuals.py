"""Order-k difference coding of int64 series into fixed-width, byte-planed residuals.

Pure numpy, vectorised. All arithmetic wraps modulo 2**64, so any int64 series round-trips
exactly, including ones whose differences overflow. The normative definition is the
``Residuals`` message in ``proto/fittrack/v1/batch.proto``:

* ``order`` 0, 1 or 2 (none, first or second differences), chosen per series by
  :func:`choose` as the one with the smallest spread (a proxy for the entropy-coded size);
* ``base``, the midpoint of the residuals' range, subtracted so they fit the fewest bytes;
* ``width`` 0/1/2/4/8 bytes, stored as byte planes (all low bytes, then all next bytes...),
  so that zlib sees the near-constant high bytes as runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import WireError

MAX_ORDER = 2
WIDTHS = (0, 1, 2, 4, 8)
_DTYPES = {1: np.dtype("<i1"), 2: np.dtype("<i2"), 4: np.dtype("<i4"), 8: np.dtype("<i8")}
_LIMITS = ((1, -(1 << 7), (1 << 7) - 1), (2, -(1 << 15), (1 << 15) - 1), (4, -(1 << 31), (1 << 31) - 1))
_I64 = 1 << 64


@dataclass(frozen=True, slots=True)
class Coded:
    """One coded series: ``order``, verbatim ``head``, residual ``base``, ``width`` and bytes."""

    order: int
    head: list[int]
    base: int
    width: int
    data: bytes


def _wrap(v: int) -> int:
    """Python int -> the int64 it is congruent to modulo 2**64."""
    v %= _I64
    return v - _I64 if v >= 1 << 63 else v


def _spread(r: np.ndarray) -> float:
    """Variance as float (no int64 overflow): the cost proxy of a residual series.

    Computed as E[r^2] - E[r]^2 with two BLAS-backed reductions: np.std's Python-level
    bookkeeping costs ~10 µs a call, which dominated encoding of small batches.
    """
    n = r.size
    if n < 2:
        return 0.0
    f = r.astype(np.float64)
    m = f.sum() / n
    return max(float(np.dot(f, f)) / n - m * m, 0.0)


def choose(x: np.ndarray) -> tuple[int, np.ndarray]:
    """Pick the difference order (0..2) with the smallest residual spread; returns (order, residuals)."""
    best_order, best_r, best_cost = 0, x, _spread(x)
    r = x
    for order in range(1, MAX_ORDER + 1):
        if best_cost == 0.0 or r.size <= 2:
            break
        r = r[1:] - r[:-1]  # wraps on overflow, like the decoder's cumsum
        cost = _spread(r)
        if cost < best_cost * 0.9:  # variance: prefer the lower order unless clearly better
            best_order, best_r, best_cost = order, r, cost
    return best_order, best_r


def cost(r: np.ndarray) -> float:
    """Public cost proxy used to compare candidate codings of the same series."""
    return _spread(r)


def sparse_cost(r: np.ndarray, sample: int = 1024) -> float:
    """Approximate bits per residual, mean log2(1 + |r - median|) over a leading sample.

    Slower than :func:`cost` but right for sparse series (mostly zero with a few steps), such as
    timestamps that follow a model except across a gap.
    """
    if r.size < 2:
        return 0.0
    s = r[:sample].astype(np.float64)
    return float(np.log2(1.0 + np.abs(s - np.median(s))).mean())


def _diff(x: np.ndarray, order: int) -> np.ndarray:
    r = x
    for _ in range(order):
        r = r[1:] - r[:-1]
    return r


def encode(x: np.ndarray, order: int | None = None) -> Coded:
    """Code int64 series ``x``; ``order=None`` picks the cheapest order."""
    if order is None:
        order, r = choose(x)
    else:
        r = _diff(x, order)
    k = min(order, x.size)
    head = x[:k].tolist()
    if r.size == 0:
        return Coded(order, head, 0, 0, b"")
    lo = int(r.min())
    hi = int(r.max())
    if lo == hi:
        return Coded(order, head, lo, 0, b"")
    base = (lo + hi) // 2
    u = r - np.int64(base)  # wraps when the range exceeds int64; the decoder wraps back
    ulo, uhi = lo - base, hi - base
    width = 8
    for w, wlo, whi in _LIMITS:
        if ulo >= wlo and uhi <= whi:
            width = w
            break
    if width == 8 and hi - lo >= 1 << 63:
        base = 0  # range too wide to centre: store the residuals themselves
        u = r
    a = u.astype(_DTYPES[width], copy=False)
    if width == 1:
        data = a.tobytes()
    else:
        data = np.ascontiguousarray(a.view(np.uint8).reshape(-1, width).T).tobytes()
    return Coded(order, head, base, width, data)


def decode(order: int, head, base: int, width: int, data: bytes, n: int, what: str, out: np.ndarray | None = None) -> np.ndarray:
    """Inverse of :func:`encode`; raises :class:`WireError` naming ``what`` on inconsistency.

    ``out``, if given, is an int64 array (or strided column view) of length ``n`` to fill.
    """
    if order > MAX_ORDER:
        raise WireError(f"{what}: difference order {order} is not supported (max {MAX_ORDER})")
    k = min(order, n)
    if len(head) != k:
        raise WireError(f"{what}: order {order} over {n} samples needs {k} head values, got {len(head)}")
    if width not in WIDTHS:
        raise WireError(f"{what}: residual width {width} bytes is not one of {WIDTHS}")
    m = n - k
    if len(data) != m * width:
        raise WireError(
            f"{what}: {m} residuals of {width} bytes need {m * width} data bytes, got {len(data)}"
        )
    if out is None:
        out = np.empty(n, np.int64)
    if n == 0:
        return out
    if width == 0:
        r = None
    elif width == 1:
        r = np.frombuffer(data, np.int8)
    else:
        planes = np.frombuffer(data, np.uint8).reshape(width, m)
        r = np.ascontiguousarray(planes.T).view(_DTYPES[width]).reshape(m)
    if order == 0:
        if r is None:
            out[:] = base
        else:
            out[:] = r
            if base:
                out += np.int64(base)
        return out
    h = [int(v) for v in head]
    out[0] = h[0]
    if order == 1:
        if m:
            tail = out[1:]
            if r is None:
                tail[:] = base
            else:
                tail[:] = r
                if base:
                    tail += np.int64(base)
            np.cumsum(tail, out=tail)
            tail += out[0]
        return out
    # order 2: first differences d[j] = x[j+1] - x[j]; d[0] = h1 - h0, d[j] = d[j-1] + r[j-1]
    if n == 1:
        return out
    tail = out[1:]
    d0 = np.array(h[1:2], np.int64) - np.array(h[0:1], np.int64)  # wraps, like the encoder
    tail[0:1] = d0
    if m:
        rest = tail[1:]
        if r is None:
            rest[:] = base
        else:
            rest[:] = r
            if base:
                rest += np.int64(base)
    np.cumsum(tail, out=tail)  # first differences
    np.cumsum(tail, out=tail)  # offsets from x[0]
    tail += out[0]
    return out
