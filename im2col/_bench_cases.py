"""The benchmark's shapes and cases: what :mod:`im2col.bench` times, and the result checks.

Two sets of shapes:

* ``named`` (:data:`SHAPES`): ten shapes chosen to show one effect each (the blog post's example, the
  per-call overhead of a 5×5 image, ResNet and VGG layers, 1×1, batch 1, a 1-D and a 3-D layer).
  Ops: im2col, col2im, conv (forward) and backward, each with torch's counterpart, NumPy's and a
  hardware floor (a plain copy of the same bytes, or the GEMM alone) beside ours.
* ``realistic`` (:data:`im2col._layers.REALISTIC`): 23 layers from published architectures (CIFAR
  ResNet, ResNet-50, MobileNetV2, ResNeXt, DeepLab, Inception, 1-D, 3-D, DCGAN). Ops: forward
  (ours against ``torch.nn.functional``), backward (grad input + grad weight, through
  ``torch.autograd.grad`` on both sides: ours through :mod:`im2col.nn`'s registered operators) and
  train (that forward and backward together, on tensors that require grad).

A :class:`Cases` holds every implementation of one op on one shape as zero-argument callables, on
the same float32 inputs, and says which of them :func:`check` compares with torch's result.

>>> from im2col._bench_cases import SHAPES, set_shapes
>>> SHAPES["res56"].label
'8×64×56×56, 64 3×3 p1'
>>> len(set_shapes("realistic"))
23
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._geometry import out_sizes
from ._layers import REALISTIC, Layer

__all__ = [
    "Shape",
    "SHAPES",
    "OPS",
    "REALISTIC_OPS",
    "SETS",
    "SMALL_SHAPES",
    "GOALS",
    "SET_GOALS",
    "TORCH_REF",
    "OURS",
    "CASE_NAMES",
    "Cases",
    "make_cases",
    "make_layer_cases",
    "set_cases",
    "set_ops",
    "set_shapes",
    "set_tasks",
    "shape_ops",
    "check",
    "nd",
    "torch_ref",
]


# --- shapes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """A convolution layer: input (N, C, H, W), K kernels of kh × kw, one stride and padding.

    ``dims=1`` is an (N, C, W) layer with kw-wide kernels (H = kh = 1); ``dims=3`` an
    (N, C, D, H, W) layer with kd × kh × kw kernels. ``pad`` applies to each spatial axis.
    """

    name: str
    N: int
    C: int
    H: int
    W: int
    K: int
    kh: int
    kw: int
    stride: int = 1
    pad: int = 0
    note: str = ""
    dims: int = 2
    D: int = 1
    kd: int = 1

    @property
    def spatial(self) -> tuple[int, ...]:
        return (self.D, self.H, self.W)[3 - self.dims :]

    @property
    def kernel(self) -> tuple[int, ...]:
        return (self.kd, self.kh, self.kw)[3 - self.dims :]

    @property
    def out(self) -> tuple[int, ...]:
        """The output's spatial sizes (the library's formula; a benchmark shape has no dilation)."""
        one = (1,) * self.dims
        pads = ((self.pad, self.pad),) * self.dims
        return out_sizes(self.name, self.spatial, self.kernel, (self.stride,) * self.dims, pads, one)

    @property
    def ops(self) -> list[str]:
        """The ops timed on this shape: col2im on 2-D shapes only (torch has no fold beyond 2-D)."""
        return OPS if self.dims == 2 else [op for op in OPS if op != "col2im"]

    @property
    def L(self) -> int:
        return int(np.prod(self.out))

    @property
    def rows(self) -> int:
        return self.C * int(np.prod(self.kernel))

    def cols_bytes(self, itemsize: int = 4) -> int:
        """Size of the full column matrix (N, C·kh·kw, L)."""
        return self.N * self.rows * self.L * itemsize

    @property
    def flops(self) -> int:
        """Multiply-adds ×2 of the forward convolution."""
        return 2 * self.N * self.K * self.rows * self.L

    @property
    def label(self) -> str:
        s = "×".join(map(str, (self.N, self.C, *self.spatial)))
        s += f", {self.K} " + "×".join(map(str, self.kernel))
        if self.stride != 1:
            s += f" s{self.stride}"
        if self.pad:
            s += f" p{self.pad}"
        return s


SHAPES: dict[str, Shape] = {
    s.name: s
    for s in [
        Shape("seed", 64, 1, 28, 28, 4, 3, 3, note="the blog post's example"),
        Shape("teaching", 1, 1, 5, 5, 1, 3, 3, pad=2, note="per-call overhead"),
        Shape("stem", 8, 3, 224, 224, 64, 7, 7, stride=2, pad=3, note="ResNet-50 stem"),
        Shape("res56", 8, 64, 56, 56, 64, 3, 3, pad=1, note="ResNet 3×3"),
        Shape("res14", 8, 256, 14, 14, 256, 3, 3, pad=1, note="ResNet 3×3"),
        Shape("vgg", 4, 64, 112, 112, 128, 3, 3, pad=1, note="VGG"),
        Shape("pointwise", 8, 256, 56, 56, 64, 1, 1, note="1×1"),
        Shape("batch1", 1, 64, 56, 56, 64, 3, 3, pad=1, note="batch 1"),
        Shape("seq1d", 16, 64, 1, 1024, 64, 1, 5, pad=2, dims=1, note="1-D, conv1d"),
        Shape("vol3d", 2, 16, 16, 16, 32, 3, 3, pad=1, dims=3, D=16, kd=3, note="3-D, conv3d"),
    ]
}

#: Shapes small enough to run in well under a second per case (used by ``--quick`` for extra
#: rounds, and by the pytest suite when benchmarking is disabled).
SMALL_SHAPES = ["seed", "teaching", "res14", "batch1", "seq1d", "vol3d"]

OPS = ["im2col", "col2im", "conv2d", "backward"]

#: The ops timed on the realistic layers: the forward on arrays, the backward alone, and "train",
#: forward + backward through im2col.nn with autograd against torch's (a training step's share).
REALISTIC_OPS = ["forward", "backward", "train"]

#: Which case is "ours" in each op, and the goals of issue 4: (baseline, limit on ours/baseline,
#: shapes it applies to or None for all 2-D ones). "per call" goals limit ours' absolute time in µs.
OURS = "ours"
GOALS: dict[str, list[tuple[str, float, list[str] | None]]] = {
    "im2col": [
        ("torch unfold", 0.25, None),
        ("copy floor", 1.3, None),
        ("per call µs", 10.0, ["teaching"]),
    ],
    "col2im": [("torch fold", 0.25, None)],
    "conv2d": [
        ("torch conv2d", 1.0, ["seed", "teaching", "pointwise"]),
        ("torch conv2d", 1.25, ["stem", "res56", "res14", "vgg", "batch1"]),
        ("per call µs", 10.0, ["teaching"]),
    ],
    "backward": [("torch autograd", 1.5, ["res56", "res14"])],
}

#: The case each op's result is checked against, and the case whose memory is set beside ours
#: (on 1-D and 3-D shapes, "conv2d" reads conv1d / conv3d: see :func:`nd`).
TORCH_REF = {
    "im2col": "torch unfold",
    "col2im": "torch fold",
    "conv2d": "torch conv2d",
    "backward": "torch autograd",
}


#: The cases each op times, per set, in the order they are built (the order the seeded shuffle of
#: every round starts from): ours, torch's counterpart and, on the named set, NumPy's and a hardware
#: floor. :func:`make_cases` and :func:`make_layer_cases` build exactly these (on 1-D and 3-D
#: shapes "conv2d" reads conv1d / conv3d); :mod:`im2col.bench` counts them to guess a run's length.
CASE_NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "named": {
        "im2col": (OURS, "torch unfold", "numpy sliding_window_view", "copy floor"),
        "col2im": (OURS, "torch fold", "numpy slice-add", "copy floor"),
        "conv2d": (
            OURS,
            "torch conv2d",
            "torch unfold+matmul",
            "numpy swv+matmul",
            "GEMM floor torch.mm",
            "GEMM floor np.matmul",
        ),
        "backward": (OURS, "torch autograd", "2 GEMMs floor torch.mm"),
    },
    "realistic": {op: (OURS, "torch") for op in REALISTIC_OPS},
}


def nd(text: str, dims: int) -> str:
    """``text`` with "conv2d" made "conv1d" or "conv3d" for a shape of ``dims`` dimensions."""
    return text.replace("conv2d", f"conv{dims}d")


def torch_ref(op: str, s: Shape) -> str:
    """The name of the torch case ``op``'s results on ``s`` are checked against."""
    return nd(TORCH_REF[op], s.dims)


