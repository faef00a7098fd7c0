"""explain(), kernels and data: hand-computed teaching cases, the sparse-matrix view, text and HTML."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pytest
from conftest import assert_close

import im2col
from im2col import data, kernels, reference
from im2col.explain import Explanation, Source

VOID = {"br", "hr", "img", "input", "meta", "link"}


class _Checker(HTMLParser):
    """Fails on a closing tag that does not match the open one; counts tags and classes."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: dict[str, int] = {}
        self.classes: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self.classes += [v for k, v in attrs if k == "class" and v]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()


def full_padding() -> Explanation:
    return im2col.explain((1, 1, 5, 5), 3, padding=2)


# --- the blog post's hand-computed cases ---------------------------------------------------------------


def test_full_padding_5x5_gives_7x7():
    e = full_padding()
    assert e.output_size_steps() == ["height and width: (5 + 2·2 − 3) // 1 + 1 = 7"]
    assert (e.OH, e.OW, e.L, e.rows) == (7, 7, 49, 9)
    assert e.columns.shape == (1, 9, 49)
    assert e.output.shape == (1, 1, 7, 7)
    assert e.demo_input and e.demo_weight
    np.testing.assert_array_equal(e.input.ravel(), np.arange(1, 26))
    np.testing.assert_array_equal(e.weight.ravel(), np.arange(1, 10))


def test_corner_cells_are_padding():
    e = full_padding()
    # Output (0, 0)'s window covers padded rows/cols 0..2: only its bottom-right tap is inside.
    rf = e.receptive_field(0, 0)
    assert [s.padding for s in rf] == [True] * 8 + [False]
    assert rf[8] == Source(0, 0, 0, False)
    assert rf[0] == Source(0, -2, -2, True)
    # Same at the other corners.
    assert [s.padding for s in e.receptive_field(6, 6)] == [False] + [True] * 8
    assert e.receptive_field(6, 6)[0] == Source(0, 4, 4, False)
    assert sum(not s.padding for s in e.receptive_field(0, 6)) == 1
    assert sum(not s.padding for s in e.receptive_field(3, 3)) == 9
    # The padding mask agrees with source() everywhere, and padded cells hold zeros.
    for r in range(e.rows):
        for c in range(e.L):
            assert e.padding_mask[r, c] == e.source(r, c).padding
    assert (e.columns[0][e.padding_mask] == 0).all()
    assert int(e.padding_mask.sum()) == 9 * 49 - 225


def test_specific_cell_sources():
    e = full_padding()
    assert e.row_label(4) == (0, 1, 1) and e.column_label(24) == (3, 3)
    assert e.source(4, 24) == Source(0, 2, 2, False)  # centre tap, centre output: pixel (2, 2), value 13
    assert e.columns[0, 4, 24] == 13
    # Row (0,0,0) at output (2, 3): h = 2 − 2 + 0 = 0, w = 3 − 2 + 0 = 1 → pixel value 2.
    assert e.source(0, 2 * 7 + 3) == Source(0, 0, 1, False)
    assert e.columns[0, 0, 17] == 2
    assert str(e.source(0, 0)) == "padding at (0, -2, -2)"
    assert str(e.source(8, 0)) == "input pixel (0, 0, 0)"
    # Every non-padding cell holds the value of the pixel it names.
    for r in range(e.rows):
        for c in range(e.L):
            s = e.source(r, c)
            if not s.padding:
                assert e.columns[0, r, c] == e.input[0, s.c, s.h, s.w]


def test_seed_batch():
    xb = data.digit_batch()
    e = im2col.explain(xb, kernels.edge_kernels())
    assert e.output_size_steps() == ["height and width: (28 + 2·0 − 3) // 1 + 1 = 26"]
    assert e.columns_shape == (64, 9, 676) and e.columns.shape == (64, 9, 676)
    assert e.output.shape == (64, 4, 26, 26)
    assert e.gemm_lines()[0] == "per image: (4 × 9) @ (9 × 676) → (4 × 676) → (4, 26, 26)"
    assert "(4 × 9) @ (9 × 64·676 = 43264) → (4 × 43264) → (64, 4, 26, 26)" in "\n".join(e.gemm_lines())
    assert e.flops == 2 * 64 * 4 * 9 * 676
    assert not e.demo_input and not e.demo_weight
    assert_close(e.output, im2col.conv2d(xb, kernels.edge_kernels()))


