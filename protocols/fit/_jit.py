"""JIT policy for the FIT kernels: Numba when available, plain Python otherwise.

``NUMBA_DISABLE_JIT=1`` (or a Python without numba, e.g. on a phone) runs the very same kernel
code as Python; results are identical, only slower.
"""

from __future__ import annotations

import os
from typing import Any, Callable

try:  # pragma: no cover - depends on the install
    if os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"):
        raise ImportError("disabled")
    import numba as _numba
except ImportError:  # pragma: no cover
    _numba = None

HAVE_NUMBA = _numba is not None


def jit(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Compile ``fn`` in nopython mode (cached on disk) if numba is usable, else return it."""
    if _numba is None:
        return fn
    return _numba.njit(cache=True, nogil=True, error_model="numpy")(fn)
