"""Shared test helpers: the oracle comparison with its tolerance table, and Hypothesis profiles.

Every numeric test compares through :func:`assert_close`, whose tolerances live in one table
(``TOLERANCES``, by kind of computation and dtype).
Set ``HYPOTHESIS_PROFILE=long`` for the long fuzzing run (many more examples).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

from im2col import _plans

# The one tolerance table: every numeric comparison against torch, the NumPy reference or another
# oracle goes through :func:`assert_close`, which looks its tolerance up here by the kind of
# computation (``op``) and the dtype. Each entry is (rtol, atol, how atol scales); the check is
# NumPy's |actual - expected| <= atol·scale + rtol·|expected|. Bit-exact checks (im2col, layouts,
# inputs left unwritten) do not come here: they pass ``exact=True`` or use assert_array_equal.
#
# "sum" — each output is a sum of products (conv, col2im, gradients, fold, GEMM): float32 sums of a
#     few hundred products round differently in our GEMM and in oneDNN (observed ~1e-6 relative;
#     1e-5 leaves a margin), float64 rounds ~1e-16 per term, so 1e-11 is loose only by the terms'
#     count. atol is scaled by max|expected|, so a sum of many terms is judged against its scale.
# "inner" — ⟨col2im(Y), X⟩ against ⟨Y, im2col(X)⟩ on fuzzed geometries: one scalar summing every
#     element, which can cancel to ~0, hence an absolute part scaled by √(number of terms) (the size
#     of the rounding in a sum of n unit-variance products). Half of the former pytest.approx
#     values (rel 1e-4 / 1e-11, abs the same times √n, combined by max): the sum of the two halves
#     is never looser than their max.
# "inner-fixed" — the same identity on fixed seeds and shapes (tests/test_nd.py) where no
#     cancellation happens: relative only, 1e-12 in float64.
# "mean" — col2im(reduce='mean') of im2col: each element is the same value added c times and
#     divided by c, one or two roundings; float64 only, absolute 1e-13 (values are N(0, 1)).
# "curve" — a training run's losses against torch's over many steps (tests/test_nn.py): errors
#     compound step by step, so 1e-4 in float32 and 1e-9 in float64, absolute (losses are O(1)).
_SCALE_MAX, _SCALE_SQRT_SIZE, _SCALE_ONE = "max|expected|", "sqrt(size)", "1"
_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
TOLERANCES = {
    ("sum", _F32): (1e-5, 1e-5, _SCALE_MAX),
    ("sum", _F64): (1e-11, 1e-11, _SCALE_MAX),
    ("inner", _F32): (5e-5, 5e-5, _SCALE_SQRT_SIZE),
    ("inner", _F64): (5e-12, 5e-12, _SCALE_SQRT_SIZE),
    ("inner-fixed", _F64): (1e-12, 0.0, _SCALE_ONE),
    ("mean", _F64): (1e-13, 1e-13, _SCALE_ONE),
    ("curve", _F32): (0.0, 1e-4, _SCALE_ONE),
    ("curve", _F64): (0.0, 1e-9, _SCALE_ONE),
}

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile("long", max_examples=5000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def to_numpy(a):
    """An ndarray of a tensor's or array's values (detached)."""
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def assert_close(
    actual, expected, *, op: str = "sum", dtype=None, exact: bool = False, size: int | None = None, what: str = ""
) -> None:
    """Check value, shape and dtype of ``actual`` against ``expected`` (arrays, tensors or scalars).

    The tolerance is ``TOLERANCES[op, dtype]`` (``dtype`` defaults to expected's). ``exact`` asks
    for bit equality instead (im2col only moves data, so it must be exact). ``size`` is the number
    of terms for the "inner" tolerances (whose atol scales with its square root).
    """
    a, e = to_numpy(actual), to_numpy(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != expected {e.shape}"
    assert a.dtype == e.dtype, f"{what}: dtype {a.dtype} != expected {e.dtype}"
    if exact:
        np.testing.assert_array_equal(a, e, err_msg=what)
        return
    rtol, atol, scale_by = TOLERANCES[op, np.dtype(dtype or e.dtype)]
    if scale_by == _SCALE_MAX:
        scale = max(float(np.max(np.abs(e))) if e.size and np.isfinite(e).all() else 1.0, 1.0)
    elif scale_by == _SCALE_SQRT_SIZE:
        assert size is not None, f"{what}: op={op!r} needs size="
        scale = float(np.sqrt(size))
    else:
        scale = 1.0
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol * scale, err_msg=what)


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