# --- cases ---------------------------------------------------------------------------------------


@dataclass
class Cases:
    """The implementations of one op on one shape: name → zero-argument callable.

    ``checked`` names the cases whose return value must equal the ``ref`` case's (torch's; floors
    return nothing meaningful); ``exact`` says the comparison is bitwise (im2col only moves data).
    ``ref`` defaults to ``torch_ref(op, shape)``.
    """

    op: str
    shape: Shape | Layer
    fns: dict[str, Callable[[], Any]]
    checked: list[str] = field(default_factory=list)
    exact: bool = False
    ref: str = ""

    def __post_init__(self) -> None:
        if not self.ref:
            self.ref = torch_ref(self.op, self.shape)  # type: ignore[arg-type]


def _np_im2col(x: np.ndarray, s: Shape) -> np.ndarray:
    """im2col with ``sliding_window_view``: pad, take a strided view, copy it into columns."""
    d, p, axes = s.dims, s.pad, tuple(range(2, 2 + s.dims))
    xp = np.pad(x, ((0, 0), (0, 0)) + ((p, p),) * d) if p else x
    v = np.lib.stride_tricks.sliding_window_view(xp, s.kernel, axis=axes)
    v = v[(slice(None),) * 2 + (slice(None, None, s.stride),) * d]  # (N, C, *out, *kernel)
    return v.transpose(0, 1, *(a + d for a in axes), *axes).reshape(s.N, s.rows, s.L)


