"""The pure-Python path (no Numba: iOS/Android, NUMBA_DISABLE_JIT=1) gives the JIT's numbers.

CI also reruns all of tests/dsp with NUMBA_DISABLE_JIT=1; this test compares both paths in one
process on the kernels themselves (``.py_func`` is the plain function behind a Numba dispatcher).
"""

from __future__ import annotations

import numpy as np
from dsp import _jit, artifacts, hrv, reps, synth

from .conftest import clean_rr


def _py(fn):
    return getattr(fn, "py_func", fn)


def test_no_jit_run_uses_plain_functions():
    """Under NUMBA_DISABLE_JIT=1 (or without Numba) the kernels are the plain functions."""
    if _jit.HAVE_NUMBA:
        assert hasattr(hrv._td_kernel, "py_func")
    else:
        for k in (hrv._td_kernel, hrv._rolling_kernel, artifacts._detect_kernel, reps._rep_kernel):
            assert not hasattr(k, "py_func") and callable(k)


def test_kernels_match_without_jit():
    if not _jit.HAVE_NUMBA:  # this is the no-JIT run: the whole suite checks the same numbers
        rr = clean_rr(50)
        assert hrv.time_domain(rr)["rmssd"] > 0
        return
    rr = clean_rr(400, seed=3)
    rr[200] -= 250
    rr[201] += 250
    a, b = np.empty(13), np.empty(13)
    hrv._td_kernel(rr, a)
    _py(hrv._td_kernel)(rr, b)
    np.testing.assert_allclose(a, b, rtol=1e-13)

    c1, m1 = np.zeros(rr.size, np.int8), np.empty(rr.size)
    c2, m2 = np.zeros(rr.size, np.int8), np.empty(rr.size)
    args = (artifacts.ALPHA, artifacts.C1, artifacts.C2, 45, 5, artifacts.TH_FLOOR_MS, artifacts.TH_CAP)
    artifacts._detect_kernel(rr, *args, c1, m1)
    _py(artifacts._detect_kernel)(rr, *args, c2, m2)
    assert np.array_equal(c1, c2) and np.array_equal(m1, m2)

    sess = synth.generate_session(25.0, [("curl", 5)], seed=1, rest_s=(10, 12))
    outs = []
    for k in (reps._rep_kernel, _py(reps._rep_kernel)):
        rc = reps.RepCounter(25.0)
        o, amp, tail = np.empty(500, np.int64), np.empty(500), np.empty(500)
        m = k(np.ascontiguousarray(sess.acc_g), rc._sos, rc._zi, rc._cov, rc._v, rc._u, rc._lam, 1 / 25.0,
              rc._f, rc._i, *rc._params, o, amp, tail)
        outs.append((o[:m].copy(), amp[:m].copy()))
    assert np.array_equal(outs[0][0], outs[1][0])
    np.testing.assert_allclose(outs[0][1], outs[1][1], rtol=1e-9)
