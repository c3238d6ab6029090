"""Order-k difference coding of int64 series into fixed-width little-endian residuals.

Pure numpy, vectorised. All arithmetic wraps modulo 2**64, so any int64 series round-trips
exactly, including ones whose differences overflow. See ``proto/fittrack/v1/batch.proto``
(message ``Residuals``) for the normative definition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import WireError

MAX_ORDER = 2
WIDTHS = (0, 1, 2, 4, 8)
_DTYPES = {1: np.dtype("<i1"), 2: np.dtype("<i2"), 4: np.dtype("<i4"), 8: np.dtype("<i8")}
_LIMITS = ((1, -(1 << 7), (1 << 7) - 1), (2, -(1 << 15), (1 << 15) - 1), (4, -(1 << 31), (1 << 31) - 1))


@dataclass(frozen=True, slots=True)
class Coded:
    """One coded series: ``order``, the verbatim ``head`` values, residual ``width`` and bytes."""

    order: int
    head: list[int]
    width: int
    data: bytes


def _diff(x: np.ndarray, order: int) -> np.ndarray:
    r = x
    for _ in range(order):
        r = r[1:] - r[:-1]  # wraps on overflow, like the decoder's cumsum
    return r


def _width(r: np.ndarray) -> int:
    if r.size == 0:
        return 0
    lo = int(r.min())
    hi = int(r.max())
    if lo == 0 and hi == 0:
        return 0
    for width, wlo, whi in _LIMITS:
        if lo >= wlo and hi <= whi:
            return width
    return 8


def _cost(r: np.ndarray) -> float:
    """Cheap proxy for the entropy-coded size: mean magnitude (float, so no int64 overflow)."""
    if r.size == 0:
        return 0.0
    return float(np.abs(r.astype(np.float64)).mean())


def choose(x: np.ndarray) -> tuple[int, np.ndarray]:
    """Pick the difference order (0..2) whose residuals look cheapest; returns (order, residuals)."""
    best_order, best_r, best_cost = 0, x, _cost(x)
    r = x
    for order in range(1, MAX_ORDER + 1):
        if best_cost == 0.0 or r.size == 0:
            break
        r = r[1:] - r[:-1]  # wraps on overflow, like the decoder's cumsum
        cost = _cost(r)
        if cost < best_cost:
            best_order, best_r, best_cost = order, r, cost
    return best_order, best_r


def encode(x: np.ndarray, order: int | None = None) -> Coded:
    """Code int64 series ``x``; ``order=None`` picks the cheapest order."""
    if order is None:
        order, r = choose(x)
    else:
        r = _diff(x, min(order, x.size))
    k = min(order, x.size)
    head = x[:k].tolist()
    w = _width(r)
    data = b"" if w == 0 else r.astype(_DTYPES[w], copy=False).tobytes()
    return Coded(order, head, w, data)


def decode(order: int, head: list[int] | np.ndarray, width: int, data: bytes, n: int, what: str) -> np.ndarray:
    """Inverse of :func:`encode`; raises :class:`WireError` naming ``what`` on inconsistency."""
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
    if n == 0:
        return np.empty(0, np.int64)
    if width == 0:
        r = np.zeros(m, np.int64)
    else:
        r = np.frombuffer(data, _DTYPES[width]).astype(np.int64)
    if order == 0:
        return r
    h = np.asarray(head, dtype=np.int64)
    if order == 1:
        out = np.empty(n, np.int64)
        out[0] = h[0]
        if m:
            np.cumsum(r, out=out[1:])
            out[1:] += h[0]
        return out
    # order 2: first differences d[j] = x[j+1] - x[j]; d[0] = h1 - h0, d[j] = d[j-1] + r[j-1]
    if n == 1:
        return h.copy()
    d = np.empty(n - 1, np.int64)
    d[0:1] = h[1:2] - h[0:1]
    if m:
        np.cumsum(r, out=d[1:])
        d[1:] += d[0]
    out = np.empty(n, np.int64)
    out[0] = h[0]
    np.cumsum(d, out=out[1:])
    out[1:] += h[0]
    return out
