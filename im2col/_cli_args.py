"""The ``im2col`` command's parser: its subcommands, their options, and the argument types that check them.

Each option's type (a shape ``1x1x5x5``, a kernel size or name, padding, a pair, a count) turns
the text into what :func:`im2col.explain` takes, or raises ``argparse.ArgumentTypeError`` with a
message that says what was expected. The commands themselves are in ``im2col/__main__.py``.
"""

from __future__ import annotations

import argparse

from . import kernels

#: The command's name, in its usage lines and messages.
PROG = "im2col"


def _ints(text: str, what: str, *, n: int | None = None) -> tuple[int, ...]:
    parts = text.replace("×", "x").replace(",", "x").lower().split("x")
    try:
        vals = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be integers separated by 'x', got {text!r}") from None
    if n is not None and len(vals) not in (1, n):
        raise argparse.ArgumentTypeError(f"{what} must be one integer or {n} separated by 'x', got {text!r}")
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
    if text in ("same", "valid", "full"):
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


def _count(what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"{what} must be a positive integer, got {text!r}")
        return value

    return parse


def _size(text: str) -> int | tuple[int, int]:
    vals = _ints(text, "an image size", n=2)
    if min(vals) < 1:
        raise argparse.ArgumentTypeError(f"an image size must be positive, got {text!r}")
    return vals[0] if len(vals) == 1 else (vals[0], vals[1])


def _add_image_options(p: argparse.ArgumentParser, default_size: str) -> None:
    p.add_argument(
        "--size", type=_size, metavar="HxW",
        help=f"resize the --image file to HxW (or NxN for one number); default {default_size}",
    )  # fmt: skip
    p.add_argument(
        "--invert", action="store_true",
        help="use 1 − x: dark ink on white paper becomes MNIST's white on black",
    )  # fmt: skip


def _position(text: str) -> tuple[int, int]:
    vals = _ints(text, "a position", n=2)
    if len(vals) != 2:
        raise argparse.ArgumentTypeError(f"a position is OH,OW, got {text!r}")
    return vals  # type: ignore[return-value]


def build_parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser, argparse.ArgumentParser]:
    """The command's parser, and its ``demo`` and ``explain`` subparsers (which report bad values)."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="im2col: a convolution is one matrix multiplication.",
        epilog="Run 'im2col demo' for the blog post's walkthrough.",
    )
    sub = p.add_subparsers(dest="command", metavar="{demo,explain,bench}", required=True)

    d = sub.add_parser("demo", help="the blog post's walkthrough: 64 digits, four edge kernels, one GEMM")
    d.add_argument(
        "--save",
        metavar="DIR",
        help="write the pictures (PNG), the sliding window (GIF) and the explorer page (HTML) into "
        "DIR (needs matplotlib)",
    )
    d.add_argument(
        "--image", metavar="PATH",
        help="your own picture (PNG, JPEG; read grey) instead of the drawn digits, or a folder "
        "with the MNIST files (its first 64 digits; train, else test)",
    )  # fmt: skip
    _add_image_options(d, "28x28, the blog post's")
    d.add_argument(
        "--kernels", type=_count("a number of kernels"), metavar="K",
        help="number of kernels: the first K of the four edge kernels, then random ones "
        "(zero-sum, values −1, 0, 1, from --seed) beyond four (default 4)",
    )  # fmt: skip
    d.add_argument("--seed", type=int, default=0, help="seed of the digit batch and random kernels (default 0)")
    d.add_argument("--width", type=int, default=100, help="text width (default 100)")

    e = sub.add_parser(
        "explain",
        help="take one convolution apart",
        description="Explain one convolution: output size, unrolled matrix, GEMM, cost, sparse-matrix view. "
        "The input holds 1, 2, 3, … so each cell can be traced (0 is padding).",
    )
    source = e.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--input",
        type=_shape,
        metavar="SHAPE",
        help="NxCxHxW, CxHxW or HxW, e.g. 1x1x5x5",
    )
    source.add_argument(
        "--image", metavar="PATH",
        help="your own picture (PNG, JPEG) as the input, (1, 1, H, W) grey or with --rgb "
        "(1, 3, H, W); or a folder with the MNIST files (its first digit)",
    )  # fmt: skip
    _add_image_options(e, "the file's own size")
    e.add_argument("--rgb", action="store_true", help="read the --image file as 3 channels")
    e.add_argument(
        "--kernel", type=_kernel, metavar="K",
        help="kernel size (3 or 3x2), a named kernel (top_edge, sobel_x, …) "
        "or 'edges' (the blog post's four); default 'edges' with --kernels",
    )  # fmt: skip
    e.add_argument(
        "--kernels", type=_count("a number of kernels"), metavar="K",
        help="number of kernels: with a kernel size, K kernels holding 1, 2, 3, …; with 'edges', "
        "the first K edge kernels, then random ones (zero-sum, values −1, 0, 1, from --seed) beyond four",
    )  # fmt: skip
    e.add_argument("--seed", type=int, default=0, help="seed of the random kernels (default 0)")
    e.add_argument(
        "--padding", type=_padding, default=0, metavar="P",
        help="int, PHxPW, 'same', 'valid' or 'full' (kernel − 1 on every side)",
    )  # fmt: skip
    e.add_argument("--stride", type=_pair("stride"), default=1, metavar="S", help="int or SHxSW")
    e.add_argument("--dilation", type=_pair("dilation"), default=1, metavar="D", help="int or DHxDW")
    e.add_argument("--groups", type=int, default=1, metavar="G")
    e.add_argument("--highlight", type=_position, metavar="OH,OW", help="output whose receptive field to trace")
    e.add_argument("--matrix", action="store_true", help="also print the sparse-matrix view's sparse matrix C")
    e.add_argument(
        "--route", action="store_true",
        help="print only the route the library's fast path takes for this call, and why",
    )  # fmt: skip
    e.add_argument("--width", type=int, default=100, help="text width (default 100)")
    e.add_argument("--html", metavar="PATH", help="also write the interactive explorer page to PATH")

    sub.add_parser("bench", help="benchmarks against PyTorch (im2col bench --help)", add_help=False)
    return p, d, e