def _torch_im2col(xt: Any, s: Shape) -> Any:
    """torch's im2col: ``F.unfold`` (1-D: on an (N, C, 1, L) view); 3-D, which ``F.unfold`` lacks:
    ``F.pad``, then ``Tensor.unfold`` along D, H and W, then a copy into (N, C·kd·kh·kw, L)."""
    import torch.nn.functional as F

    p, st = s.pad, s.stride
    if s.dims == 2:
        return F.unfold(xt, s.kernel, padding=p, stride=st)
    if s.dims == 1:
        return F.unfold(xt.unsqueeze(2), (1, s.kw), padding=(0, p), stride=st)
    v = F.pad(xt, (p,) * 6).unfold(2, s.kd, st).unfold(3, s.kh, st).unfold(4, s.kw, st)
    return v.permute(0, 1, 5, 6, 7, 2, 3, 4).reshape(s.N, s.rows, s.L)


def _np_col2im(cols: np.ndarray, s: Shape) -> np.ndarray:
    """col2im in NumPy: one strided slice-add per kernel tap into a padded image, then crop."""
    p, st = s.pad, s.stride
    oh, ow = s.out  # col2im is timed on 2-D shapes only
    out = np.zeros((s.N, s.C, s.H + 2 * p, s.W + 2 * p), cols.dtype)
    c6 = cols.reshape(s.N, s.C, s.kh, s.kw, oh, ow)
    for i in range(s.kh):
        for j in range(s.kw):
            out[:, :, i : i + st * oh : st, j : j + st * ow : st] += c6[:, :, i, j]
    return out[:, :, p : p + s.H, p : p + s.W]


def _named_cases(op: str, s: Shape, fns: dict[str, Callable[[], Any]], **kw: Any) -> Cases:
    """:class:`Cases` of ``op`` on a named shape, refusing a set of cases other than :data:`CASE_NAMES`'."""
    _check_names(fns, [nd(n, s.dims) for n in CASE_NAMES["named"][op]])
    return Cases(op, s, fns, **kw)


def _check_names(fns: dict[str, Any], expected: list[str]) -> None:
    if list(fns) != expected:  # a programming error: CASE_NAMES and the builders disagree
        raise RuntimeError(f"cases built {list(fns)}, but CASE_NAMES lists {expected}")


