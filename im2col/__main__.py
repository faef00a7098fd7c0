"""The ``im2col`` command (also ``python -m im2col``): the blog post's walkthrough, explanations, benches.

``im2col demo``
    The blog post's example: a batch of 64 digits of 28×28, the four edge kernels, columns
    (64, 9, 676), output 64×4×26×26, explained step by step and checked against PyTorch when it
    is installed. ``--save DIR`` writes the pictures as PNG, the sliding window as an animated GIF and
    the explorer page (needs matplotlib). ``--image PATH`` runs it on your picture (grey, 28×28)
    or on the first 64 digits of an MNIST folder (:mod:`im2col.data`); ``--kernels K`` takes K
    kernels instead of four.
``im2col explain --input 1x1x5x5 --kernel 3 --padding 2``
    Any convolution taken apart (:func:`im2col.explain`); ``--html PATH`` also writes the
    interactive explorer page (:mod:`im2col.explorer`). ``--image PATH`` explains your picture
    (or an MNIST folder's first digit) instead of a made-up input; ``--padding full``;
    ``--kernels K``.
``im2col bench ...``
    The benchmarks against PyTorch (:mod:`im2col.bench`); arguments are passed on.

The parser and its argument types are in ``im2col/_cli_args.py``; this module runs the commands.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import data, kernels, plots
from ._cli_args import PROG, build_parser
from ._functional import conv2d, im2col
from ._idx import Idx, mnist_file
from .explain import explain
from .explorer import _check_size, explorer_html, save_html

__all__ = ["main"]


def _edge_stack(count: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """The first ``count`` edge kernels, then seeded random zero-sum 3×3 kernels of −1, 0, 1."""
    w, names = kernels.edge_kernels()[:count], list(kernels.EDGE_NAMES[:count])
    if count > len(names):
        extra = count - len(names)
        rng = np.random.default_rng(seed)
        made = []
        for _ in range(extra):
            # as many 1s as −1s: zero-sum, so it answers to edges rather than to brightness and
            # its map shares the edge maps' colour scale
            k = int(rng.integers(1, 5))
            made.append(rng.permutation(np.array([1] * k + [-1] * k + [0] * (9 - 2 * k))))
        w = np.concatenate([w, np.array(made, dtype=np.float32).reshape(extra, 1, 3, 3)])
        names += [f"random_{k}" for k in range(1, extra + 1)]
    return w, names


def _pick_kernels(kernel: Any, count: int | None, seed: int, channels: int, groups: int) -> Any:
    """What ``--kernel`` and ``--kernels`` ask for, as explain()'s weight_or_kernel_size."""
    if count is None:
        if kernel is None:
            raise ValueError("argument --kernel is required (or --kernels K for K edge kernels)")
        return kernel
    if kernel is None or (isinstance(kernel, np.ndarray) and kernel.ndim == 4):  # 'edges'
        return _edge_stack(count, seed)[0]
    if isinstance(kernel, np.ndarray):
        if count == 1:
            return kernel
        raise ValueError(
            f"argument --kernels: a named kernel is one kernel, got --kernels {count}; use "
            "--kernel edges or a kernel size (3 or 3x2) for several"
        )
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    if groups < 1 or channels % groups:
        return kh if kh == kw else (kh, kw)  # explain() reports the bad --groups
    cg = channels // groups
    # K kernels holding 1, 2, 3, …, as explain() fills one: every weight can be traced
    return np.arange(1, count * cg * kh * kw + 1, dtype=np.float32).reshape(count, cg, kh, kw)


def _read_image(args: argparse.Namespace, *, n: int, default_size: int | None) -> tuple[np.ndarray, str]:
    """The --image file (or MNIST folder) as (N, C, H, W) float32, and a line saying what it is."""
    path = args.image
    if os.path.isdir(path):
        if args.size is not None or getattr(args, "rgb", False):
            raise ValueError(
                f"argument --image: '{path}' is an MNIST folder, whose digits are 28×28 grey; "
                "--size and --rgb apply to an image file"
            )
        has_train = mnist_file(path, "train", "images") is not None
        has_test = mnist_file(path, "test", "images") is not None
        split = "test" if has_test and not has_train else "train"
        images = mnist_file(path, split, "images")
        if images is not None:  # a folder with fewer than n digits gives them all
            header = Idx(images, "mnist")  # reads the header only; errors name the file
            header.close()
            n = min(n, header.dims[0] if header.dims else 0)
        x, labels = data.mnist(path, split=split, n=n)  # a missing file: the error lists the names
        if args.invert:
            x = 1 - x
        shown = ", ".join(str(v) for v in labels[:10]) + (", …" if len(labels) > 10 else "")
        if len(x) == 1:
            what = f"the first MNIST {split} digit in '{path}' (label {shown})"
        else:
            what = f"the first {len(x)} MNIST {split} digits in '{path}' (labels {shown})"
        return x, what
    size = args.size if args.size is not None else default_size
    mode = "rgb" if getattr(args, "rgb", False) else "grey"
    x = data.load_image(path, size=size, mode=mode, invert=args.invert)
    how = (
        f"{mode}"
        + (", inverted" if args.invert else "")
        + (f", resized to {x.shape[2]}×{x.shape[3]}" if size is not None else "")
    )
    return x, f"your image '{path}' ({how})"


