"""JIT policy for every dsp kernel in one place.

``njit`` is ``numba.njit(cache=True, nogil=True)`` when Numba imports and ``NUMBA_DISABLE_JIT`` is
not set; otherwise it is the identity decorator, so the kernels (plain loops over numpy arrays)
run as ordinary Python -- slower, same numbers. That is the path on iOS/Android Python, where
Numba does not exist, and the one the CI exercises with ``NUMBA_DISABLE_JIT=1``.
"""

from __future__ import annotations

import os
from typing import Any, Callable

__all__ = ["HAVE_NUMBA", "njit"]

HAVE_NUMBA = False
_numba: Any = None
if os.environ.get("NUMBA_DISABLE_JIT", "0").strip() in ("", "0"):
    try:  # pragma: no cover - depends on the platform
        import numba as _numba

        HAVE_NUMBA = True
    except ImportError:  # pragma: no cover
        _numba = None


def njit(fn: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
    """Compile ``fn`` with Numba (nopython, cached) when available; return it unchanged otherwise."""

    def wrap(f: Callable[..., Any]) -> Callable[..., Any]:
        if not HAVE_NUMBA:
            return f
        opts = {"cache": True, "nogil": True}
        opts.update(kwargs)
        return _numba.njit(**opts)(f)

    return wrap(fn) if fn is not None else wrap
