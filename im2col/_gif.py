"""The sliding window as an animated GIF: the window moves over the padded input, the matrix fills beside it.

Frames are drawn with Pillow straight from NumPy arrays, not through matplotlib: a figure per
frame costs ~50 ms, so a 26×26 output (676 windows) would take half a minute; this takes ~2 ms.
Pillow is imported inside the functions: it is optional (it comes with matplotlib, the 'plot'
extra). Re-exported by :mod:`im2col.plots`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._geometry import span
from ._plot_draw import WINDOW_COLOR, image2d
from .explain import explain


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
        else image2d(image, "image", "save_sliding_window_gif").astype(np.float32)
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
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont  # load_default's is a bitmap font without FreeType
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
        span_h, span_w = span(e.kh, e.dilation[0]), span(e.kw, e.dilation[1])
        d.rectangle(
            [10 + x0 * s_in, top + y0 * s_in, 10 + (x0 + span_w) * s_in - 1, top + (y0 + span_h) * s_in - 1],
            outline=WINDOW_COLOR, width=3,
        )  # fmt: skip
        mx = 10 + in_w + gap
        d.rectangle([mx + col * cw, top, mx + (col + 1) * cw - 1, top + m_h - 1], outline=WINDOW_COLOR, width=2)
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