def make_cases(op: str, s: Shape, seed: int = 0) -> Cases:
    """Inputs for ``op`` on ``s`` (float32) and every implementation to compare on them."""
    import torch
    import torch.nn.functional as F

    import im2col

    rng = np.random.default_rng(seed)
    if op not in s.ops:
        raise ValueError(f"{op} is not timed on the {s.dims}-D shape {s.name}")
    x = rng.standard_normal((s.N, s.C, *s.spatial), dtype=np.float32)
    w = rng.standard_normal((s.K, s.C, *s.kernel), dtype=np.float32)
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    k, st, p = s.kernel, s.stride, s.pad
    conv, ref = getattr(F, nd("conv2d", s.dims)), torch_ref(op, s)
    fns: dict[str, Callable[[], Any]] = {}

    if op == "im2col":
        src = np.full(s.N * s.rows * s.L, 0.5, np.float32)
        dst = np.zeros_like(src)
        fns[OURS] = lambda: im2col.im2col(x, k, padding=p, stride=st)
        fns["torch unfold"] = lambda: _torch_im2col(xt, s)
        fns["numpy sliding_window_view"] = lambda: _np_im2col(x, s)
        fns["copy floor"] = lambda: np.copyto(dst, src)
        return _named_cases(op, s, fns, checked=[OURS, "numpy sliding_window_view"], exact=True)

    if op == "col2im":
        cols = rng.standard_normal((s.N, s.rows, s.L), dtype=np.float32)
        colst = torch.from_numpy(cols)
        dst = np.zeros_like(cols)
        fns[OURS] = lambda: im2col.col2im(cols, (s.H, s.W), k, padding=p, stride=st)
        fns["torch fold"] = lambda: F.fold(colst, (s.H, s.W), k, padding=p, stride=st)
        fns["numpy slice-add"] = lambda: _np_col2im(cols, s)
        fns["copy floor"] = lambda: np.copyto(dst, cols)
        return _named_cases(op, s, fns, checked=[OURS, "numpy slice-add"])

    w2, w2t = w.reshape(s.K, s.rows), wt.reshape(s.K, s.rows)
    b_np = np.full((s.rows, s.N * s.L), 0.5, np.float32)  # the GEMM floor's column operand
    b_t = torch.from_numpy(b_np)
    c_np = np.zeros((s.K, s.N * s.L), np.float32)
    c_t = torch.from_numpy(c_np)

    if op == "conv2d":
        ours = getattr(im2col, nd("conv2d", s.dims))
        fns[OURS] = lambda: ours(x, w, stride=st, padding=p)
        fns[ref] = lambda: conv(xt, wt, stride=st, padding=p)
        fns["torch unfold+matmul"] = lambda: (w2t @ _torch_im2col(xt, s)).view(s.N, s.K, *s.out)
        fns["numpy swv+matmul"] = lambda: (w2 @ _np_im2col(x, s)).reshape(s.N, s.K, *s.out)
        fns["GEMM floor torch.mm"] = lambda: torch.mm(w2t, b_t, out=c_t)
        fns["GEMM floor np.matmul"] = lambda: np.matmul(w2, b_np, out=c_np)
        return _named_cases(op, s, fns, checked=[OURS, "torch unfold+matmul", "numpy swv+matmul"])

    if op == "backward":
        gy = rng.standard_normal((s.N, s.K, *s.out), dtype=np.float32)
        gyt = torch.from_numpy(gy)
        xg = xt.clone().requires_grad_(True)
        wg = wt.clone().requires_grad_(True)
        with torch.enable_grad():
            y = conv(xg, wg, stride=st, padding=p)
        gcols_t, gw_t = torch.zeros((s.rows, s.N * s.L)), torch.zeros((s.K, s.rows))
        gy2 = torch.from_numpy(np.moveaxis(gy, 1, 0).reshape(s.K, s.N * s.L).copy())

        def torch_bw():
            return torch.autograd.grad(y, (xg, wg), gyt, retain_graph=True)

        def gemm_floor():
            torch.mm(w2t.T, gy2, out=gcols_t)  # grad of the columns: Wᵀ · dY
            torch.mm(gy2, b_t.T, out=gw_t)  # grad of the weight: dY · colsᵀ

        ours_bw = getattr(im2col, nd("conv2d_backward", s.dims))
        fns[OURS] = lambda: ours_bw(gy, x, w, stride=st, padding=p)[:2]
        fns["torch autograd"] = torch_bw
        fns["2 GEMMs floor torch.mm"] = gemm_floor
        return _named_cases(op, s, fns, checked=[OURS])

    raise ValueError(f"unknown op {op!r}; expected one of {', '.join(OPS)}")


def _as_list(v: Any) -> list[np.ndarray]:
    vs = v if isinstance(v, (tuple, list)) else [v]
    return [t.detach().numpy() if hasattr(t, "detach") else np.asarray(t) for t in vs]


def check(cases: Cases, results: dict[str, Any] | None = None) -> None:
    """Raise AssertionError unless every checked case equals torch's result (float32 tolerance).

    ``results`` holds return values already computed (the warm-up's), by case name.
    """
    results = results or {}
    get = lambda name: results[name] if name in results else cases.fns[name]()  # noqa: E731
    ref_name = cases.ref
    ref = _as_list(get(ref_name))
    for name in cases.checked:
        got = _as_list(get(name))
        assert len(got) == len(ref), f"{cases.op} {cases.shape.name} {name}: {len(got)} outputs"
        for a, e in zip(got, ref, strict=True):
            what = f"{cases.op} on {cases.shape.name}: {name} vs {ref_name}"
            assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
            if cases.exact:
                np.testing.assert_array_equal(a, e, err_msg=what)
            else:
                scale = max(1.0, float(np.max(np.abs(e)))) if e.size else 1.0
                np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-4 * scale, err_msg=what)


# --- the realistic set ---------------------------------------------------------------------------

