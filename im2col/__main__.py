"""The ``im2col`` command (also ``python -m im2col``): the seed walkthrough, explanations, benches.

``im2col demo``
    The blog post's example: a batch of 64 digits of 28×28, the four edge kernels, columns
    (64, 9, 676), output 64×4×26×26, explained step by step and checked against PyTorch when it
    is installed. ``--save DIR`` writes the pictures as PNG, the sliding window as an animated GIF and
    the explorer page (needs matplotlib).
``im2col explain --input 1x1x5x5 --kernel 3 --padding 2``
    Any convolution taken apart (:func:`im2col.explain`); ``--html PATH`` also writes the
    interactive explorer page (:mod:`im2col.explorer`).
``im2col bench ...``
    The benchmarks against PyTorch (:mod:`im2col.bench`); arguments are passed on.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import numpy as np

__all__ = ["main"]

_PROG = "im2col"


def _ints(text: str, what: str, *, n: int | None = None) -> tuple[int, ...]:
    parts = text.replace("×", "x").replace(",", "x").lower().split("x")
    try:
        vals = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{what} must be integers separated by 'x', got {text!r}"
        ) from None
    if n is not None and len(vals) not in (1, n):
        raise argparse.ArgumentTypeError(
            f"{what} must be one integer or {n} separated by 'x', got {text!r}"
        )
    if min(vals) < 0:
        raise argparse.ArgumentTypeError(f"{what} must not be negative, got {text!r}")
    return vals


def _shape(text: str) -> tuple[int, ...]:
    vals = _ints(text, "an input shape")
    if not 2 <= len(vals) <= 4 or min(vals) < 1:
        raise argparse.ArgumentTypeError(
            f"an input shape must be HxW, CxHxW or NxCxHxW of positive integers, got {text!r}"
        )
    return vals


def _kernel(text: str):
    from . import kernels

    named = kernels.all_kernels()
    if text in named:
        return named[text]
    if text == "edges":
        return kernels.edge_kernels()
    try:
        vals = _ints(text, "a kernel size", n=2)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"a kernel is a size (3 or 3x2), 'edges' or a name ({', '.join(named)}), got {text!r}"
        ) from None
    if min(vals) < 1:
        raise argparse.ArgumentTypeError(f"a kernel size must be positive, got {text!r}")
    return vals[0] if len(vals) == 1 else vals


def _padding(text: str):
    if text in ("same", "valid"):
        return text
    vals = _ints(text, "padding", n=2)
    return vals[0] if len(vals) == 1 else vals


def _pair(what: str):
    def parse(text: str):
        vals = _ints(text, what, n=2)
        if min(vals) < 1:
            raise argparse.ArgumentTypeError(f"{what} must be positive, got {text!r}")
        return vals[0] if len(vals) == 1 else vals

    return parse


def _position(text: str) -> tuple[int, int]:
    vals = _ints(text, "a position", n=2)
    if len(vals) != 2:
        raise argparse.ArgumentTypeError(f"a position is OH,OW, got {text!r}")
    return vals  # type: ignore[return-value]


def _parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The command's parser, and its ``explain`` subparser (which reports bad explain values)."""
    p = argparse.ArgumentParser(
        prog=_PROG,
        description="im2col: a convolution is one matrix multiplication.",
        epilog="Run 'im2col demo' for the blog post's walkthrough.",
    )
    sub = p.add_subparsers(dest="command", metavar="{demo,explain,bench}", required=True)

    d = sub.add_parser("demo", help="the seed walkthrough: 64 digits, four edge kernels, one GEMM")
    d.add_argument(
        "--save",
        metavar="DIR",
        help="write the pictures (PNG), the sliding window (GIF) and the explorer page (HTML) into "
        "DIR (needs matplotlib)",
    )
    d.add_argument("--seed", type=int, default=0, help="seed of the digit batch (default 0)")
    d.add_argument("--width", type=int, default=100, help="text width (default 100)")

    e = sub.add_parser(
        "explain",
        help="take one convolution apart",
        description="Explain one convolution: output size, unrolled matrix, GEMM, cost, dual view. "
        "The input holds 1, 2, 3, … so each cell can be traced (0 is padding).",
    )
    e.add_argument(
        "--input",
        type=_shape,
        required=True,
        metavar="SHAPE",
        help="NxCxHxW, CxHxW or HxW, e.g. 1x1x5x5",
    )
    e.add_argument(
        "--kernel", type=_kernel, required=True, metavar="K",
        help="kernel size (3 or 3x2), a named kernel (top_edge, sobel_x, …) "
        "or 'edges' (the seed's four)",
    )  # fmt: skip
    e.add_argument(
        "--padding", type=_padding, default=0, metavar="P", help="int, PHxPW, 'same' or 'valid'"
    )
    e.add_argument("--stride", type=_pair("stride"), default=1, metavar="S", help="int or SHxSW")
    e.add_argument(
        "--dilation", type=_pair("dilation"), default=1, metavar="D", help="int or DHxDW"
    )
    e.add_argument("--groups", type=int, default=1, metavar="G")
    e.add_argument(
        "--highlight", type=_position, metavar="OH,OW", help="output whose receptive field to trace"
    )
    e.add_argument(
        "--matrix", action="store_true", help="also print the dual view's sparse matrix C"
    )
    e.add_argument("--width", type=int, default=100, help="text width (default 100)")
    e.add_argument(
        "--html", metavar="PATH", help="also write the interactive explorer page to PATH"
    )

    sub.add_parser("bench", help="benchmarks against PyTorch (im2col bench --help)", add_help=False)
    return p, e