def test_dilation_and_stride_steps():
    e = im2col.explain((1, 1, 28, 28), 3, stride=2, dilation=2)
    assert e.output_size_steps() == [
        "height and width: effective kernel = d·(k − 1) + 1 = 2·(3 − 1) + 1 = 5",
        "height and width: (28 + 2·0 − 5) // 2 + 1 = 12",
        "height and width: 23 = 28 + 2·0 − 2·(3 − 1) − 1 is how far the window can travel;",
        "  23 % 2 = 1 pixel is left over and never read",
    ]
    e = im2col.explain((3, 9, 11), (3, 2), padding=((1, 0), (2, 1)), stride=(2, 1))
    assert e.output_size_steps()[0] == "height: (9 + 1 + 0 − 3) // 2 + 1 = 4"
    assert e.output_size_steps()[-1] == "width: (11 + 2 + 1 − 2) // 1 + 1 = 13"


@pytest.mark.parametrize(
    "shape, k, kwargs",
    [
        ((1, 1, 5, 5), 3, dict(padding=2)),
        ((1, 1, 28, 28), 3, dict(stride=2, dilation=2)),
        ((3, 9, 11), (3, 2), dict(padding=((1, 0), (2, 1)), stride=(2, 1))),
        ((1, 2, 7, 9), (2, 4), dict(padding="same", dilation=(3, 1))),
        ((1, 1, 6, 13), (3, 5), dict(stride=(3, 4), dilation=(2, 2), padding=(1, 0))),
        ((1, 1, 9), (4,), dict(stride=3, padding="full")),
        ((1, 1, 5, 6, 7), (2, 3, 3), dict(stride=(1, 2, 3), padding=1)),
        ((1, 1, 5, 5), 3, dict(stride=2, padding=1, transposed=True)),
    ],
)
def test_printed_output_size_is_the_libraries(shape, k, kwargs):
    # each step line, read back as arithmetic, holds, and ends in what _geometry computes
    from im2col import _geometry

    e = im2col.explain(shape, k, **kwargs)
    if e.transposed:
        want = _geometry.transposed_size("t", e.size, e.kernel_size, e.stride, e.padding[0][0],
                                         e.output_padding, e.dilation)[4]  # fmt: skip
    else:
        want = _geometry.out_sizes("t", e.size, e.kernel_size, e.stride, e.padding, e.dilation)
    got = {}
    for line in e.output_size_steps():
        if line.startswith(" ") or "travel" in line:
            continue
        axes, step = line.split(": ", 1)
        left, result = step.rsplit(" = ", 1)
        formula = left.split(" = ")[-1].replace("·", "*").replace("−", "-")
        assert eval(formula) == int(result), line  # the step is right
        if "effective kernel" not in line:
            got[axes] = int(result)
    for name, o in zip(_geometry.AXES[e.ndim], want):
        assert next(v for axes, v in got.items() if name in axes) == o, name


@pytest.mark.parametrize(
    "padding",
    [0, 2, (1, 2), ((1, 0), (2, 3)), "valid", "same", -1, (1,), "fuller", ((1, 0), (2,)), 1.5, ((1, -1), (0, 0))],
)
def test_padding_is_parsed_by_the_core_parser(padding):
    # explain() takes what the convolutions take, with the same numbers and messages ('full' is its own)
    from im2col import _geometry
    from im2col._explain_args import parse_padding

    k, d, s = (3, 2), (1, 2), (1, 1)
    try:
        want = _geometry.parse_padding(padding, "explain", 2, k, d, s)
    except (TypeError, ValueError) as core_err:
        err = core_err
        if padding == "fuller":  # explain lists its own word in the message
            err = ValueError("explain(): argument 'padding' must be an int, a tuple, 'valid', 'same' or 'full', got "
                             "'fuller'")  # fmt: skip
        with pytest.raises(type(err)) as got:
            parse_padding(padding, 2, k, d, s)
        assert str(got.value) == str(err)
        return
    assert parse_padding(padding, 2, k, d, s)[0] == want


CONFIGS = [
    dict(shape=(1, 1, 5, 5), k=3, padding=2),
    dict(shape=(2, 3, 7, 6), k=(3, 2), stride=(2, 1), padding=((1, 0), (2, 1)), dilation=(1, 2)),
    dict(shape=(2, 4, 6, 6), k=3, padding=1, groups=2, K=4),
    dict(shape=(1, 2, 8, 5), k=1, stride=2),
    dict(shape=(1, 1, 4, 4), k=3, padding="same"),
]


