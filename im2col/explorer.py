"""The explorer: one self-contained HTML page that links the unrolled matrix to the image it came from.

:func:`explorer_html` turns an :class:`~im2col.explain.Explanation` into a page (inline CSS and JS,
nothing fetched, so it works from ``file://`` and offline) that draws the padded input, the
kernels, the unrolled matrix, the weight matrix, the GEMM as one weight row × one column, and the
output maps, and links them under the pointer and the keyboard. The page recomputes everything in
JavaScript when its controls change (kernel size, stride, padding, dilation), so Python only ships
the image and the weights. docs/explorer.md documents the page and its DOM contract.

Examples
--------
>>> import im2col
>>> from im2col.explorer import explorer_html
>>> page = explorer_html(im2col.explain((1, 1, 5, 5), 3, padding=1))
>>> page.startswith("<!DOCTYPE html>"), "http://" in page or "https://" in page
(True, False)
"""

from __future__ import annotations

import html
import json
import os
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

from . import kernels

if TYPE_CHECKING:  # pragma: no cover
    from .explain import Explanation

__all__ = ["explorer_html", "save_html", "iframe_html", "Frame", "drawn_cells", "MAX_CELLS"]

#: The page refuses configurations that would draw more cells than this (all views together):
#: beyond it the DOM gets slow and the cells too small to point at.
MAX_CELLS = 40_000


def drawn_cells(e: Explanation) -> dict[str, int]:
    """Cells each view of the page draws: padded input, unrolled matrix, outputs, weights, kernels.

    Examples
    --------
    >>> import im2col
    >>> drawn_cells(im2col.explain((1, 1, 5, 5), 3, padding=1))
    {'padded input': 49, 'unrolled matrix': 225, 'output maps': 25, 'weight matrix': 9, 'kernels': 9}
    """
    (pt, pb), (pl, pr) = e.padding
    Rg = e.rows // e.groups
    return {
        "padded input": e.C * (e.H + pt + pb) * (e.W + pl + pr),
        "unrolled matrix": e.rows * e.L,
        "output maps": e.K * e.L,
        "weight matrix": e.K * Rg,
        "kernels": e.K * Rg,
    }


def _check_size(e: Explanation) -> None:
    cells = drawn_cells(e)
    total = sum(cells.values())
    if total > MAX_CELLS:
        parts = ", ".join(f"{name} {n:,}" for name, n in cells.items())
        raise ValueError(
            f"explorer: input {e.C}×{e.H}×{e.W} with {e.K} kernel(s) of {e.kh}×{e.kw} would draw "
            f"{total:,} cells ({parts}), more than the explorer's limit of {MAX_CELLS:,}; use a "
            "smaller input, fewer channels or kernels, or a larger stride"
        )


def _rounded(a: np.ndarray) -> list:
    # Six significant digits keep the page small and still match float32 to its printed precision.
    return np.vectorize(lambda v: float(f"{v:.6g}"), otypes=[float])(a.astype(np.float64)).tolist()


def _payload(e: Explanation, image: int, title: str | None) -> dict:
    e._check_index(image, e.N, "image")
    oh, ow = e.highlight
    k = int(np.argmax(np.abs(e.output[image, :, oh, ow])))
    names = None
    if e.K == 4 and e.kh == e.kw == 3 and e.C == 1:
        if np.array_equal(e.weight, kernels.edge_kernels()):
            names = list(kernels.EDGE_NAMES)
    return {
        "title": title or f"im2col explorer: input {e.C}×{e.H}×{e.W}, {e.K} kernel(s) {e.kh}×{e.kw}",
        "x": _rounded(e.input[image]),
        "w": _rounded(e.weight),
        "stride": list(e.stride),
        "padding": [list(p) for p in e.padding],
        "dilation": list(e.dilation),
        "groups": e.groups,
        "highlight": [k, oh, ow],
        "names": names,
        "maxCells": MAX_CELLS,
        "image": image,
        "N": e.N,
    }


