"""Pictures of the story: the padded input, the kernels, the unrolled matrix, the edge maps, the
sliding window becoming a column.

Needs matplotlib (``pip install 'im2col[plot]'``), imported only when a function here is called.
Every function returns a :class:`matplotlib.figure.Figure` made directly, never through
``pyplot``: nothing here touches the global backend or pyplot's list of open figures, so the
functions are safe in scripts, servers, tests and notebooks alike. Save with
``fig.savefig("name.png")``; in Jupyter, a returned figure displays itself.

Examples
--------
>>> from im2col import plots
>>> fig = plots.plot_kernels()                 # the blog post's four edge kernels
>>> [ax.get_title() for ax in fig.axes[:4]]
['left_edge', 'top_edge', 'diag1_edge', 'diag2_edge']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import data, kernels
from .explain import Explanation, explain

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "plot_padded_input",
    "plot_kernels",
    "plot_unrolled",
    "plot_feature_maps",
    "sliding_window_frames",
    "plot_sliding_window",
    "sliding_window_gif_frames",
    "save_sliding_window_gif",
]

_PAD_COLOR = "#9ecae1"  # padding: light blue, so it never reads as a black (0) pixel
_WINDOW_COLOR = "#d62728"


def _Figure(**kwargs: Any) -> Figure:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - exercised only without matplotlib
        raise ImportError("im2col.plots needs matplotlib, which is not installed: pip install 'im2col[plot]'") from exc
    return Figure(layout="constrained", **kwargs)


def _image2d(image: Any, name: str, fn: str) -> np.ndarray:
    if hasattr(image, "detach"):
        image = image.detach().cpu().numpy()
    a = np.asarray(image, dtype=np.float64)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise ValueError(f"{fn}(): argument '{name}' must be one image (H, W) (or (1, 1, H, W)), got shape {a.shape}")
    return a


def _draw_padded(
    ax: Axes,
    img: np.ndarray,
    pads: tuple[tuple[int, int], tuple[int, int]],
    *,
    annotate: bool,
    vmin: float,
    vmax: float,
) -> None:
    """Draw ``img`` inside its padding on ``ax``: pixel (h, w) sits at x = w + left, y = h + top."""
    (pt, pb), (pl, pr) = pads
    H, W = img.shape
    canvas = np.full((H + pt + pb, W + pl + pr), np.nan)
    canvas[pt : pt + H, pl : pl + W] = img
    cmap = _cmap("gray", bad=_PAD_COLOR)
    ax.imshow(np.ma.masked_invalid(canvas), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    Hp, Wp = canvas.shape
    if Hp <= 40 and Wp <= 40:  # pixel grid
        ax.set_xticks(np.arange(-0.5, Wp), minor=True)
        ax.set_yticks(np.arange(-0.5, Hp), minor=True)
        ax.grid(which="minor", color="#777777", linewidth=0.4)
        ax.tick_params(which="minor", length=0)
    if pt or pb or pl or pr:
        from matplotlib.patches import Rectangle

        ax.add_patch(Rectangle((pl - 0.5, pt - 0.5), W, H, fill=False, edgecolor="#08519c", linewidth=1.5))
    if annotate:
        mid = (vmin + vmax) / 2
        for h in range(Hp):
            for w in range(Wp):
                v = canvas[h, w]
                text = "0" if np.isnan(v) else (f"{v:g}" if float(v).is_integer() else f"{v:.1f}")
                color = "#08519c" if np.isnan(v) else ("black" if v > mid else "white")
                ax.text(w, h, text, ha="center", va="center", fontsize=8, color=color)
    ax.set_xticks([])
    ax.set_yticks([])


def _cmap(name: str, bad: str | None = None):
    import matplotlib

    cmap = matplotlib.colormaps[name]
    return cmap.with_extremes(bad=bad) if bad is not None else cmap


def _window_box(ax: Axes, top: int, left: int, kh: int, kw: int, dh: int = 1, dw: int = 1) -> None:
    from matplotlib.patches import Rectangle

    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    ax.add_patch(
        Rectangle(
            (left - 0.5, top - 0.5),
            span_w,
            span_h,
            fill=False,
            edgecolor=_WINDOW_COLOR,
            linewidth=2.5,
        )
    )


def plot_padded_input(
    image: Any = None,
    padding: int | tuple[int, int] = 2,
    kernel_size: int | None = 3,
    position: tuple[int, int] | None = (0, 0),
    *,
    annotate: bool | None = None,
) -> Figure:
    """The input with its zero padding drawn around it, and one kernel window.

    Parameters
    ----------
    image : array (H, W), optional
        Default: the blog post's 5×5 example filled with 1, 2, …, 25.
    padding : int or (int, int), default 2
        Zero padding per side (height, width). Padding cells are light blue and read 0.
    kernel_size : int or None, default 3
        Draw the kernel window at ``position`` (output coordinates, stride 1); None for no window.
    position : (int, int) or None
    annotate : bool, optional
        Write each value in its cell; default when the padded image is at most 12×12.

    Returns
    -------
    matplotlib.figure.Figure
    """
    img = (
        np.arange(1, 26, dtype=np.float64).reshape(5, 5)
        if image is None
        else _image2d(image, "image", "plot_padded_input")
    )
    ph, pw = (padding, padding) if isinstance(padding, (int, np.integer)) else padding
    pads = ((int(ph), int(ph)), (int(pw), int(pw)))
    Hp, Wp = img.shape[0] + 2 * ph, img.shape[1] + 2 * pw
    if annotate is None:
        annotate = Hp <= 12 and Wp <= 12
    fig = _Figure(figsize=(max(3.0, 0.45 * Wp + 0.6), max(3.0, 0.45 * Hp + 0.8)))
    ax = fig.add_subplot()
    vmax = float(img.max()) if img.size and img.max() > 0 else 1.0
    _draw_padded(ax, img, pads, annotate=annotate, vmin=0.0, vmax=vmax)
    title = f"{img.shape[0]}×{img.shape[1]} input, padding {ph}" + (f"×{pw}" if pw != ph else "")
    if kernel_size is not None and position is not None:
        k = int(kernel_size)
        _window_box(ax, position[0], position[1], k, k)
        oh, ow = im2col_output_size(img.shape, k, pads)
        title += f": {k}×{k} kernel → {oh}×{ow} output"
        ax.set_xlabel(f"red: the window of output {tuple(position)}; blue: padding (zeros)", fontsize=9)
    ax.set_title(title, fontsize=11)
    return fig


def im2col_output_size(shape: Sequence[int], k: int, pads: tuple[tuple[int, int], tuple[int, int]]) -> tuple[int, int]:
    (pt, pb), (pl, pr) = pads
    return (shape[0] + pt + pb - k + 1, shape[1] + pl + pr - k + 1)


def plot_kernels(weight: Any = None, names: Sequence[str] | None = None, *, annotate: bool = True) -> Figure:
    """Each kernel as a small heatmap (blue negative, red positive) with its values written in.

    Parameters
    ----------
    weight : array (K, kh, kw) or (K, 1, kh, kw), optional
        Default: :func:`im2col.kernels.edge_kernels`, titled with :data:`im2col.kernels.EDGE_NAMES`.
    names : sequence of str, optional
        Titles; default ``kernel 0``, ``kernel 1``, ….

    Returns
    -------
    matplotlib.figure.Figure
    """
    if weight is None:
        weight = kernels.edge_kernels()
        names = names or kernels.EDGE_NAMES
    w = np.asarray(weight.detach().cpu().numpy() if hasattr(weight, "detach") else weight, dtype=np.float64)
    if w.ndim == 4:
        if w.shape[1] != 1:
            raise ValueError(f"plot_kernels(): argument 'weight' must have one input channel, got shape {w.shape}")
        w = w[:, 0]
    if w.ndim == 2:
        w = w[None]
    if w.ndim != 3:
        raise ValueError(
            f"plot_kernels(): argument 'weight' must be (K, kh, kw) or (K, 1, kh, kw), got shape {w.shape}"
        )
    K = w.shape[0]
    names = list(names) if names is not None else [f"kernel {k}" for k in range(K)]
    if len(names) != K:
        raise ValueError(f"plot_kernels(): {K} kernels but {len(names)} names")
    fig = _Figure(figsize=(2.3 * K + 0.6, 2.6))
    axes = fig.subplots(1, K, squeeze=False)[0]
    lim = float(np.abs(w).max()) or 1.0
    for ax, kern, name in zip(axes, w, names, strict=True):
        im = ax.imshow(kern, cmap="RdBu_r", vmin=-lim, vmax=lim)
        if annotate:
            for (i, j), v in np.ndenumerate(kern):
                text = f"{v:g}" if float(v).is_integer() else f"{v:.2f}"
                color = "white" if abs(v) > lim / 2 else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=11, color=color)
        ax.set_title(name, fontsize=11)
        ax.set_xticks(range(kern.shape[1]))
        ax.set_yticks(range(kern.shape[0]))
        ax.tick_params(labelsize=8)
    fig.colorbar(im, ax=list(axes), shrink=0.8, label="weight")
    return fig


def plot_unrolled(
    source: Explanation | Any = None,
    kernel_size: int | tuple[int, int] = 3,
    *,
    padding: Any = 0,
    stride: int | tuple[int, int] = 1,
    dilation: int | tuple[int, int] = 1,
    image: int = 0,
    start: int = 0,
    max_columns: int = 120,
) -> Figure:
    """The unrolled (im2col) matrix of one image as a labelled heatmap; padding cells in light blue.

    Parameters
    ----------
    source : Explanation or array, optional
        An :class:`~im2col.explain.Explanation`, or an input (H, W) / (C, H, W) / (N, C, H, W) to
        unroll with ``kernel_size``, ``padding``, ``stride``, ``dilation``. Default: the 5×5
        teaching input with padding 2.
    image : int, default 0
        Which image of the batch.
    start : int, default 0
        First column shown (e.g. ``8·OW`` to start at output row 8, where a digit's strokes are).
    max_columns : int, default 120
        Show at most this many columns from ``start``, so the cells stay visible.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if source is None:
        e = explain((1, 1, 5, 5), 3, padding=2)
    elif isinstance(source, Explanation):
        e = source
    else:
        e = explain(source, kernel_size, stride=stride, padding=padding, dilation=dilation)
    cols = e.columns[image].astype(np.float64)
    mask = e.padding_mask
    if not 0 <= start < e.L:
        raise ValueError(f"plot_unrolled(): argument 'start' must be in 0..{e.L - 1}, got {start}")
    n = min(e.L - start, max_columns)
    shown = np.ma.masked_array(cols[:, start : start + n], mask=mask[:, start : start + n])
    fig = _Figure(figsize=(min(16.0, 1.6 + 0.13 * n + 1.2), 1.4 + 0.28 * min(e.rows, 40)))
    ax = fig.add_subplot()
    im = ax.imshow(shown, cmap=_cmap("gray", bad=_PAD_COLOR), aspect="auto", interpolation="nearest")
    if e.rows <= 40:
        ax.set_yticks(range(e.rows), ["({},{},{})".format(*e.row_label(r)) for r in range(e.rows)], fontsize=7)
    ax.set_ylabel("row = (channel, kernel row, kernel col)")
    step = max(1, n // 12)
    ticks = list(range(0, n, step))
    ax.set_xticks(
        ticks,
        ["({},{})".format(*e.column_label(start + c)) for c in ticks],
        fontsize=7,
        rotation=45,
    )
    more = f" ({n} of {e.L}, from column {start})" if n < e.L else ""
    ax.set_xlabel(f"column = output position (out row, out col){more}")
    ax.set_title(
        f"Unrolled matrix of image {image}: {e.rows} × {e.L} "
        f"(input {e.C}×{e.H}×{e.W}, kernel {e.kh}×{e.kw})" + ("; light blue = padding" if mask.any() else ""),
        fontsize=10,
    )
    fig.colorbar(im, ax=ax, shrink=0.8, label="pixel value")
    return fig


def plot_feature_maps(image: Any = None, weight: Any = None, names: Sequence[str] | None = None) -> Figure:
    """An image and what each kernel makes of it: the blog post's four edge maps of the digit by default.

    The maps are computed by :func:`im2col.conv2d` (no padding, stride 1), so a 28×28 digit gives
    26×26 maps. Red is a positive response, blue negative.

    Parameters
    ----------
    image : array (H, W), optional
        Default: :func:`im2col.data.digit_three`.
    weight : array (K, 1, kh, kw) or (K, kh, kw), optional
        Default: :func:`im2col.kernels.edge_kernels`.
    names : sequence of str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ._functional import conv2d

    img = (data.digit_three() if image is None else _image2d(image, "image", "plot_feature_maps")).astype(np.float32)
    if weight is None:
        weight, names = kernels.edge_kernels(), names or kernels.EDGE_NAMES
    w = np.asarray(weight, dtype=np.float32)
    if w.ndim == 3:
        w = w[:, None]
    K = w.shape[0]
    names = list(names) if names is not None else [f"kernel {k}" for k in range(K)]
    if len(names) != K:
        raise ValueError(f"plot_feature_maps(): {K} kernels but {len(names)} names")
    maps = conv2d(img[None, None], w)[0]  # (K, OH, OW)
    fig = _Figure(figsize=(2.6 * (K + 1) + 0.8, 3.2))
    axes = fig.subplots(1, K + 1, squeeze=False)[0]
    axes[0].imshow(img, cmap="gray", interpolation="nearest")
    axes[0].set_title(f"input {img.shape[0]}×{img.shape[1]}", fontsize=10)
    lim = float(np.abs(maps).max()) or 1.0
    for ax, m, name in zip(axes[1:], maps, names, strict=True):
        im = ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_title(f"{name} → {m.shape[0]}×{m.shape[1]}", fontsize=10)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=list(axes[1:]), shrink=0.8, label="response")
    return fig


def _draw_frame(axes: Sequence[Axes], e: Explanation, col: int, img: np.ndarray, vmax: float) -> None:
    ax_in, ax_col = axes
    oh, ow = e.column_label(col)
    _draw_padded(ax_in, img, e.padding, annotate=img.size <= 64, vmin=0.0, vmax=vmax)
    top, left = oh * e.stride[0], ow * e.stride[1]
    _window_box(ax_in, top, left, e.kh, e.kw, *e.dilation)
    ax_in.set_title(f"window of output ({oh}, {ow})", fontsize=10)
    # The column panel as an RGB picture: made columns in gray (padding light blue), the rest blank.
    from matplotlib.colors import to_rgb

    cols = e.columns[0].astype(np.float64)
    rgb = _cmap("gray")(np.clip(cols / vmax, 0, 1))[..., :3]
    rgb[e.padding_mask] = to_rgb(_PAD_COLOR)
    rgb[:, col + 1 :] = to_rgb("#f4f4f4")
    ax_col.imshow(rgb, aspect="auto", interpolation="nearest")
    if e.rows * e.L <= 256:  # small enough to write every value in
        for (r, c), v in np.ndenumerate(cols):
            if c <= col:
                text = "0" if e.padding_mask[r, c] else f"{v:g}"
                color = "#08519c" if e.padding_mask[r, c] else ("black" if v > vmax / 2 else "white")
                ax_col.text(c, r, text, ha="center", va="center", fontsize=6, color=color)
    from matplotlib.patches import Rectangle

    ax_col.add_patch(Rectangle((col - 0.5, -0.5), 1, e.rows, fill=False, edgecolor=_WINDOW_COLOR, linewidth=2.5))
    if e.rows <= 27:
        ax_col.set_yticks(range(e.rows), ["({},{},{})".format(*e.row_label(r)) for r in range(e.rows)], fontsize=7)
    step = max(1, e.L // 10)
    ax_col.set_xticks(range(0, e.L, step), [str(c) for c in range(0, e.L, step)], fontsize=7)
    ax_col.set_xlabel("column = oh·OW + ow", fontsize=8)
    ax_col.set_title(f"… becomes column {col} of the {e.rows} × {e.L} matrix", fontsize=10)


def _frame_setup(image: Any, kernel_size: int, padding: int, stride: int) -> tuple[Explanation, np.ndarray]:
    img = (
        np.arange(1, 26, dtype=np.float32).reshape(5, 5)
        if image is None
        else _image2d(image, "image", "sliding_window_frames")
    )
    e = explain(img.astype(np.float32), kernel_size, stride=stride, padding=padding)
    return e, img


def sliding_window_frames(
    image: Any = None,
    kernel_size: int = 3,
    padding: int = 0,
    stride: int = 1,
    positions: Sequence[int] | None = None,
) -> list[Figure]:
    """The sliding window turning into columns, one figure per step.

    Each frame shows the (padded) input with the kernel window at one output position, and the
    unrolled matrix filled up to that position's column, which is outlined.

    Parameters
    ----------
    image : array (H, W), optional
        Default: the 5×5 input 1, 2, …, 25.
    kernel_size, padding, stride : int
    positions : sequence of int, optional
        Column indices (``oh·OW + ow``) to draw; default: every column when there are at most 9,
        else 6 spread from first to last.

    Returns
    -------
    list of matplotlib.figure.Figure
    """
    e, img = _frame_setup(image, kernel_size, padding, stride)
    if positions is None:
        positions = list(range(e.L)) if e.L <= 9 else sorted({int(round(v)) for v in np.linspace(0, e.L - 1, 6)})
    vmax = float(img.max()) or 1.0
    frames = []
    for col in positions:
        fig = _Figure(figsize=(9.5, 3.6))
        axes = fig.subplots(1, 2, width_ratios=[1, 1.6])
        _draw_frame(axes, e, int(col), img, vmax)
        frames.append(fig)
    return frames


def plot_sliding_window(
    image: Any = None,
    kernel_size: int = 3,
    padding: int = 0,
    stride: int = 1,
    positions: Sequence[int] | None = None,
) -> Figure:
    """The frames of :func:`sliding_window_frames` stacked in one figure, top to bottom.

    Returns
    -------
    matplotlib.figure.Figure
    """
    e, img = _frame_setup(image, kernel_size, padding, stride)
    if positions is None:
        positions = sorted({int(round(v)) for v in np.linspace(0, e.L - 1, min(e.L, 4))})
    vmax = float(img.max()) or 1.0
    fig = _Figure(figsize=(9.5, 3.0 * len(positions)))
    axes = fig.subplots(len(positions), 2, width_ratios=[1, 1.6], squeeze=False)
    for row, col in zip(axes, positions, strict=True):
        _draw_frame(row, e, int(col), img, vmax)
    fig.suptitle(
        f"im2col: each {e.kh}×{e.kw} window of the {e.H}×{e.W} input becomes one column",
        fontsize=12,
    )
    return fig


# --- the animated GIF ------------------------------------------------------------------------------
# Frames are drawn with Pillow straight from NumPy arrays, not through matplotlib: a figure per
# frame costs ~50 ms, so a 26×26 output (676 windows) would take half a minute; this takes ~2 ms.


def _gif_positions(L: int, max_frames: int) -> list[int]:
    if max_frames < 1:
        raise ValueError(f"save_sliding_window_gif(): 'max_frames' must be at least 1, got {max_frames}")
    if L <= max_frames:
        return list(range(L))
    return sorted({int(round(v)) for v in np.linspace(0, L - 1, max_frames)})


def sliding_window_gif_frames(
    image: Any = None,
    kernel_size: int | tuple[int, int] = 3,
    padding: Any = 0,
    stride: int | tuple[int, int] = 1,
    dilation: int | tuple[int, int] = 1,
    *,
    max_frames: int = 100,
) -> tuple[list[Any], list[int]]:
    """The frames of :func:`save_sliding_window_gif` as Pillow images, and their column indices.

    Returns
    -------
    (list of PIL.Image.Image, list of int)
        One RGB frame per window position ``l = oh·OW + ow`` (or ``max_frames`` of them, evenly
        spread from the first to the last, when there are more positions).
    """
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError as exc:  # pragma: no cover - Pillow comes with matplotlib
        raise ImportError("the GIF needs Pillow (it comes with matplotlib): pip install 'im2col[plot]'") from exc
    img = (
        np.arange(1, 26, dtype=np.float32).reshape(5, 5)
        if image is None
        else _image2d(image, "image", "save_sliding_window_gif").astype(np.float32)
    )
    e = explain(img, kernel_size, stride=stride, padding=padding, dilation=dilation)
    positions = _gif_positions(e.L, max_frames)
    (pt, pb), (pl, pr) = e.padding
    Hp, Wp = e.H + pt + pb, e.W + pl + pr
    vmax = float(img.max()) or 1.0
    pad_rgb = np.array([158, 202, 225], np.uint8)  # the PNGs' light-blue padding
    blank_rgb = np.array([244, 244, 244], np.uint8)

    def gray(a: np.ndarray) -> np.ndarray:
        g = (np.clip(a / vmax, 0, 1) * 235 + 20).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=-1)

    if e.rows * e.L > 200_000:
        raise ValueError(
            f"save_sliding_window_gif(): the unrolled matrix would be {e.rows} × {e.L} cells; "
            "draw at most 200,000 (use a smaller image)"
        )
    canvas = np.zeros((Hp, Wp, 3), np.uint8)
    canvas[:] = pad_rgb
    canvas[pt : pt + e.H, pl : pl + e.W] = gray(img)
    s_in = max(6, min(40, 300 // max(Hp, Wp)))
    cols = e.columns[0]
    mrgb = gray(cols)
    mrgb[e.padding_mask] = pad_rgb
    cw = max(2, min(36, 900 // e.L))
    ch = max(4, min(36, 300 // e.rows))
    write = s_in >= 28 and cw >= 28 and ch >= 20
    try:  # matplotlib's DejaVu Sans has "→" and "×"; Pillow's built-in font does not
        from matplotlib import font_manager

        font = ImageFont.truetype(font_manager.findfont("DejaVu Sans"), 14)
    except (ImportError, OSError):
        font = ImageFont.load_default()
    top, gap = 34, 30
    in_w, in_h = Wp * s_in, Hp * s_in
    m_w, m_h = e.L * cw, e.rows * ch
    width = 10 + in_w + gap + m_w + 10
    height = top + max(in_h, m_h) + 12
    base_in = np.kron(canvas, np.ones((s_in, s_in, 1), np.uint8))
    frames = []
    for col in positions:
        m = mrgb.copy()
        m[:, col + 1 :] = blank_rgb
        frame = Image.new("RGB", (width, height), "white")
        frame.paste(Image.fromarray(base_in), (10, top))
        frame.paste(Image.fromarray(np.kron(m, np.ones((ch, cw, 1), np.uint8))), (10 + in_w + gap, top))
        d = ImageDraw.Draw(frame)
        oh, ow = e.column_label(col)
        y0, x0 = oh * e.stride[0], ow * e.stride[1]  # the window's corner, padded coordinates
        span_h = e.dilation[0] * (e.kh - 1) + 1
        span_w = e.dilation[1] * (e.kw - 1) + 1
        d.rectangle(
            [10 + x0 * s_in, top + y0 * s_in, 10 + (x0 + span_w) * s_in - 1, top + (y0 + span_h) * s_in - 1],
            outline=_WINDOW_COLOR, width=3,
        )  # fmt: skip
        mx = 10 + in_w + gap
        d.rectangle([mx + col * cw, top, mx + (col + 1) * cw - 1, top + m_h - 1], outline=_WINDOW_COLOR, width=2)
        if write:
            for (r, c), v in np.ndenumerate(cols[:, : col + 1]):
                pad = e.padding_mask[r, c]
                t = "0" if pad else f"{v:g}"
                fill = "#08519c" if pad else ("black" if v > vmax / 2 else "white")
                d.text((mx + c * cw + cw / 2, top + r * ch + ch / 2), t, fill=fill, font=font, anchor="mm")
            for (h, w), _ in np.ndenumerate(canvas[..., 0]):
                hh, ww = h - pt, w - pl
                inside = 0 <= hh < e.H and 0 <= ww < e.W
                t = f"{img[hh, ww]:g}" if inside else "0"
                fill = "#08519c" if not inside else ("black" if img[hh, ww] > vmax / 2 else "white")
                d.text((10 + w * s_in + s_in / 2, top + h * s_in + s_in / 2), t, fill=fill, font=font, anchor="mm")
        d.text(
            (10, 8),
            f"window of output ({oh}, {ow})  →  column {col} of the {e.rows} × {e.L} unrolled matrix",
            fill="black", font=font,
        )  # fmt: skip
        frames.append(frame)
    return frames, positions


def save_sliding_window_gif(
    path: Any,
    image: Any = None,
    kernel_size: int | tuple[int, int] = 3,
    padding: Any = 0,
    stride: int | tuple[int, int] = 1,
    dilation: int | tuple[int, int] = 1,
    *,
    max_frames: int = 100,
    duration: int | None = None,
) -> str:
    """Write the sliding window as an animated GIF: the window moves over the (padded) input and the
    unrolled matrix fills beside it, one column per frame.

    Parameters
    ----------
    path : str or path-like
        Where to write the ``.gif``.
    image : array (H, W), optional
        Default: the 5×5 input 1, 2, …, 25 (values are written in the cells when they fit).
    kernel_size, padding, stride, dilation
        As in :func:`im2col.explain`.
    max_frames : int, default 100
        One frame per window position when there are at most this many; otherwise this many
        positions spread evenly from the first to the last (the first and last always included).
    duration : int, optional
        Milliseconds per frame; default about 8 s for the whole animation, 40–700 ms a frame.

    Returns
    -------
    str
        ``path``.

    Examples
    --------
    >>> import os, tempfile
    >>> from PIL import Image
    >>> from im2col import plots
    >>> path = os.path.join(tempfile.mkdtemp(), "window.gif")
    >>> with Image.open(plots.save_sliding_window_gif(path, padding=1)) as gif:
    ...     gif.n_frames                    # a 5×5 input, padding 1: 25 window positions
    25
    """
    frames, _ = sliding_window_gif_frames(image, kernel_size, padding, stride, dilation, max_frames=max_frames)
    ms = duration if duration is not None else max(40, min(700, 8000 // len(frames)))
    # Pillow merges identical consecutive frames unless told not to; every position is a frame.
    frames[0].save(
        path, save_all=True, append_images=frames[1:], duration=ms, loop=0, optimize=False,
        disposal=1,
    )  # fmt: skip
    return str(path)