def _make(cfg, rng):
    x = rng.standard_normal(cfg["shape"]).astype(np.float64)
    g = cfg.get("groups", 1)
    kh, kw = (cfg["k"], cfg["k"]) if isinstance(cfg["k"], int) else cfg["k"]
    w = rng.standard_normal((cfg.get("K", 3), cfg["shape"][1] // g, kh, kw))
    kw_args = {k: cfg[k] for k in ("stride", "padding", "dilation", "groups") if k in cfg}
    return x, w, kw_args, im2col.explain(x, w, **kw_args)


@pytest.mark.parametrize("cfg", CONFIGS, ids=range(len(CONFIGS)))
def test_columns_match_reference_and_output_matches_conv2d(cfg, rng):
    x, w, kw, e = _make(cfg, rng)
    assert_close(e.columns, reference.im2col(x, (e.kh, e.kw), e.dilation, e.padding, e.stride), exact=True)
    assert_close(e.output, im2col.conv2d(x, w, **kw))


@pytest.mark.parametrize("cfg", CONFIGS, ids=range(len(CONFIGS)))
def test_sparse_matrix_view_equals_im2col_view(cfg, rng):
    x, w, kw, e = _make(cfg, rng)
    C = e.conv_matrix()
    assert C.shape == e.conv_matrix_shape == (e.K * e.L, e.C * e.H * e.W)
    assert int((C != 0).sum()) <= e.conv_matrix_nnz
    for n in range(e.N):
        # conv = C @ x.ravel(): the same numbers as weight matrix @ columns.
        assert_close(C @ x[n].ravel(), e.output[n].ravel())
    # transposed conv = Cᵀ @ y.ravel(): the input gradient, i.e. col2im of Wᵀ·y.
    gy = rng.standard_normal(e.output_shape)
    gx = im2col.conv2d_backward(gy, x, w, **kw)[0]
    for n in range(e.N):
        assert_close(C.T @ gy[n].ravel(), gx[n].ravel())


def test_sparse_matrix_view_transposed_conv_matches_conv_transpose2d(rng):
    e = im2col.explain(rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3)), stride=2, padding=1)
    y = rng.standard_normal((3, e.OH, e.OW))
    ct = im2col.conv_transpose2d(y[None], e.weight, stride=2, padding=1)
    assert ct.shape == (1, 2, 5, 5)
    assert_close(e.conv_matrix().T @ y.ravel(), ct.ravel())


def test_sparse_matrix_view_example_matrix():
    e = im2col.explain((1, 1, 3, 3), 2)
    np.testing.assert_array_equal(
        e.conv_matrix(),
        [[1, 2, 0, 3, 4, 0, 0, 0, 0], [0, 1, 2, 0, 3, 4, 0, 0, 0],
         [0, 0, 0, 1, 2, 0, 3, 4, 0], [0, 0, 0, 0, 1, 2, 0, 3, 4]],
    )  # fmt: skip


def test_tensor_input_and_weight_shapes():
    torch = pytest.importorskip("torch")
    x = torch.arange(25.0).reshape(1, 1, 5, 5)
    e = im2col.explain(x, torch.from_numpy(kernels.edge_kernels()), padding=1)
    assert isinstance(e.columns, np.ndarray) and e.output.shape == (1, 4, 5, 5)
    ref = torch.nn.functional.conv2d(x, torch.from_numpy(kernels.edge_kernels()), padding=1)
    assert_close(e.output, ref.numpy())
    # (H, W) input, (K, kh, kw) stack, (kh, kw) single kernel
    assert im2col.explain(np.zeros((6, 6)), np.stack([kernels.top_edge, kernels.left_edge])).output_shape == (
        1,
        2,
        4,
        4,
    )
    assert im2col.explain(np.zeros((6, 6)), kernels.sobel_x).output_shape == (1, 1, 4, 4)
    assert im2col.explain((2, 5, 5), (3, 1)).output_shape == (1, 1, 3, 5)


