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
from ._functional import conv2d
from ._geometry import out_sizes
from ._gif import save_sliding_window_gif, sliding_window_gif_frames
from ._plot_draw import PAD_COLOR, colormap, draw_frame, draw_padded, image2d, new_figure, window_box
from .explain import Explanation, explain

if TYPE_CHECKING:  # pragma: no cover
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
# The GIF's two functions live in _gif.py and the drawing helpers in _plot_draw.py; the figures are here.


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
        else image2d(image, "image", "plot_padded_input")
    )
    ph, pw = (padding, padding) if isinstance(padding, (int, np.integer)) else padding
    pads = ((int(ph), int(ph)), (int(pw), int(pw)))
    Hp, Wp = img.shape[0] + 2 * ph, img.shape[1] + 2 * pw
    if annotate is None:
        annotate = Hp <= 12 and Wp <= 12
    fig = new_figure(figsize=(max(3.0, 0.45 * Wp + 0.6), max(3.0, 0.45 * Hp + 0.8)))
    ax = fig.add_subplot()
    vmax = float(img.max()) if img.size and img.max() > 0 else 1.0
    draw_padded(ax, img, pads, annotate=annotate, vmin=0.0, vmax=vmax)
    title = f"{img.shape[0]}×{img.shape[1]} input, padding {ph}" + (f"×{pw}" if pw != ph else "")
    if kernel_size is not None and position is not None:
        k = int(kernel_size)
        window_box(ax, position[0], position[1], k, k)
        oh, ow = out_sizes("plot_padded_input", img.shape, (k, k), (1, 1), pads, (1, 1))
        title += f": {k}×{k} kernel → {oh}×{ow} output"
        ax.set_xlabel(f"red: the window of output {tuple(position)}; blue: padding (zeros)", fontsize=9)
    ax.set_title(title, fontsize=11)
    return fig


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
    fig = new_figure(figsize=(2.3 * K + 0.6, 2.6))
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
    fig = new_figure(figsize=(min(16.0, 1.6 + 0.13 * n + 1.2), 1.4 + 0.28 * min(e.rows, 40)))
    ax = fig.add_subplot()
    im = ax.imshow(shown, cmap=colormap("gray", bad=PAD_COLOR), aspect="auto", interpolation="nearest")
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
    img = (data.digit_three() if image is None else image2d(image, "image", "plot_feature_maps")).astype(np.float32)
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
    fig = new_figure(figsize=(2.6 * (K + 1) + 0.8, 3.2))
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


def _frame_setup(image: Any, kernel_size: int, padding: int, stride: int) -> tuple[Explanation, np.ndarray]:
    img = (
        np.arange(1, 26, dtype=np.float32).reshape(5, 5)
        if image is None
        else image2d(image, "image", "sliding_window_frames")
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
        fig = new_figure(figsize=(9.5, 3.6))
        axes = fig.subplots(1, 2, width_ratios=[1, 1.6])
        draw_frame(axes, e, int(col), img, vmax)
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
    fig = new_figure(figsize=(9.5, 3.0 * len(positions)))
    axes = fig.subplots(len(positions), 2, width_ratios=[1, 1.6], squeeze=False)
    for row, col in zip(axes, positions, strict=True):
        draw_frame(row, e, int(col), img, vmax)
    fig.suptitle(
        f"im2col: each {e.kh}×{e.kw} window of the {e.H}×{e.W} input becomes one column",
        fontsize=12,
    )
    return fig
