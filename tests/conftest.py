"""Shared test helpers: the oracle comparison with its per-dtype tolerance table, and Hypothesis profiles.

Every numeric test compares through :func:`assert_close`, so tolerances live in one place.
Set ``HYPOTHESIS_PROFILE=long`` for the long fuzzing run (many more examples).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from im2col import _plans

# rtol and atol (atol scaled by the largest |expected|, so a sum of many terms is judged relative to
# its scale): float32 sums of a few hundred products round differently in a GEMM and in oneDNN.
TOLERANCE = {
    np.dtype(np.float32): (1e-5, 1e-5),
    np.dtype(np.float64): (1e-11, 1e-11),
}

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile("long", max_examples=5000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def to_numpy(a):
    """An ndarray of a tensor's or array's values (detached)."""
    if isinstance(a, np.ndarray):
        return a
    return a.detach().cpu().numpy()


def assert_close(actual, expected, *, dtype=None, exact: bool = False, what: str = "") -> None:
    """Check value, shape and dtype of ``actual`` against ``expected`` (arrays or tensors).

    ``exact`` asks for bit equality (im2col only moves data, so it must be exact).
    """
    a, e = to_numpy(actual), to_numpy(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != expected {e.shape}"
    assert a.dtype == e.dtype, f"{what}: dtype {a.dtype} != expected {e.dtype}"
    if exact:
        np.testing.assert_array_equal(a, e, err_msg=what)
        return
    rtol, atol = TOLERANCE[np.dtype(dtype or e.dtype)]
    scale = float(np.max(np.abs(e))) if e.size and np.isfinite(e).all() else 1.0
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol * max(scale, 1.0), err_msg=what)


#: Memory layouts every op must read correctly (and never write): see :func:`array_layout`.
ARRAY_LAYOUTS = ["C", "F", "strided", "reversed", "readonly", "byteswapped"]


def array_layout(x: np.ndarray, kind: str) -> np.ndarray:
    """The same values as ``x`` in another memory layout.

    'F' Fortran order; 'strided' a view with a gap after every element of the last axis; 'reversed'
    a view with negative strides on the last axis; 'readonly' a non-writable copy; 'byteswapped'
    the non-native byte order; 'C' ``x`` itself.
    """
    if kind == "F":
        return np.asfortranarray(x)
    if kind == "strided":
        big = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), x.dtype)
        big[..., ::2] = x
        return big[..., ::2]
    if kind == "reversed":
        return np.ascontiguousarray(x[..., ::-1])[..., ::-1]
    if kind == "readonly":
        x = x.copy()
        x.flags.writeable = False
        return x
    if kind == "byteswapped":
        return x.astype(x.dtype.newbyteorder("S"))
    assert kind == "C", kind
    return x


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _fresh_plans():
    """Start each test with no kept call plans (im2col/_plans.py): a test that patches the kernels
    or the BLAS then sees its own first call run the full path, whatever ran before it."""
    _plans.clear()
