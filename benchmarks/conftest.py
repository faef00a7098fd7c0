"""pytest-benchmark suite: every implementation of an op on a shape, one group per shape and op.

Each ``test_bench_<op>.py`` lists the implementations; this file parametrizes them over the
shapes: all of them when benchmarking is enabled
(``pytest benchmarks --benchmark-enable --benchmark-only``), only ``SMALL_SHAPES`` when it is
disabled (a plain ``pytest`` run calls each benchmark once as a test, so the suite cannot rot, and
the large shapes would make that run much longer: docs/performance.md gives the measured cost).
``BENCH_SHAPES=stem,vgg`` picks shapes by hand either way. Every call's result is checked against
torch's once; the runner checks every shape before it times it. col2im is parametrized over the 2-D shapes only.

The cases themselves come from :func:`im2col.bench.make_cases`, so the suite and the interleaved
runner (``python -m im2col.bench``) time exactly the same calls.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from benchmarks.shapes import SHAPES, SMALL_SHAPES
from im2col.bench import Cases, _as_list, make_cases, nd, torch_ref

_cache: dict[tuple[str, str], tuple[Cases, list[np.ndarray]]] = {}


def _shape_names(config: pytest.Config) -> list[str]:
    chosen = os.environ.get("BENCH_SHAPES")
    if chosen:
        names = [n.strip() for n in chosen.split(",") if n.strip()]
        unknown = [n for n in names if n not in SHAPES]
        if unknown:
            raise pytest.UsageError(f"BENCH_SHAPES: unknown {unknown}; choose from {list(SHAPES)}")
        return names
    disabled = config.getoption("benchmark_disable", False) or not config.pluginmanager.hasplugin("benchmark")
    return list(SMALL_SHAPES) if disabled else list(SHAPES)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "shape_name" in metafunc.fixturenames and "impl" in metafunc.fixturenames:
        impls, op = metafunc.module.IMPLS, metafunc.function.__name__.removeprefix("test_")
        names = [s for s in _shape_names(metafunc.config) if op in SHAPES[s].ops]
        # impl varies fastest, so consecutive tests share one set of inputs (see cases()).
        # On 1-D and 3-D shapes "torch conv2d" is torch conv1d / conv3d.
        params = [(s, nd(i, SHAPES[s].dims)) for s in names for i in impls]
        metafunc.parametrize(("shape_name", "impl"), params, ids=[f"{s}-{i.replace(' ', '_')}" for s, i in params])


def cases(op: str, shape_name: str) -> tuple[Cases, list[np.ndarray]]:
    """The cases of ``op`` on a shape and torch's result, kept for one (op, shape) at a time."""
    key = (op, shape_name)
    if key not in _cache:
        _cache.clear()  # the big shapes' inputs are hundreds of MB: hold one set only
        c = make_cases(op, SHAPES[shape_name])
        _cache[key] = (c, _as_list(c.fns[torch_ref(op, c.shape)]()))
    return _cache[key]


@pytest.fixture
def run_case(benchmark):
    """``run_case(op, shape_name, impl)``: benchmark one implementation, then check its result."""

    def run(op: str, shape_name: str, impl: str) -> None:
        c, expected = cases(op, shape_name)
        benchmark.group = f"{op} {shape_name} ({SHAPES[shape_name].label})"
        benchmark.extra_info.update(op=op, shape=shape_name, impl=impl, cols_bytes=SHAPES[shape_name].cols_bytes())
        result = benchmark(c.fns[impl])
        if impl not in c.checked:  # torch itself, and the floors (whose output means nothing)
            return
        got = _as_list(result)
        assert len(got) == len(expected)
        for a, e in zip(got, expected, strict=True):
            assert a.shape == e.shape, f"{impl} on {shape_name}: shape {a.shape} != torch's {e.shape}"
            if c.exact:
                np.testing.assert_array_equal(a, e, err_msg=f"{impl} on {shape_name}")
            else:
                scale = max(1.0, float(np.max(np.abs(e))))
                np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-4 * scale, err_msg=f"{impl} on {shape_name}")

    return run