def explorer_html(e: Explanation, *, image: int = 0, title: str | None = None) -> str:
    """The explorer page of one image of an explanation, as a complete HTML document.

    Parameters
    ----------
    e : Explanation
        Made by :func:`im2col.explain`; its stride, padding, dilation and ``highlight`` are the
        page's starting point (the output traced first is the kernel with the largest ``|output|``
        at ``e.highlight``).
    image : int, default 0
        Which image of the batch the page shows.
    title : str, optional
        The page's heading.

    Returns
    -------
    str
        ``<!DOCTYPE html>…``: inline CSS and JS only, no external resource.

    Raises
    ------
    ValueError
        If the configuration would draw more than :data:`MAX_CELLS` cells; the message names each
        view's count and the limit.

    Examples
    --------
    >>> import im2col
    >>> page = explorer_html(im2col.explain((1, 1, 5, 5), 3, padding=1))
    >>> 'data-control="kernel"' in page and 'data-role="output-size"' in page
    True
    """
    _check_size(e)
    data = json.dumps(_payload(e, image, title), separators=(",", ":"))
    # "</" would end the <script> element early; "<\/" is the same string to JSON.
    data = data.replace("</", "<\\/")
    head = html.escape(_payload_title(e, title))
    return _PAGE.replace("__TITLE__", head).replace("__CSS__", _CSS).replace("__DATA__", data).replace("__JS__", _JS)


def _payload_title(e: Explanation, title: str | None) -> str:
    return title or f"im2col explorer: input {e.C}×{e.H}×{e.W}, {e.K} kernel(s) {e.kh}×{e.kw}"


def save_html(e: Explanation, path: str | os.PathLike, **kwargs) -> str:
    """Write :func:`explorer_html` to ``path`` (UTF-8); return the path as a string."""
    page = explorer_html(e, **kwargs)
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return os.fspath(path)


def iframe_html(e: Explanation, *, height: int = 900, **kwargs) -> str:
    """The page inside an ``<iframe srcdoc=…>``, for Jupyter: its CSS and JS cannot touch the
    notebook's, and the notebook's cannot touch it.

    Examples
    --------
    >>> import im2col
    >>> iframe_html(im2col.explain((1, 1, 5, 5), 3)).startswith('<iframe srcdoc="&lt;!DOCTYPE')
    True
    """
    page = explorer_html(e, **kwargs)
    return (
        f'<iframe srcdoc="{html.escape(page, quote=True)}" sandbox="allow-scripts" '
        f'style="width:100%;height:{int(height)}px;border:1px solid #ddd" '
        'title="im2col explorer"></iframe>'
    )


class Frame:
    """The explorer in an iframe, displayed by Jupyter (``_repr_html_``); made by
    :meth:`Explanation.show <im2col.explain.Explanation.show>`."""

    def __init__(self, e: Explanation, *, height: int = 900, image: int = 0) -> None:
        self.html = iframe_html(e, height=height, image=image)

    def _repr_html_(self) -> str:
        return self.html


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>__CSS__</style></head>
<body>
<header><h1>__TITLE__</h1>
<p class="lead">Convolution as one matrix multiplication: each window of the (padded) input is
copied into one <b>column</b> of the unrolled matrix, and the output is <b>weight matrix ×
unrolled matrix</b>. Point at any cell (or use Tab and the arrow keys) to see where it comes from;
click or press Enter to keep the highlight, Escape to let it go.</p></header>
<section id="controls" aria-label="controls">
<label>kernel <input data-control="kernel" size="3" title="3 or 3x2"></label>
<label>stride <input data-control="stride" size="3" title="1, 2 or 2x1"></label>
<label>padding <input data-control="padding" size="5" list="padlist"
 title="a number, PHxPW, same, full or valid"></label>
<datalist id="padlist"><option value="0"><option value="1"><option value="2">
<option value="same"><option value="full"><option value="valid"></datalist>
<label>dilation <input data-control="dilation" size="3" title="1, 2 or 2x1"></label>
<label>mode <select data-control="mode"><option value="forward">im2col + GEMM</option>
<option value="col2im">col2im (fold back)</option>
<option value="transposed">transposed conv</option></select></label>
<span class="play"><button data-role="step-back" title="previous window">◀</button>
<button data-role="play" title="slide the window">▶ play</button>
<button data-role="step" title="next window">▶|</button>
<button data-role="show-all" title="every column filled">all</button>
<input type="range" data-role="position" min="0" max="0" value="0" aria-label="window position">
</span>
<span class="size">output <b data-role="output-size"></b></span>
</section>
<div id="formula" data-role="formula"></div>
<div id="error" data-role="error" role="alert" hidden></div>
<div id="info" data-role="info" aria-live="polite"></div>
<main id="views"></main>
<script type="application/json" id="im2col-data">__DATA__</script>
<script>__JS__</script>
</body></html>
"""


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


_CSS = _asset("explorer.css")
# The page's one script: the argument parsing (explorer_args.js), then the views and their links
# (explorer.js), inside one strict-mode function scope so that only window.im2colExplorer is global.
_JS = '"use strict";\n(function () {\n' + _asset("explorer_args.js") + "\n" + _asset("explorer.js") + "})();\n"
