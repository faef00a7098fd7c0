"""Images for the teaching layer: a digit "3" drawn by code, and loaders for the student's own data.

Nothing is downloaded and no data file ships with the package. The digit is a pen stroke — two
bowls of a "3", slanted a little as handwriting is — rendered with a soft-edged round pen onto a
28×28 grid, white on black with values in [0, 1] like MNIST seen through fastai's ``PILImageBW``.
:func:`digit_batch` makes the blog post's ``(64, 1, 28, 28)`` batch: the same 3 written 64 times with
small seeded random changes (shift, slant, size, stroke width, bowl shapes), so it is the same for
everyone on every run.

To use real pictures instead, :func:`load_image` reads a PNG or JPEG (through Pillow, which
matplotlib already installs) and :func:`mnist` reads the MNIST IDX files from a folder you have
(gzipped or not); :func:`read_idx` reads any IDX file. All three return arrays in the library's
layout, ``(N, C, H, W)`` float32 in [0, 1] for images. docs/data.md shows them at work.

The synthetic digit lives in ``_digits.py``, the IDX/MNIST readers in ``_idx.py``; this module
reads picture files and gathers the public names.

Examples
--------
>>> from im2col import data
>>> three = data.digit_three()
>>> three.shape, three.dtype, float(three.min()), float(three.max())
((28, 28), dtype('float32'), 0.0, 1.0)
>>> data.digit_batch().shape
(64, 1, 28, 28)
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ._digits import ascii_art, digit_batch, digit_three
from ._idx import fspath, mnist, read_idx

__all__ = ["digit_three", "digit_batch", "ascii_art", "load_image", "mnist", "read_idx"]

# --- the student's own data --------------------------------------------------------------------

_MODES = {"grey": "L", "gray": "L", "rgb": "RGB"}
_RESAMPLE = ("nearest", "box", "bilinear", "hamming", "bicubic", "lanczos")
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _size(size: Any) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        pair: tuple[Any, ...] = (size, size)
    elif isinstance(size, (tuple, list)) and len(size) == 2:
        pair = tuple(size)
    else:
        pair = ()
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in pair):
        raise ValueError(
            "load_image(): argument 'size' must be None, a positive int or a pair (H, W) of "
            f"positive ints, got {size!r}"
        )
    return int(pair[0]), int(pair[1])


def load_image(
    path: str | os.PathLike,
    *,
    size: int | tuple[int, int] | None = None,
    mode: str = "grey",
    invert: bool = False,
    resample: str = "bilinear",
) -> np.ndarray:
    """Read a PNG or JPEG (any format Pillow reads) as a float32 batch of one image in [0, 1].

    Parameters
    ----------
    path : str or os.PathLike
        The image file.
    size : int or (int, int), optional
        Resize to ``(H, W)``, or to ``size × size`` for an int (MNIST's digits are 28). Default:
        the file's own size.
    mode : {'grey', 'rgb'}, default 'grey'
        One channel (Pillow's ITU-R 601 luma, ``L = 0.299 R + 0.587 G + 0.114 B``) or three.
        ``'gray'`` is accepted for ``'grey'``.
    invert : bool, default False
        Return ``1 − x``: dark ink on white paper becomes white ink on black, as MNIST's digits.
    resample : {'nearest', 'box', 'bilinear', 'hamming', 'bicubic', 'lanczos'}, default 'bilinear'
        Pillow's resampling filter for ``size`` (it smooths when shrinking, so a large photo
        shrunk to 28×28 does not alias).

    Returns
    -------
    ndarray, shape (1, C, H, W), float32
        ``C`` is 1 for ``'grey'`` and 3 for ``'rgb'``; 8-bit files are divided by 255 and 16-bit
        PNGs by 65535. The layout is the library's (and PyTorch's) ``(N, C, H, W)``, ready for
        :func:`im2col.explain` or :func:`im2col.conv2d`.

    Raises
    ------
    ValueError
        If the file is missing, a folder, not an image or damaged (the message names the file),
        or an argument is not one of the values above.
    ImportError
        If Pillow is not installed.

    Notes
    -----
    The EXIF orientation of a phone photo is applied, so the array is upright as a viewer shows
    it. Transparent pixels are laid on white, as a page shows them. Nothing is downloaded: the
    file is yours.

    Examples
    --------
    A 1×3 grey ramp written to a temporary folder, read back, then resized and as RGB:

    >>> import os, tempfile
    >>> import numpy as np
    >>> from PIL import Image
    >>> from im2col import data
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = os.path.join(tmp.name, "ramp.png")
    >>> Image.fromarray(np.array([[0, 51, 255]], dtype=np.uint8)).save(path)
    >>> x = data.load_image(path)
    >>> x.shape, x.dtype
    ((1, 1, 1, 3), dtype('float32'))
    >>> print(x[0, 0])
    [[0.  0.2 1. ]]
    >>> data.load_image(path, size=(2, 6), mode="rgb", resample="nearest").shape
    (1, 3, 2, 6)
    >>> print(data.load_image(path, invert=True)[0, 0])
    [[1.  0.8 0. ]]
    >>> tmp.cleanup()
    """
    fn = "load_image"
    p = fspath(path, fn)
    if mode not in _MODES:
        raise ValueError(f"{fn}(): argument 'mode' must be 'grey' or 'rgb', got {mode!r}")
    if resample not in _RESAMPLE:
        raise ValueError(
            f"{fn}(): argument 'resample' must be one of {', '.join(map(repr, _RESAMPLE))}, got {resample!r}"
        )
    if not isinstance(invert, (bool, np.bool_)):
        raise TypeError(f"{fn}(): argument 'invert' must be a bool, got {invert!r}")
    hw = _size(size)
    try:  # Pillow is optional (matplotlib installs it): imported only when a picture is read
        from PIL import Image, ImageOps, UnidentifiedImageError
    except ImportError:
        raise ImportError(
            f"{fn}() needs Pillow to read images: pip install pillow (matplotlib installs it too)"
        ) from None
    if os.path.isdir(p):
        raise ValueError(
            f"{fn}(): '{p}' is a folder, not an image file (for a folder of MNIST files use im2col.data.mnist)"
        )
    if not os.path.exists(p):
        raise ValueError(f"{fn}(): no image file at '{p}'")
    try:
        with Image.open(p) as opened:
            opened.load()  # decode now: a truncated file fails here, inside the try
            im = ImageOps.exif_transpose(opened)
    except UnidentifiedImageError:
        raise ValueError(f"{fn}(): '{p}' is not an image file Pillow can read (PNG, JPEG, …)") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{fn}(): cannot read the image '{p}' (damaged or truncated?): {exc}") from None
    if im.mode in _SIXTEEN_BIT:
        # 16-bit grey PNG: convert("L") would clip it, so scale it as floats (Pillow's mode "F").
        im = Image.fromarray(np.clip(np.asarray(im, dtype=np.float32) / 65535, 0, 1))
    elif im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba).convert(_MODES[mode])
    elif im.mode != "F":
        im = im.convert(_MODES[mode])
    if hw is not None and im.size != (hw[1], hw[0]):
        im = im.resize((hw[1], hw[0]), resample=Image.Resampling[resample.upper()])
    a = np.asarray(im, dtype=np.float32)
    if im.mode == "F":
        a = np.clip(a, 0, 1)
    else:
        a = a / np.float32(255)
    if a.ndim == 2:  # (H, W): grey, or a 16-bit file that becomes three equal channels for 'rgb'
        a = a[None] if _MODES[mode] == "L" else np.repeat(a[None], 3, axis=0)
    else:
        a = a.transpose(2, 0, 1)  # (H, W, 3) → (3, H, W)
    if invert:
        a = 1 - a
    return np.ascontiguousarray(a[None], dtype=np.float32)
