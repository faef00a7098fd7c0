"""Drawing helpers of the teaching pictures: a figure made without pyplot, an image in its padding, the window.

:mod:`im2col.plots` and its animated GIF (``_gif.py``) draw with these: :func:`new_figure` makes a
matplotlib Figure directly (never through ``pyplot``), :func:`draw_padded` an image inside its
padding, :func:`window_box` the kernel window, and :func:`draw_frame` one frame of the sliding
window turning into a column. matplotlib is imported inside each function, never at module top:
it is optional (the 'plot' extra), and ``import im2col`` must work and stay fast without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._geometry import span

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .explain import Explanation

PAD_COLOR = "#9ecae1"  # padding: light blue, so it never reads as a black (0) pixel
WINDOW_COLOR = "#d62728"


def new_figure(**kwargs: Any) -> Figure:
    """A constrained-layout Figure made directly, or an ImportError that says how to install matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - exercised only without matplotlib
        raise ImportError("im2col.plots needs matplotlib, which is not installed: pip install 'im2col[plot]'") from exc
    return Figure(layout="constrained", **kwargs)


def image2d(image: Any, name: str, fn: str) -> np.ndarray:
    """One image as a float64 (H, W) array: leading axes of size 1 dropped, a tensor converted."""
    if hasattr(image, "detach"):
        image = image.detach().cpu().numpy()
    a = np.asarray(image, dtype=np.float64)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise ValueError(f"{fn}(): argument '{name}' must be one image (H, W) (or (1, 1, H, W)), got shape {a.shape}")
    return a


def draw_padded(
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
    cmap = colormap("gray", bad=PAD_COLOR)
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


def colormap(name: str, bad: str | None = None):
    """matplotlib's colormap ``name``, with ``bad`` (masked) cells in that colour."""
    import matplotlib

    cmap = matplotlib.colormaps[name]
    return cmap.with_extremes(bad=bad) if bad is not None else cmap


def window_box(ax: Axes, top: int, left: int, kh: int, kw: int, dh: int = 1, dw: int = 1) -> None:
    from matplotlib.patches import Rectangle

    span_h, span_w = span(kh, dh), span(kw, dw)
    ax.add_patch(
        Rectangle(
            (left - 0.5, top - 0.5),
            span_w,
            span_h,
            fill=False,
            edgecolor=WINDOW_COLOR,
            linewidth=2.5,
        )
    )


def draw_frame(axes: Sequence[Axes], e: Explanation, col: int, img: np.ndarray, vmax: float) -> None:
    ax_in, ax_col = axes
    oh, ow = e.column_label(col)
    pad_h, pad_w = e.padding  # a 2-D explanation: one (before, after) pair per axis
    draw_padded(ax_in, img, (pad_h, pad_w), annotate=img.size <= 64, vmin=0.0, vmax=vmax)
    top, left = oh * e.stride[0], ow * e.stride[1]
    window_box(ax_in, top, left, e.kh, e.kw, *e.dilation)
    ax_in.set_title(f"window of output ({oh}, {ow})", fontsize=10)
    # The column panel as an RGB picture: made columns in gray (padding light blue), the rest blank.
    from matplotlib.colors import to_rgb

    cols = e.columns[0].astype(np.float64)
    rgb = colormap("gray")(np.clip(cols / vmax, 0, 1))[..., :3]
    rgb[e.padding_mask] = to_rgb(PAD_COLOR)
    rgb[:, col + 1 :] = to_rgb("#f4f4f4")
    ax_col.imshow(rgb, aspect="auto", interpolation="nearest")
    if e.rows * e.L <= 256:  # small enough to write every value in
        for (r, c), v in np.ndenumerate(cols):
            if c <= col:
                text = "0" if e.padding_mask[r, c] else f"{v:g}"
                color = "#08519c" if e.padding_mask[r, c] else ("black" if v > vmax / 2 else "white")
                ax_col.text(c, r, text, ha="center", va="center", fontsize=6, color=color)
    from matplotlib.patches import Rectangle

    ax_col.add_patch(Rectangle((col - 0.5, -0.5), 1, e.rows, fill=False, edgecolor=WINDOW_COLOR, linewidth=2.5))
    if e.rows <= 27:
        ax_col.set_yticks(range(e.rows), ["({},{},{})".format(*e.row_label(r)) for r in range(e.rows)], fontsize=7)
    step = max(1, e.L // 10)
    ax_col.set_xticks(range(0, e.L, step), [str(c) for c in range(0, e.L, step)], fontsize=7)
    ax_col.set_xlabel("column = oh·OW + ow", fontsize=8)
    ax_col.set_title(f"… becomes column {col} of the {e.rows} × {e.L} matrix", fontsize=10)
