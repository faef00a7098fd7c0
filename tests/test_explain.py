"""explain(), kernels and data: hand-computed teaching cases, the dual view, text and HTML."""

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
        assert self.stack and self.stack[-1] == tag, (
            f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        )
        self.stack.pop()


def full_padding() -> Explanation:
    return im2col.explain((1, 1, 5, 5), 3, padding=2)


# --- the seed's hand-computed cases ---------------------------------------------------------------


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
    assert e.source(4, 24) == Source(
        0, 2, 2, False
    )  # centre tap, centre output: pixel (2, 2), value 13
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
    assert "(4 × 9) @ (9 × 64·676 = 43264) → (4 × 43264) → (64, 4, 26, 26)" in "\n".join(
        e.gemm_lines()
    )
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
    assert_close(
        e.columns, reference.im2col(x, (e.kh, e.kw), e.dilation, e.padding, e.stride), exact=True
    )
    assert_close(e.output, im2col.conv2d(x, w, **kw))


@pytest.mark.parametrize("cfg", CONFIGS, ids=range(len(CONFIGS)))
def test_dual_view_equals_im2col_view(cfg, rng):
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


def test_dual_view_transposed_conv_matches_conv_transpose2d(rng):
    e = im2col.explain(
        rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3)), stride=2, padding=1
    )
    y = rng.standard_normal((3, e.OH, e.OW))
    ct = im2col.conv_transpose2d(y[None], e.weight, stride=2, padding=1)
    assert ct.shape == (1, 2, 5, 5)
    assert_close(e.conv_matrix().T @ y.ravel(), ct.ravel())


def test_dual_view_example_matrix():
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
    assert im2col.explain(
        np.zeros((6, 6)), np.stack([kernels.top_edge, kernels.left_edge])
    ).output_shape == (1, 2, 4, 4)
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
        (((1, 1, 5, 5), 3), {"transposed": True, "padding": "same"}, ValueError,
         r"with transposed=True 'padding' must be an int"),
        (((1, 1, 5, 5), 3), {"padding": "same", "stride": 2}, ValueError,
         r"padding='same' needs stride=1"),
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
        (((1, 1, 5, 5), 3), {"padding": "fuller"}, ValueError,
         r"'padding' must be an int, a tuple, 'valid', 'same' or 'full', got 'fuller'"),
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


def test_html_is_well_formed_and_highlights():
    e = im2col.explain((1, 1, 5, 5), 3, padding=2, highlight=(0, 0))
    assert e._repr_html_() == e.to_html()
    html = e.to_html(max_cols=100)  # nothing elided
    p = _Checker()
    p.feed(html)
    p.close()
    assert p.stack == []
    assert p.tags["table"] == 3 and p.tags["style"] == 1  # padded input, unrolled matrix, weights
    # Padded input (9×9, 56 padding cells) and unrolled matrix (9·49 − 225 = 216 padding cells).
    assert (
        p.classes.count("pad") + p.classes.count("pad rf hi") + p.classes.count("pad hi")
        == 56 + 216
    )
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
    with pytest.raises(ValueError):
        kernels.top_edge[0, 0] = 5


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
