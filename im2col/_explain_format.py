"""The text toolkit of :func:`im2col.explain`: axis names, number formatting, elision and wrapping.

Every view of an :class:`~im2col.explain.Explanation` (the text report, the HTML tables, the
backward pass) prints its numbers and shapes through these helpers, so that all of them write
``(1, 9, 49)``, ``1.5`` and ``12.0 KiB`` the same way and elide long rows and columns alike.
"""

from __future__ import annotations

import textwrap

import numpy as np

#: What the text and HTML views print in a cell that holds padding (read as 0).
PAD_MARK = "·"
# The names the views give each spatial axis, kernel tap, kernel size, output position and output
# size, keyed by the number of spatial axes (1-D, 2-D, 3-D).
AXES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
TAPS = {1: ("i",), 2: ("i", "j"), 3: ("a", "i", "j")}
KSIZE = {1: ("k",), 2: ("kh", "kw"), 3: ("kd", "kh", "kw")}
POS = {1: ("ol",), 2: ("oh", "ow"), 3: ("od", "oh", "ow")}
OSIZE = {1: ("OL",), 2: ("OH", "OW"), 3: ("OD", "OH", "OW")}


def fmt_bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def fmt_shape(t: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(v) for v in t) + ")"


def fmt_num(v: float, integers: bool) -> str:
    if integers:
        return str(int(v))
    if v == 0:
        return "0"
    s = f"{v:.2f}"
    s = s.rstrip("0").rstrip(".") if "." in s else s
    return "0" if s == "-0" else s


def elide(n: int, keep: int) -> list[int | None]:
    """Indices 0..n-1, or the first and last few with ``None`` for the gap: at most ``keep``."""
    if n <= keep:
        return list(range(n))
    head = (keep - 1 + 1) // 2
    tail = keep - 1 - head
    return list(range(head)) + [None] + list(range(n - tail, n))


def focus(n: int, keep: int, lo: int, hi: int) -> list[int | None]:
    """Indices 0..n-1 elided to about ``keep``, always showing ``lo..hi-1`` and both ends."""
    if n <= keep:
        return list(range(n))
    lo, hi = max(0, lo - 1), min(n, hi + 1)
    ends = max(1, (keep - (hi - lo) - 2) // 2)
    ids = sorted(set(range(min(ends, n))) | set(range(lo, hi)) | set(range(max(0, n - ends), n)))
    out: list[int | None] = []
    for i in ids:
        if out and out[-1] is not None and i != out[-1] + 1:
            out.append(None)
        out.append(i)
    return out


def layout(first: str | None, idx: tuple[str, ...], sizes: tuple[str, ...]) -> str:
    """``c·kh·kw + i·kw + j``: a row-major flat index spelled out with its names."""
    terms = [f"{first}·" + "·".join(sizes)] if first else []
    for a, name in enumerate(idx):
        rest = sizes[a + 1 :]
        terms.append(name + ("·" + "·".join(rest) if rest else ""))
    return " + ".join(terms)


def values_integral(a: np.ndarray) -> bool:
    return a.dtype.kind in "biu" or bool(np.all(np.mod(a, 1) == 0) and np.abs(a).max(initial=0) < 1e6)


def wrap(lines: list[str], width: int) -> str:
    """Join text lines, wrapping prose lines longer than ``width`` (tables are already fitted)."""
    out = []
    for line in lines:
        if len(line) <= width or "│" in line:
            out.append(line)
            continue
        lead = " " * (len(line) - len(line.lstrip()))
        out += textwrap.wrap(line, width, initial_indent="", subsequent_indent=lead + "  ")
    return "\n".join(out)


def dot_terms(ws: np.ndarray, xs: np.ndarray, integral: bool, keep: int = 4) -> str:
    """``w₀·x₀ + w₁·x₁ + … (n terms)``: a dot product written out, elided after ``keep`` terms."""
    parts = [f"{fmt_num(a, integral)}·{fmt_num(b, integral)}" for a, b in zip(ws[:keep], xs)]
    more = f" + … ({len(ws)} terms)" if len(ws) > keep else ""
    return (" + ".join(parts) or "0") + more


def comma_label(t: tuple[int, ...]) -> str:
    """``(2, 0, 1)`` as ``'2,0,1'``: the row and column labels of the matrix tables."""
    return ",".join(str(v) for v in t)