#: Issue 10's goals over the realistic set, per op: (limit on the geomean of ours/torch, limit on
#: the worst shape's ratio). Reported in the markdown and the JSON, never asserted.
SET_GOALS: dict[str, tuple[float, float]] = {"forward": (0.85, 1.25), "backward": (0.85, 1.25), "train": (1.0, 1.5)}


def make_layer_cases(op: str, layer: Layer, seed: int = 0) -> Cases:
    """Ours and torch on one realistic layer: ``op`` is "forward", "backward" or "train".

    The forward calls ``layer.ours()`` on arrays and ``layer.torch()`` on tensors sharing their
    memory. The backward builds each side's forward once (ours through :mod:`im2col.nn`, whose
    operators carry their own autograd) and times ``torch.autograd.grad`` of it with respect to
    the input and the weight, so both sides run exactly the gradients a training step needs.
    "train" times the forward and that backward together, on tensors that require grad.
    """
    import torch

    if op not in REALISTIC_OPS:
        raise ValueError(f"op must be one of {', '.join(REALISTIC_OPS)} on a realistic layer, got {op!r}")
    x, w = layer.inputs(seed)
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    kw = layer.kwargs()
    ours, theirs = layer.ours(), layer.torch()
    if op == "forward":

        def torch_fwd() -> Any:
            with torch.no_grad():
                return theirs(xt, wt, **kw)

        fns = {OURS: lambda: ours(x, w, **kw), "torch": torch_fwd}
        _check_names(fns, list(CASE_NAMES["realistic"][op]))
        return Cases(op, layer, fns, checked=[OURS], ref="torch")

    import im2col.nn

    ours_nn = getattr(im2col.nn, layer.op_name)
    gy_shape = (layer.N, layer.K, *layer.out)
    gy = torch.from_numpy(np.random.default_rng(seed + 1).standard_normal(gy_shape, dtype=np.float32))

    def backward_of(fn: Callable[..., Any]) -> Callable[[], Any]:
        xg, wg = xt.clone().requires_grad_(True), wt.clone().requires_grad_(True)
        with torch.enable_grad():
            y = fn(xg, wg, **kw)
        return lambda: torch.autograd.grad(y, (xg, wg), gy, retain_graph=True)

    def train_of(fn: Callable[..., Any]) -> Callable[[], Any]:
        xg, wg = xt.clone().requires_grad_(True), wt.clone().requires_grad_(True)

        def step() -> Any:
            with torch.enable_grad():
                return torch.autograd.grad(fn(xg, wg, **kw), (xg, wg), gy)

        return step

    make = backward_of if op == "backward" else train_of
    fns = {OURS: make(ours_nn), "torch": make(theirs)}
    _check_names(fns, list(CASE_NAMES["realistic"][op]))
    return Cases(op, layer, fns, checked=[OURS], ref="torch")


# --- sets ----------------------------------------------------------------------------------------

#: The benchmark sets ``im2col bench --set`` takes.
SETS = ["named", "realistic"]


def _check_set(name: str) -> None:
    if name not in SETS:
        raise ValueError(f"set must be one of {', '.join(SETS)}, got {name!r}")


def set_shapes(name: str) -> dict[str, Shape | Layer]:
    """The shapes (named set) or layers (realistic set) of the benchmark set ``name``."""
    _check_set(name)
    return dict(SHAPES) if name == "named" else dict(REALISTIC)


def set_ops(name: str) -> list[str]:
    """The ops timed in the benchmark set ``name``."""
    _check_set(name)
    return list(OPS) if name == "named" else list(REALISTIC_OPS)


def shape_ops(set_name: str, shape: Shape | Layer) -> list[str]:
    """The ops of ``set_name`` timed on ``shape`` (col2im only on 2-D named shapes)."""
    return shape.ops if isinstance(shape, Shape) else set_ops(set_name)


def set_tasks(set_name: str, ops: list[str], shapes: list[str]) -> list[tuple[str, str]]:
    """The (op, shape name) pairs a run of ``set_name`` times: op by op, each on the shapes it runs on."""
    catalogue = set_shapes(set_name)
    return [(op, n) for op in ops for n in shapes if op in shape_ops(set_name, catalogue[n])]


def set_cases(set_name: str, op: str, shape: str, seed: int = 0) -> Cases:
    """The :class:`Cases` of ``op`` on the shape called ``shape`` in the benchmark set ``set_name``."""
    shapes = set_shapes(set_name)
    if shape not in shapes:
        raise ValueError(f"shape must be one of the {set_name} set's ({', '.join(shapes)}), got {shape!r}")
    s = shapes[shape]
    return make_cases(op, s, seed) if isinstance(s, Shape) else make_layer_cases(op, s, seed)