def _save_pictures(directory: str, xb: np.ndarray, explanation) -> list[str]:
    from . import kernels, plots

    os.makedirs(directory, exist_ok=True)
    figures = {
        "padding.png": plots.plot_padded_input(),
        "kernels.png": plots.plot_kernels(),
        "feature_maps.png": plots.plot_feature_maps(
            xb[0, 0], kernels.edge_kernels(), kernels.EDGE_NAMES
        ),
        "unrolled.png": plots.plot_unrolled(explanation, start=8 * explanation.OW, max_columns=104),
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


def _demo(args: argparse.Namespace) -> int:
    from . import data, kernels
    from ._functional import conv2d, im2col
    from .explain import explain

    print("im2col demo: the blog post's convolution, as one matrix multiplication")
    print()
    xb = data.digit_batch(64, seed=args.seed)
    print(
        f"xb: {xb.shape[0]} handwritten-looking 3s drawn by code "
        f"(im2col.data.digit_batch(seed={args.seed}))"
    )
    print(f"xb.shape = {xb.shape}   # the seed's torch.Size([64, 1, 28, 28])")
    w = kernels.edge_kernels()
    print(f"edge_kernels.shape = {w.shape}   # [left_edge, top_edge, diag1_edge, diag2_edge]")
    rows = [
        "  ".join(" ".join(f"{v:2.0f}" for v in w[k, 0, i]).ljust(10) for k in range(4))
        for i in range(3)
    ]
    print("  " + "  ".join(f"{n:<10}" for n in kernels.EDGE_NAMES))
    print("\n".join(("  " + r).rstrip() for r in rows))
    print()
    e = explain(xb, w)
    # Trace an output on image 0's stroke (the strongest top-edge response), not the empty corner.
    top = e.output[0, 1]
    e.highlight = tuple(int(v) for v in np.unravel_index(np.argmax(top), top.shape))  # type: ignore[assignment]
    print(e.to_text(width=args.width))
    print()
    out = conv2d(xb, w)
    cols = im2col(xb, 3)
    print("Result")
    print(f"   im2col.im2col(xb, 3).shape = {cols.shape}")
    print(f"   im2col.conv2d(xb, edge_kernels).shape = {out.shape}")
    print(
        "   max |weight matrix @ columns − im2col.conv2d| = "
        f"{float(np.abs(e.output - out).max()):.3g}"
    )
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        print("   torch is not installed: skipped the check against torch.nn.functional.conv2d")
    else:
        ref = F.conv2d(torch.from_numpy(xb), torch.from_numpy(w)).numpy()
        unf = F.unfold(torch.from_numpy(xb), 3).numpy()
        print(
            f"   torch {torch.__version__}: F.conv2d(xb, edge_kernels).shape = {tuple(ref.shape)}"
        )
        print(f"   max |im2col.conv2d − torch conv2d| = {float(np.abs(out - ref).max()):.3g}")
        print(
            f"   im2col.im2col equals torch's F.unfold exactly: {bool(np.array_equal(cols, unf))}"
        )
    if args.save:
        from .explorer import save_html

        os.makedirs(args.save, exist_ok=True)
        # The page shows image 0 of the batch, traced at the same output as the text.
        page = save_html(e, os.path.join(args.save, "explorer.html"),
                         title="im2col explorer: the blog post's digit and its four edge kernels")  # fmt: skip
        try:
            paths = _save_pictures(args.save, xb, e)
        except ImportError as exc:
            print(f"{_PROG} demo: error: {exc}", file=sys.stderr)
            print(f"Explorer page written to {page}", file=sys.stderr)
            return 1
        paths.append(page)
        print()
        print(f"Pictures and the explorer page written to {args.save}:")
        for p in paths:
            print(f"   {p}")
    return 0


def _explain(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .explain import explain

    try:
        e = explain(args.input, args.kernel, stride=args.stride, padding=args.padding,
                    dilation=args.dilation, groups=args.groups)  # fmt: skip
        if args.highlight is not None:
            oh, ow = args.highlight
            if not (0 <= oh < e.OH and 0 <= ow < e.OW):
                raise ValueError(
                    f"argument --highlight: output position OH,OW must lie in 0..{e.OH - 1},0..{e.OW - 1} "
                    f"(the output is {e.OH}×{e.OW}), got {oh},{ow}"
                )
            e.highlight = args.highlight
        text = e.to_text(width=args.width, conv_matrix=args.matrix)
        page = None
        if args.html:
            from .explorer import explorer_html

            page = explorer_html(e)  # refuses a too-large configuration before writing anything
    except (ValueError, TypeError, IndexError) as exc:
        parser.error(str(exc))  # exits with status 2
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
        from . import bench

        return int(bench.main(argv[1:]) or 0)
    parser, explain_parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            return _demo(args)
        return _explain(args, explain_parser)
    except BrokenPipeError:  # `im2col demo | head`: the reader left, which is not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