def _save_pictures(directory: str, xb: np.ndarray, w: np.ndarray, names: list[str], explanation: Any) -> list[str]:
    os.makedirs(directory, exist_ok=True)
    e = explanation
    figures = {
        "padding.png": plots.plot_padded_input(),
        "kernels.png": plots.plot_kernels(),
        "feature_maps.png": plots.plot_feature_maps(xb[0, 0], w, names),
        # from output row OH // 3 on (row 8 of the blog post's 26), where a digit's strokes are
        "unrolled.png": plots.plot_unrolled(e, start=(e.OH // 3) * e.OW, max_columns=104),
        "sliding_window.png": plots.plot_sliding_window(padding=1, positions=[0, 7, 24]),
    }
    for k, fig in enumerate(plots.sliding_window_frames(padding=1, positions=range(0, 25, 8))):
        figures[f"sliding_window_{k:02d}.png"] = fig
    paths = []
    for name, fig in figures.items():
        path = os.path.join(directory, name)
        fig.savefig(path, dpi=100)
        paths.append(path)
    paths.append(plots.save_sliding_window_gif(os.path.join(directory, "sliding_window.gif"), padding=1))
    return paths


def _print_kernels(w: np.ndarray, names: list[str], per_line: int = 6) -> None:
    """Kernels side by side under their names, ``per_line`` at a time (integers, or 2 decimals)."""
    integral = bool(np.all(w == np.round(w)))
    cell = "{:2.0f}" if integral else "{:5.2f}"
    kw = w.shape[3]
    width = max(kw * len(cell.format(0.0)) + kw - 1, 10)
    for start in range(0, len(names), per_line):
        block = range(start, min(start + per_line, len(names)))
        print("  " + "  ".join(f"{names[k]:<{width}}" for k in block).rstrip())
        for i in range(w.shape[2]):
            row = "  ".join(" ".join(cell.format(v) for v in w[k, 0, i]).ljust(width) for k in block)
            print(("  " + row).rstrip())


def _demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        if args.image is None:
            if args.size is not None or args.invert:
                raise ValueError("--size and --invert apply to an --image")
            xb, what = data.digit_batch(64, seed=args.seed), None
        else:
            xb, what = _read_image(args, n=64, default_size=28)
            if len(xb) == 0:
                raise ValueError(f"argument --image: the MNIST files in '{args.image}' hold no digits")
        if args.kernels is None:
            w, names = kernels.edge_kernels(), list(kernels.EDGE_NAMES)
        else:
            w, names = _edge_stack(args.kernels, args.seed)
        e = explain(xb, w)
        if args.save:
            try:
                _check_size(e)  # refuse a too-large page before printing anything
            except ValueError as exc:
                hint = "; --size HxW shrinks your image" if args.image and not os.path.isdir(args.image) else ""
                raise ValueError(f"{exc}{hint}") from None
    except ValueError as exc:
        parser.error(str(exc))  # exits with status 2, no traceback

    print("im2col demo: the blog post's convolution, as one matrix multiplication")
    print()
    if what is None:
        print(f"xb: {xb.shape[0]} handwritten-looking 3s drawn by code (im2col.data.digit_batch(seed={args.seed}))")
        print(f"xb.shape = {xb.shape}   # the blog post's torch.Size([64, 1, 28, 28])")
    else:
        print(f"xb: {what}")
        print(f"xb.shape = {xb.shape}")
    K = len(names)
    if args.kernels is None:
        print(f"edge_kernels.shape = {w.shape}   # [left_edge, top_edge, diag1_edge, diag2_edge]")
    else:
        which = ", ".join(names) if K <= 4 else f"the four edge kernels, then {K - 4} random"
        print(f"kernels.shape = {w.shape}   # --kernels {K}: {which}")
    _print_kernels(w, names)
    print()
    # Trace an output on image 0's stroke (the strongest top-edge response), not the empty corner.
    top = e.output[0, min(1, K - 1)]
    e.highlight = tuple(int(v) for v in np.unravel_index(np.argmax(top), top.shape))  # type: ignore[assignment]
    print(e.to_text(width=args.width))
    print()
    out = conv2d(xb, w)
    cols = im2col(xb, 3)
    wname = "edge_kernels" if args.kernels is None else "kernels"
    print("Result")
    print(f"   im2col.im2col(xb, 3).shape = {cols.shape}")
    print(f"   im2col.conv2d(xb, {wname}).shape = {out.shape}")
    print(f"   max |weight matrix @ columns − im2col.conv2d| = {float(np.abs(e.output - out).max()):.3g}")
    try:  # torch is optional: the check against it runs only where it is installed
        import torch
        import torch.nn.functional as F
    except ImportError:
        print("   torch is not installed: skipped the check against torch.nn.functional.conv2d")
    else:
        ref = F.conv2d(torch.from_numpy(xb), torch.from_numpy(w)).numpy()
        unf = F.unfold(torch.from_numpy(xb), 3).numpy()
        print(f"   torch {torch.__version__}: F.conv2d(xb, {wname}).shape = {tuple(ref.shape)}")
        print(f"   max |im2col.conv2d − torch conv2d| = {float(np.abs(out - ref).max()):.3g}")
        print(f"   im2col.im2col equals torch's F.unfold exactly: {bool(np.array_equal(cols, unf))}")
    if args.save:
        os.makedirs(args.save, exist_ok=True)
        if what is None and args.kernels is None:
            title = "im2col explorer: the blog post's digit and its four edge kernels"
        else:
            source = "the drawn digit" if what is None else os.path.basename(os.path.normpath(args.image))
            title = f"im2col explorer: {source} and {K} kernel(s)"
        # The page shows image 0 of the batch, traced at the same output as the text.
        page = save_html(e, os.path.join(args.save, "explorer.html"), title=title)
        try:
            paths = _save_pictures(args.save, xb, w, names, e)
        except ImportError as exc:
            print(f"{PROG} demo: error: {exc}", file=sys.stderr)
            print(f"Explorer page written to {page}", file=sys.stderr)
            return 1
        paths.append(page)
        print()
        print(f"Pictures and the explorer page written to {args.save}:")
        for p in paths:
            print(f"   {p}")
    return 0


def _explain(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    what = None
    try:
        if args.image is not None:
            x, what = _read_image(args, n=1, default_size=None)
            if len(x) == 0:
                raise ValueError(f"argument --image: the MNIST files in '{args.image}' hold no digits")
        else:
            if args.size is not None or args.invert or args.rgb:
                raise ValueError("--size, --invert and --rgb apply to an --image")
            x = args.input
        channels = x.shape[1] if args.image is not None else (args.input[-3] if len(args.input) >= 3 else 1)
        weight = _pick_kernels(args.kernel, args.kernels, args.seed, channels, args.groups)
        e = explain(x, weight, stride=args.stride, padding=args.padding,
                    dilation=args.dilation, groups=args.groups)  # fmt: skip
        if args.highlight is not None:
            oh, ow = args.highlight
            if not (0 <= oh < e.OH and 0 <= ow < e.OW):
                raise ValueError(
                    f"argument --highlight: output position OH,OW must lie in 0..{e.OH - 1},0..{e.OW - 1} "
                    f"(the output is {e.OH}×{e.OW}), got {oh},{ow}"
                )
            e.highlight = args.highlight
        if args.route:
            text = "\n".join(textwrap.fill(s, args.width, subsequent_indent="  ") for s in e.route_lines())
        else:
            text = e.to_text(width=args.width, conv_matrix=args.matrix)
        page = None
        if args.html:
            try:
                page = explorer_html(e)  # refuses a too-large configuration before writing anything
            except ValueError as exc:
                hint = "; --size HxW shrinks your image" if args.image and not os.path.isdir(args.image) else ""
                raise ValueError(f"{exc}{hint}") from None
    except (ValueError, TypeError, IndexError) as exc:
        parser.error(str(exc))  # exits with status 2
    if what is not None:
        print(f"input: {what}, shape {x.shape}")
        print()
    print(text)
    if page is not None:
        with open(args.html, "w", encoding="utf-8") as f:
            f.write(page)
        print()
        print(f"Explorer page written to {args.html}: open it in a browser")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``im2col`` command on ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    for stream in (sys.stdout, sys.stderr):  # never crash on a terminal that cannot show "·" or "→"
        try:
            stream.reconfigure(errors="replace")  # type: ignore[union-attr]
        except (AttributeError, ValueError):
            pass
    if argv and argv[0] == "bench":
        from . import bench  # only here: the benchmarks are no part of the teaching commands' start-up

        return int(bench.main(argv[1:]) or 0)
    parser, demo_parser, explain_parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            return _demo(args, demo_parser)
        return _explain(args, explain_parser)
    except BrokenPipeError:  # `im2col demo | head`: the reader left, which is not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