@pytest.mark.parametrize(
    "args, kwargs, exc, match",
    [
        (((1, 1, 2, 2), 3), {}, ValueError, r"explain\(\): output height = \(2 \+ 0 \+ 0"),
        (((1, 1, 5), 3), {}, ValueError, None),
        (((1, 1, 5, 5, 5, 5), 3), {}, ValueError, r"'input_or_shape'"),
        ((np.zeros((2, 2, 2, 2, 2, 2)), 3), {}, ValueError, r"'input_or_shape' must be 2-D"),
        ((np.zeros((2, 2, 2, 2, 2)), 3), {}, ValueError, r"output depth = \(2 \+ 0 \+ 0"),
        (((1, 1, 5), (3, 3, 3)), {}, ValueError, r"three-element kernel size needs a 5-D input"),
        (((1, 1, 5), (3,)), {"output_padding": 1}, ValueError, r"'output_padding' needs transposed"),
        (
            ((1, 1, 5, 5), 3),
            {"transposed": True, "padding": "same"},
            ValueError,
            r"with transposed=True 'padding' must be an int",
        ),
        (((1, 1, 5, 5), 3), {"padding": "same", "stride": 2}, ValueError, r"padding='same' needs stride=1"),
        (("abc", 3), {}, TypeError, r"'input_or_shape'"),
        (((1, 1, 5, 5), 0), {}, ValueError, r"'weight_or_kernel_size' must be positive"),
        (((1, 1, 5, 5), "3"), {}, TypeError, r"'weight_or_kernel_size'"),
        (
            ((1, 2, 5, 5), np.zeros((1, 3, 3, 3))),
            {},
            ValueError,
            r"expects 3 input channels, but the input has 2",
        ),
        (((1, 4, 5, 5), 3), {"groups": 3}, ValueError, r"not divisible by groups=3"),
        (((1, 1, 5, 5), 3), {"groups": 0}, ValueError, r"'groups' must be a positive int"),
        (((1, 1, 5, 5), 3), {"stride": 0}, ValueError, r"'stride' must be positive"),
        (
            ((1, 1, 5, 5), 3),
            {"padding": "fuller"},
            ValueError,
            r"'padding' must be an int, a tuple, 'valid', 'same' or 'full', got 'fuller'",
        ),
    ],
)
def test_errors_name_the_argument(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        im2col.explain(*args, **kwargs)


def test_index_errors():
    e = full_padding()
    with pytest.raises(IndexError, match=r"'row' must be in 0..8, got 9"):
        e.source(9, 0)
    with pytest.raises(IndexError, match=r"'ow' must be in 0..6, got 7"):
        e.receptive_field(0, 7)
    with pytest.raises(TypeError, match=r"'col' must be an int"):
        e.source(0, 1.5)


def test_conv_matrix_refuses_huge():
    e = im2col.explain((1, 64, 56, 56), 3, padding=1)
    with pytest.raises(ValueError, match="dense conv matrix C would be"):
        e.conv_matrix()


# --- text and HTML ----------------------------------------------------------------------------


def test_text_fits_terminal_and_marks_padding():
    for e in [
        full_padding(),
        im2col.explain(data.digit_batch(8), kernels.edge_kernels()),
        im2col.explain(
            (2, 4, 9, 11),
            (3, 2),
            padding=((1, 0), (2, 1)),
            stride=(2, 1),
            dilation=(1, 2),
            groups=2,
        ),
        im2col.explain((1, 16, 40, 40), 5, padding=2),
    ]:
        for text in (
            str(e),
            e.to_text(conv_matrix=e.conv_matrix_shape[0] * e.conv_matrix_shape[1] < 1e7),
        ):
            width = max(len(line) for line in text.splitlines())
            assert width <= 100, max(text.splitlines(), key=len)
    text = str(full_padding())
    assert "(5 + 2·2 − 3) // 1 + 1 = 7" in text
    assert "(1 × 9) @ (9 × 49) → (1 × 49) → (1, 7, 7)" in text
    # The first matrix row: 7 padding cells for output row 0, then the first value.
    row0 = next(line for line in text.splitlines() if line.strip().startswith("0,0,0 │"))
    assert row0.split("│")[1].split()[:7] == ["·"] * 7
    # Large matrices are elided, not printed in full.
    big = str(im2col.explain((1, 16, 40, 40), 5, padding=2))
    assert "…" in big and "⋮" in big and len(big.splitlines()) < 140


def test_cost_numbers():
    e = im2col.explain(data.digit_batch(), kernels.edge_kernels())
    cost = "\n".join(e.cost_lines())
    assert "(64, 9, 676) = 389,376 values, 1.5 MiB" in cost
    assert "(64, 1, 28, 28) = 50,176 values, 196.0 KiB" in cost
    assert "7.76×" in cost and "3·3 / 1·1 = 9.00" in cost


class _Srcdoc(HTMLParser):
    """The tags of a page and the (unescaped) srcdoc of its iframes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.srcdocs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.srcdocs += [v for k, v in attrs if k == "srcdoc"]


def test_repr_html_is_the_explorer_isolated_in_an_iframe(monkeypatch):
    from im2col import explorer

    for e in (
        im2col.explain((1, 1, 5, 5), 3, padding=2, highlight=(0, 0)),
        im2col.explain(data.digit_batch(), kernels.edge_kernels()),  # the blog post's: what the notebook shows
        im2col.explain((1, 2, 6, 7), (3, 2), stride=2, padding="full", groups=2),
    ):
        shown = e._repr_html_()
        p = _Srcdoc()
        p.feed(shown)
        p.close()
        # One iframe and nothing else: the page's <style> and <script> exist only inside srcdoc,
        # escaped, so the notebook neither styles nor runs them.
        assert p.tags == ["iframe"] and len(p.srcdocs) == 1
        assert "<script" not in shown and "<style" not in shown
        assert p.srcdocs[0] == e.explorer_html()
        assert 'sandbox="allow-scripts"' in shown
    # What the explorer cannot draw falls back to the static tables (or text).
    for e in (
        im2col.explain((1, 16, 40, 40), 5, padding=2),  # 640,000 matrix cells: over MAX_CELLS
        im2col.explain((1, 2, 10), (3,), stride=2),
        im2col.explain((1, 1, 4, 5, 6), (2, 3, 3)),
        im2col.explain((1, 1, 5, 5), 3, transposed=True),
    ):
        assert e._repr_html_() == e.to_html()
    # The limit is the explorer's own, inclusive.
    e = im2col.explain((1, 1, 5, 5), 3, padding=1)
    total = sum(explorer.drawn_cells(e).values())
    monkeypatch.setattr(explorer, "MAX_CELLS", total)
    assert e._repr_html_().startswith('<iframe srcdoc="')
    monkeypatch.setattr(explorer, "MAX_CELLS", total - 1)
    assert e._repr_html_() == e.to_html()


def test_html_is_well_formed_and_highlights():
    e = im2col.explain((1, 1, 5, 5), 3, padding=2, highlight=(0, 0))
    html = e.to_html(max_cols=100)  # nothing elided
    p = _Checker()
    p.feed(html)
    p.close()
    assert p.stack == []
    assert p.tags["table"] == 3 and p.tags["style"] == 1  # padded input, unrolled matrix, weights
    # Padded input (9×9, 56 padding cells) and unrolled matrix (9·49 − 225 = 216 padding cells).
    assert p.classes.count("pad") + p.classes.count("pad rf hi") + p.classes.count("pad hi") == 56 + 216
    # Output (0, 0)'s receptive field: 8 padding cells and the corner pixel, outlined.
    assert p.classes.count("pad rf hi") == 8 and p.classes.count("rf hi") == 1
    # Its column in the unrolled matrix: header + 9 cells, 8 of them padding.
    assert p.classes.count("pad hi") == 8 and p.classes.count("hi") == 1 + 1
    h2 = e.to_html(highlight=(3, 3))
    assert "column (3, 3) highlighted" in h2
    with pytest.raises(IndexError):
        e.to_html(highlight=(7, 0))
    # A large one stays well-formed and small, and keeps the highlighted column in view.
    big = im2col.explain((1, 16, 40, 40), 5, padding=2).to_html(highlight=(20, 30))
    q = _Checker()
    q.feed(big)
    assert q.stack == [] and len(big) < 100_000 and ">20,30<" in big
    assert q.classes.count("rf hi") == 25


# --- kernels and data -------------------------------------------------------------------------


def test_edge_kernels_as_in_the_seed():
    w = kernels.edge_kernels()
    assert w.shape == (4, 1, 3, 3) and w.dtype == np.float32
    np.testing.assert_array_equal(w[1, 0], [[-1, -1, -1], [0, 0, 0], [1, 1, 1]])
    np.testing.assert_array_equal(w[0, 0], [[-1, 1, 0], [-1, 1, 0], [-1, 1, 0]])
    np.testing.assert_array_equal(w[2, 0], [[0, -1, 1], [-1, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(w[3, 0], [[1, -1, 0], [0, 1, -1], [0, 0, 1]])
    w[:] = 0  # a fresh array: the module's kernels are untouched
    assert kernels.top_edge[0, 0] == -1
    k = kernels.top_edge  # a fresh writable copy each time: writing it changes nobody else's
    k[0, 0] = 5
    assert kernels.top_edge[0, 0] == -1 and kernels.top_edge is not kernels.top_edge


def test_classic_kernels():
    img = data.digit_three()[None, None]
    ident = im2col.conv2d(img, kernels.identity[None, None], padding=1)
    np.testing.assert_array_equal(ident, img)
    assert kernels.blur.sum() == pytest.approx(1) and kernels.box_blur.sum() == pytest.approx(1)
    np.testing.assert_array_equal(kernels.sobel_y, kernels.sobel_x.T)
    assert set(kernels.all_kernels()) >= {"sobel_x", "sharpen", "identity", *kernels.EDGE_NAMES}


def test_digits_are_deterministic_and_look_like_ink():
    three = data.digit_three()
    assert three.shape == (28, 28) and three.dtype == np.float32
    assert three.max() == 1 and three.min() == 0
    assert 0.1 < (three > 0.5).mean() < 0.3  # a stroke, not a blob
    assert (three[:3] == 0).all() and (three[:, :3] == 0).all()  # a dark margin, as in MNIST
    xb = data.digit_batch()
    assert xb.shape == (64, 1, 28, 28)
    np.testing.assert_array_equal(xb, data.digit_batch())
    assert not np.array_equal(xb[0], xb[1])
    assert not np.array_equal(xb, data.digit_batch(seed=1))
    assert data.digit_batch(2, size=14).shape == (2, 1, 14, 14)
    with pytest.raises(ValueError, match="'n'"):
        data.digit_batch(-1)
    with pytest.raises(ValueError, match="'size'"):
        data.digit_three(4)


# --- issue 13: 1-D, 3-D, transposed, backward, and the pedagogy -------------------------------

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a)).double().requires_grad_(True)


ND_CASES = [
    # (input shape, weight shape, kwargs, torch conv)
    ((2, 4, 11), (6, 2, 3), dict(stride=2, padding=1, dilation=2, groups=2), "conv1d"),
    ((1, 2, 9), (3, 2, 4), dict(padding="same"), "conv1d"),
    ((2, 2, 5, 6, 7), (4, 2, 2, 3, 3), dict(stride=(1, 2, 2), padding=1), "conv3d"),
    ((1, 4, 4, 5, 5), (2, 2, 3, 1, 3), dict(padding=((1, 1), (0, 0), (2, 1)), groups=2), "conv3d"),
    ((2, 3, 7, 8), (4, 3, 3, 2), dict(stride=2, padding=(1, 0), dilation=(1, 2)), "conv2d"),
]


@pytest.mark.parametrize("xs, ws, kw, op", ND_CASES)
def test_nd_columns_output_and_backward_match_torch(xs, ws, kw, op, rng):
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    e = im2col.explain(x, w, **kw)
    tx, tw = _t(x), _t(w)
    pad = kw.get("padding", 0)
    if not isinstance(pad, (int, str)) and isinstance(pad[0], tuple):  # per side: pad by hand
        flat = [v for pair in reversed(pad) for v in pair]
        y = getattr(F, op)(F.pad(tx, flat), tw, stride=kw.get("stride", 1), groups=kw.get("groups", 1))
    else:
        y = getattr(F, op)(tx, tw, **kw)
    assert e.output.shape == tuple(y.shape)
    assert_close(e.output, y.detach().numpy())
    # The columns are torch's unfold layout: the output is W @ columns, per group.
    assert e.columns.shape == (xs[0], e.rows, e.L)
    gy = rng.standard_normal(e.output_shape)
    y.backward(torch.from_numpy(gy))
    b = e.backward(gy)
    assert_close(b.grad_input, tx.grad.numpy())
    assert_close(b.grad_weight, tw.grad.numpy())
    # source() agrees with the padding mask and with the column values everywhere.
    for r in range(e.rows):
        for c in range(e.L):
            s = e.source(r, c)
            assert s.padding == e.padding_mask[r, c]
            want = 0.0 if s.padding else x[(0, s.c, *s.index)]
            assert e.columns[0, r, c] == want


def test_1d_and_3d_layout_text():
    e = im2col.explain((1, 2, 10), (3,), stride=2, highlight=(1,))
    assert (e.ndim, e.rows, e.L, e.out_size) == (1, 6, 4, (4,))
    assert e.row_label(4) == (1, 1) and e.column_label(3) == (3,)
    assert e.source(4, 1) == im2col.explain((1, 2, 10), (3,), stride=2).source(4, 1)
    assert e.source(4, 1) == (1, 3, False) and e.source(4, 1).l == 3
    assert [s.l for s in e.receptive_field(1)] == [2, 3, 4, 2, 3, 4]
    text = str(e)
    assert "row = c·k + i, column = ol" in text
    assert "length: (10 + 2·0 − 3) // 2 + 1 = 4" in text
    assert "length: 7 = 10 + 2·0 − 1·(3 − 1) − 1 is how far the window can travel;" in text
    assert "  7 % 2 = 1 pixel is left over and never read" in text
    assert "     1  2  3  4  5  6  7  8  9 10" in text  # the signal, no padding
    e3 = im2col.explain((1, 1, 4, 5, 6), (2, 3, 3), highlight=(1, 2, 3))
    assert (e3.rows, e3.L, e3.out_size) == (18, 36, (3, 3, 4))
    assert e3.row_label(17) == (0, 1, 2, 2) and e3.column_label(35) == (2, 2, 3)
    assert e3.source(0, 0) == im2col.explain.__globals__["Source3d"](0, 0, 0, 0, False)
    assert e3.receptive_field((1, 2, 3))[0].index == (1, 2, 3)
    text = str(e3)
    assert "row = c·kd·kh·kw + a·kh·kw + i·kw + j, column = od·OH·OW + oh·OW + ow" in text
    assert "depth: (4 + 2·0 − 2) // 1 + 1 = 3" in text
    assert "column (1,2,3) is the receptive field of output (1, 2, 3): 18 input pixels" in text
    for t in (text, str(e)):
        assert max(len(line) for line in t.splitlines()) <= 100
    with pytest.raises(TypeError, match=r"receptive_field\(\) takes 3 indices \(od, oh, ow\), got 2"):
        e3.receptive_field(1, 2)
    with pytest.raises(IndexError, match=r"'od' must be in 0..2, got 3"):
        e3.receptive_field(3, 0, 0)


@pytest.mark.parametrize(
    "xs, ws, kw, op",
    [
        ((2, 4, 4, 5), (4, 3, 3, 3), dict(stride=2, padding=1, output_padding=1), "conv_transpose2d"),
        ((1, 4, 3, 3), (4, 1, 2, 3), dict(stride=(2, 1), dilation=(1, 2), groups=2), "conv_transpose2d"),
        ((2, 2, 6), (2, 3, 3), dict(stride=3, padding=1, output_padding=2), "conv_transpose1d"),
        ((1, 2, 2, 3, 3), (2, 2, 2, 2, 3), dict(stride=2), "conv_transpose3d"),
    ],
)
def test_transposed_matches_conv_transpose(xs, ws, kw, op, rng):
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    e = im2col.explain(x, w, transposed=True, **kw)
    tx, tw = _t(x), _t(w)
    y = getattr(F, op)(tx, tw, **kw)
    assert e.output.shape == tuple(y.shape)
    assert_close(e.output, y.detach().numpy())
    if op == "conv_transpose2d":
        assert_close(e.output, im2col.conv_transpose2d(x, w, **kw))
    gy = rng.standard_normal(e.output_shape)
    y.backward(torch.from_numpy(gy))
    b = e.backward(gy)
    assert_close(b.grad_input, tx.grad.numpy())
    assert_close(b.grad_weight, tw.grad.numpy())
    assert max(len(line) for line in str(e).splitlines()) <= 100


def test_transposed_text():
    e = im2col.explain((1, 1, 3, 3), 3, stride=2, padding=1, transposed=True)
    assert e.output_size_steps() == ["height and width: (3 − 1)·2 − 2·1 + 1·(3 − 1) + 0 + 1 = 5"]
    assert e.output_shape == (1, 1, 5, 5) and e.columns.shape == (1, 9, 9)
    text = str(e)
    assert "per image: Wᵀ·x = (9 × 1) @ (1 × 9) → (9 × 9) columns," in text
    assert "then col2im adds them into the output (1, 5, 5)" in text
    assert "each output pixel receives between 1 and 4 values (overlap counts)" in text
    assert "input position (2, 2) spreads over 4 output pixels of channel 0: (3, 3), (3, 4)" in text
    assert (e.overlap_counts()[0] == [[1, 2, 1, 2, 1], [2, 4, 2, 4, 2]] * 2 + [[1, 2, 1, 2, 1]]).all()
    assert "repr" and "transposed input (1, 1, 3, 3)" in repr(e)
    with pytest.raises(ValueError, match=r"conv_matrix\(\) is the forward convolution's matrix"):
        e.conv_matrix()


def test_backward_text_and_errors():
    e = im2col.explain((1, 1, 4, 4), 3)
    b = e.backward(np.ones(e.output_shape, np.float32))
    text = str(b)
    assert "grad weight = dY·colsᵀ: (1 × 4) @ (4 × 9) → (1 × 9) → (1, 1, 3, 3)" in text
    # grad_weight[0, 0, 1, 1] = Σ dY·x over the 4 windows' centre pixels 6, 7, 10, 11 = 34
    assert "= 1·6 + 1·7 + 1·10 + 1·11 = 34" in text
    assert "grad input = col2im(Wᵀ·dY): (9 × 1) @ (1 × 4) → (9 × 4) per image," in text
    assert float(b.grad_weight[0, 0, 1, 1]) == 34
    with pytest.raises(ValueError, match=r"'grad_output' must have the output's shape \(1, 1, 2, 2\)"):
        e.backward(np.ones((1, 1, 3, 3)))


def test_default_highlight_is_the_loudest_output():
    xb = data.digit_batch(2)
    e = im2col.explain(xb, kernels.edge_kernels())
    pos = e.highlight
    top = np.abs(e.output[0]).max(axis=0)
    assert top[pos] == top.max() > 0
    assert im2col.explain(xb, kernels.edge_kernels(), highlight=(0, 0)).highlight == (0, 0)
    with pytest.raises(IndexError, match=r"'ow' must be in 0..25, got 26"):
        im2col.explain(xb, kernels.edge_kernels(), highlight=(0, 26))
    text = str(e)
    assert "output map: image 0, kernel" in text and '" .:-=+*#%@"' in text


def test_cross_correlation_and_flip_numbers():
    x = np.arange(1, 17, dtype=np.float64).reshape(1, 1, 4, 4)
    w = np.array([[1.0, 0.0], [0.0, -1.0]])
    e = im2col.explain(x, w, highlight=(1, 1))
    lines = e.dot_lines()
    assert lines[0] == "output[0, 0, 1, 1] = Σ w·x over column (1, 1), padding left out:"
    assert lines[1] == "  = 1·6 + 0·7 + 0·10 + -1·11 = -5"
    flipped = F.conv2d(torch.from_numpy(x), torch.from_numpy(w[::-1, ::-1].copy())[None, None])
    assert lines[3].endswith(f"would give {int(flipped[0, 0, 1, 1])} here")
    assert "this is a cross-correlation" in lines[2]


def test_padding_strings_are_spelled_out():
    e = im2col.explain((1, 1, 5, 5), 3, padding="full")
    assert e.padding == ((2, 2), (2, 2)) and e.out_size == (7, 7)
    assert e.padding_note.startswith("padding 'full' became 2 per side: d·(k − 1) = 1·(3 − 1) = 2")
    e = im2col.explain((1, 1, 6, 6), (4, 3), padding="same", dilation=(1, 2))
    assert e.padding == ((1, 2), (2, 2)) and e.out_size == (6, 6)
    assert e.padding_note.startswith(
        "padding 'same' became 1 before and 2 after, 2 before and 2 after: the window takes "
        "d·(k − 1) = 1·(4 − 1) = 3, 2·(3 − 1) = 4 pixels off the size"
    )
    assert "an odd total puts the extra pixel after" in e.padding_note
    text = str(e)
    assert "  padding 'same' became" in text and max(map(len, text.splitlines())) <= 100
    assert im2col.explain((1, 4), (3,), padding="full").out_size == (6,)
    ref = F.conv2d(torch.ones(1, 1, 5, 5), torch.ones(1, 1, 3, 3), padding=2)
    assert_close(im2col.explain(np.ones((1, 1, 5, 5)), np.ones((3, 3)), padding="full").output, ref.double().numpy())


def test_groups_say_which_rows_belong_where():
    e = im2col.explain((1, 4, 5, 5), np.ones((6, 2, 3, 3)), groups=2)
    assert e.group_lines() == [
        "2 groups: each kernel sees only its group's 2 input channel(s)",
        "  group 0: input channels 0..1, rows 0..17, output channels 0..2",
        "  group 1: input channels 2..3, rows 18..35, output channels 3..5",
    ]
    assert "  group 1: input channels 2..3" in str(e)


# --- the fast path's route (issue 13: "the route the fast path takes for this call, and why") ---

ROUTE_CASES = [
    dict(shape=(2, 3, 9, 9), k=3, kw={}),  # too few channels for the engine: BLAS in auto
    dict(shape=(2, 16, 9, 9), k=3, kw=dict(padding=1)),  # few channels: gemm in auto
    dict(shape=(2, 16, 9, 9), k=3, kw=dict(stride=2)),  # stride 2: BLAS in auto
    dict(shape=(2, 8, 9, 9), k=(8, 1, 3, 3), kw=dict(groups=8, padding=1)),  # depthwise
    dict(shape=(2, 8, 9, 9), k=(8, 1, 3, 3), kw=dict(groups=8, transposed=True)),  # depthwise grad input
    dict(shape=(2, 8, 5, 5), k=(8, 1, 3, 3), kw=dict(groups=8, transposed=True)),  # small plane: BLAS
    dict(shape=(1, 4, 30), k=(4, 1, 5), kw=dict(groups=4)),  # depthwise 1-D, through conv2d
    dict(shape=(1, 2, 6, 6, 6), k=(3, 3, 3), kw={}),  # 3-D: BLAS
]


@pytest.mark.parametrize("mode", ["auto", "blas", "engine"])
@pytest.mark.parametrize("case", range(len(ROUTE_CASES)))
def test_route_is_the_route_the_call_takes(case, mode, monkeypatch):
    """explain's route is the one the public function takes on the same arrays (spied on)."""
    from im2col import _engine

    c = ROUTE_CASES[case]
    rng = np.random.default_rng(case)
    x = rng.standard_normal(c["shape"]).astype(np.float32)
    k = c["k"]
    if isinstance(k, tuple) and len(k) == x.ndim:
        w = rng.standard_normal(k).astype(np.float32)
    else:
        C = x.shape[1] // c["kw"].get("groups", 1)
        ks = (k,) * (x.ndim - 2) if isinstance(k, int) else k
        w = rng.standard_normal((4, C, *ks)).astype(np.float32)
    kw = dict(c["kw"])
    transposed = kw.pop("transposed", False)
    old = _engine.set_mode(mode)
    try:
        e = im2col.explain(x, w, transposed=transposed, **kw)
        route, why = e.route()
        text = " ".join(e.to_text().split())
        taken = []
        real = _engine.route_why

        def spy(*args, **kwargs):
            r = real(*args, **kwargs)
            taken.append(r[0])
            return r

        monkeypatch.setattr(_engine, "route_why", spy)
        fn = {3: "conv1d", 4: "conv2d", 5: "conv3d"}[x.ndim]
        if transposed:
            getattr(im2col, "conv_transpose" + fn[4:])(x, w, **kw)
        else:
            getattr(im2col, fn)(x, w, **kw)
    finally:
        _engine.set_mode(old)
    assert taken[:1] == ([route] if taken else []), (taken, route, why)
    if x.ndim == 5:
        assert route is None and "2-D" in why
    elif mode == "blas":
        assert route is None and "IM2COL_ENGINE=blas" in why
    assert "The fast path" in text and " ".join(("why: " + why).split()) in text
