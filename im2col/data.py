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

import gzip
import math
import os
import zlib
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = ["digit_three", "digit_batch", "ascii_art", "load_image", "mnist", "read_idx"]


def _stroke(
    *,
    shift: tuple[float, float] = (0.0, 0.0),
    slant: float = 0.18,
    scale: float = 1.0,
    angle: float = 0.0,
    upper: tuple[float, float, float] = (-155.0, 125.0, 1.0),
    lower: tuple[float, float, float] = (-125.0, 150.0, 1.0),
) -> np.ndarray:
    """Points (n, 2) as (row, col) along the pen path of a "3" centred on a 28×28 grid.

    ``upper`` and ``lower`` are (start angle, end angle, width factor) of the two bowls, in degrees
    measured clockwise on screen from the rightward direction (so −90° is the top of a bowl).
    """
    pieces = []
    # Upper bowl: centre (row 9.6, col 14), from its upper left, over the top, round to the middle.
    for (start, stop, wide), (cy, cx, ry, rx) in (
        (upper, (9.6, 13.8, 4.9, 5.2)),
        (lower, (18.6, 14.2, 5.6, 6.0)),
    ):
        t = np.radians(np.linspace(start, stop, 64))
        pieces.append(np.stack([cy + ry * np.sin(t), cx + wide * rx * np.cos(t)], axis=1))
    pts = np.concatenate(pieces)
    centre = np.array([14.0, 14.0])
    rel = pts - centre
    rel[:, 1] -= slant * rel[:, 0]  # handwriting leans right: higher rows move right
    a = np.radians(angle)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return centre + scale * rel @ rot.T + np.asarray(shift)


def _render(points: np.ndarray, size: int, pen: float, softness: float = 1.1) -> np.ndarray:
    """Ink of a round pen of radius ``pen`` dragged along ``points``, on a size×size grid."""
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    grid = np.stack([rows.ravel(), cols.ravel()], axis=1)  # (size², 2)
    # Distance from each pixel centre to the nearest point of the densely sampled path.
    d = np.sqrt(((grid[:, None, :] - points[None, :, :]) ** 2).sum(-1)).min(axis=1)
    ink = np.clip((pen + softness - d) / softness, 0.0, 1.0)
    return ink.reshape(size, size).astype(np.float32)


def digit_three(size: int = 28) -> np.ndarray:
    """A handwritten-looking digit "3", drawn by code.

    Parameters
    ----------
    size : int, default 28
        Side of the square image in pixels (the drawing is scaled from MNIST's 28).

    Returns
    -------
    ndarray, shape (size, size), float32
        Ink in [0, 1]: 0 is the black background, 1 the white stroke.

    Examples
    --------
    >>> from im2col import data
    >>> print(data.ascii_art(data.digit_three()[3:26, 5:23]))
             :--.
           =#@@@@#-
         .#@@@@@@@@=
        .#@@@%**%@@@:
        *@@@=   .#@@+
        *@@-     -@@#
        .+-      :@@#
                 -@@*
                .#@@=
         :=*#%%##@@%.
        .%@@@@@@@@@-
        :@@@@@@@@@@-
         #%@@@@@#@@#
           -==-:.%@@:
                 +@@=
                 +@@=
                 #@@-
      =+.       -@@@.
     -@@+      :%@@+
     :@@@+.  .=@@@%.
      +@@@%##@@@@%:
       *@@@@@@@@#:
        =#@@@@*=
    """
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 8:
        raise ValueError(f"digit_three(): argument 'size' must be an int ≥ 8, got {size!r}")
    points = _stroke()
    if size != 28:
        points = points * (size / 28)
    img = _render(points, int(size), pen=0.95 * size / 28)
    return img / img.max()


def digit_batch(n: int = 64, seed: int = 0, size: int = 28) -> np.ndarray:
    """The blog post's batch: ``n`` handwritten-looking 3s, each a little different.

    Each image redraws the "3" of :func:`digit_three` with seeded random changes: a shift of up to
    2 pixels, slant, rotation of up to 8°, size ±10 %, stroke width, and where each bowl starts and
    ends. The same ``seed`` gives the same batch on every machine.

    Parameters
    ----------
    n : int, default 64
        Number of images (the blog post's fastai batch size is 64).
    seed : int, default 0
        Seed of :func:`numpy.random.default_rng`.
    size : int, default 28

    Returns
    -------
    ndarray, shape (n, 1, size, size), float32
        Values in [0, 1]; the layout (N, C, H, W) with one channel, as the blog post's ``xb``.

    Examples
    --------
    >>> from im2col import data
    >>> xb = data.digit_batch()
    >>> xb.shape, xb.dtype
    ((64, 1, 28, 28), dtype('float32'))
    >>> bool((data.digit_batch(seed=1) == data.digit_batch(seed=1)).all())
    True
    """
    for name, value, low in (("n", n, 0), ("seed", seed, 0), ("size", size, 8)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ValueError(f"digit_batch(): argument '{name}' must be an int ≥ {low}, got {value!r}")
    return _digit_batch(int(n), int(seed), int(size)).copy()


@lru_cache(maxsize=4)
def _digit_batch(n: int, seed: int, size: int) -> np.ndarray:
    # Cached (the demo, the notebook and the tests ask for the same batch); callers get a copy.
    rng = np.random.default_rng(seed)
    out = np.empty((n, 1, size, size), dtype=np.float32)
    for k in range(n):
        u = rng.uniform
        points = _stroke(
            shift=(u(-2, 2), u(-2, 2)),
            slant=u(0.0, 0.35),
            scale=u(0.9, 1.1),
            angle=u(-8, 8),
            upper=(u(-175, -140), u(110, 135), u(0.85, 1.15)),
            lower=(u(-135, -110), u(135, 170), u(0.85, 1.15)),
        )
        img = _render(points * (size / 28), size, pen=u(0.7, 1.3) * size / 28)
        out[k, 0] = img / img.max()
    return out


def ascii_art(image: np.ndarray) -> str:
    """A 2-D array of values in [0, 1] as text, one character per pixel (`` .:-=+*#%@``).

    Examples
    --------
    >>> import numpy as np
    >>> from im2col import data
    >>> print(data.ascii_art(np.array([[0.0, 0.5, 1.0]])))
     =@
    """
    a = np.asarray(image, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"ascii_art(): argument 'image' must be 2-D (H, W), got shape {a.shape}")
    ramp = " .:-=+*#%@"
    idx = np.clip(np.rint(a * (len(ramp) - 1)), 0, len(ramp) - 1).astype(int)
    return "\n".join("".join(ramp[i] for i in row).rstrip() for row in idx)


# --- the student's own data --------------------------------------------------------------------

_MODES = {"grey": "L", "gray": "L", "rgb": "RGB"}
_RESAMPLE = ("nearest", "box", "bilinear", "hamming", "bicubic", "lanczos")
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _fspath(path: Any, fn: str) -> str:
    try:
        return os.fspath(path)
    except TypeError:
        raise TypeError(f"{fn}(): argument 'path' must be a str or os.PathLike, got {type(path).__name__}") from None


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
    p = _fspath(path, fn)
    if mode not in _MODES:
        raise ValueError(f"{fn}(): argument 'mode' must be 'grey' or 'rgb', got {mode!r}")
    if resample not in _RESAMPLE:
        raise ValueError(
            f"{fn}(): argument 'resample' must be one of {', '.join(map(repr, _RESAMPLE))}, got {resample!r}"
        )
    if not isinstance(invert, (bool, np.bool_)):
        raise TypeError(f"{fn}(): argument 'invert' must be a bool, got {invert!r}")
    hw = _size(size)
    try:
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


#: IDX type codes (the third byte of the magic number) and the big-endian dtype each stores.
_IDX_TYPES: dict[int, tuple[str, str]] = {
    0x08: (">u1", "unsigned bytes"),
    0x09: (">i1", "signed bytes"),
    0x0B: (">i2", "int16"),
    0x0C: (">i4", "int32"),
    0x0D: (">f4", "float32"),
    0x0E: (">f8", "float64"),
}


def _describe_magic(magic: bytes) -> str:
    value = int.from_bytes(magic, "big")
    if magic[:2] == b"\0\0" and magic[2] in _IDX_TYPES:
        dims = magic[3]
        return f"0x{value:08X} ({_IDX_TYPES[magic[2]][1]}, {dims} dimension{'s' * (dims != 1)})"
    return f"0x{value:08X}"


class _Idx:
    """An open IDX file: its header read, its data next (gzip decompressed on the fly)."""

    def __init__(self, path: str, fn: str) -> None:
        self.path, self.fn = path, fn
        if os.path.isdir(path):
            raise ValueError(f"{fn}(): '{path}' is a folder, not an IDX file")
        if not os.path.exists(path):
            raise ValueError(f"{fn}(): no IDX file at '{path}'")
        with open(path, "rb") as f:
            self.gzipped = f.read(2) == b"\x1f\x8b"  # by content: browsers often gunzip but keep ".gz"
        self.file = gzip.open(path, "rb") if self.gzipped else open(path, "rb")  # noqa: SIM115
        try:
            magic = self._read(4, "the 4-byte magic number")
            if magic[:2] != b"\0\0" or magic[2] not in _IDX_TYPES:
                codes = ", ".join(f"0x{c:02X} {name}" for c, (_, name) in _IDX_TYPES.items())
                raise ValueError(
                    f"{fn}(): '{path}' is not an IDX file: its magic number is "
                    f"{_describe_magic(magic)}; an IDX file starts with two zero bytes, a type "
                    f"code ({codes}) and the number of dimensions"
                )
            self.magic = magic
            self.dtype = np.dtype(_IDX_TYPES[magic[2]][0])
            nd = magic[3]
            self.dims = tuple(int(v) for v in np.frombuffer(self._read(4 * nd, f"the {nd} dimension sizes"), ">u4"))
        except BaseException:
            self.file.close()
            raise

    def _read(self, nbytes: int, what: str) -> bytes:
        try:
            buf = self.file.read(nbytes)
        except EOFError:
            buf = None
        except (OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
            raise ValueError(f"{self.fn}(): '{self.path}' is a damaged gzip file: {exc}") from None
        if buf is None or len(buf) < nbytes:
            got = "the gzip stream ends early" if buf is None else f"only {len(buf):,} bytes are left"
            raise ValueError(f"{self.fn}(): '{self.path}' is truncated: {what} needs {nbytes:,} bytes, but {got}")
        return buf

    def data(self, n: int | None) -> np.ndarray:
        shape = self.dims if n is None else (n, *self.dims[1:])
        count = math.prod(shape)
        name = _IDX_TYPES[self.magic[2]][1]
        buf = self._read(count * self.dtype.itemsize, f"the data, shape {shape} of {name},")
        if n is None and self.gzipped:
            try:
                self.file.read(1)  # at the end of the stream gzip checks its CRC: damage shows here
            except EOFError:
                pass  # a gzip stream cut inside its 8-byte trailer: the data itself is whole
            except (OSError, zlib.error) as exc:
                raise ValueError(f"{self.fn}(): '{self.path}' is a damaged gzip file: {exc}") from None
        return np.frombuffer(buf, self.dtype).reshape(shape).astype(self.dtype.newbyteorder("="))

    def close(self) -> None:
        self.file.close()


def _check_n(n: Any, fn: str) -> int | None:
    if n is None:
        return None
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"{fn}(): argument 'n' must be None or an int ≥ 0, got {n!r}")
    return int(n)


def read_idx(path: str | os.PathLike, *, n: int | None = None) -> np.ndarray:
    """Read an IDX file (MNIST's format), gzipped or not, as a NumPy array.

    Parameters
    ----------
    path : str or os.PathLike
        The file. Whether it is gzipped is read from its first two bytes, not its name.
    n : int, optional
        Read only the first ``n`` entries along the first axis (the rest is not decompressed).

    Returns
    -------
    ndarray
        The shape and type the header announces (unsigned bytes for MNIST), in native byte order.

    Raises
    ------
    ValueError
        If the file is missing, not an IDX file (wrong magic number), truncated or a damaged
        gzip file, or ``n`` exceeds the first dimension. The message names the file.

    Notes
    -----
    The format (LeCun et al.): a big-endian magic number ``0x0000TTDD`` — two zero bytes, a
    type code ``TT`` (0x08 unsigned byte, 0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D float32,
    0x0E float64) and the number of dimensions ``DD`` — then ``DD`` big-endian uint32 sizes, then
    the values, big-endian, in C order. MNIST's images are ``0x00000803`` (2051), its labels
    ``0x00000801`` (2049).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from im2col import data
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = os.path.join(tmp.name, "tiny-idx2-ubyte")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(bytes([0, 0, 0x08, 2]) + np.array([2, 3], ">u4").tobytes() + bytes(range(6)))
    >>> data.read_idx(path)
    array([[0, 1, 2],
           [3, 4, 5]], dtype=uint8)
    >>> data.read_idx(path, n=1).shape
    (1, 3)
    >>> tmp.cleanup()
    """
    fn = "read_idx"
    p = _fspath(path, fn)
    n = _check_n(n, fn)
    f = _Idx(p, fn)
    try:
        if n is not None and (not f.dims or n > f.dims[0]):
            have = f"{f.dims[0]:,} entries" if f.dims else "a single value (0 dimensions)"
            raise ValueError(f"{fn}(): argument 'n' asks for {n:,} entries, but '{p}' holds {have}")
        return f.data(n)
    finally:
        f.close()


_MNIST_PREFIX = {"train": "train", "test": "t10k"}


def _mnist_candidates(split: str, kind: str) -> list[str]:
    prefix, dims = _MNIST_PREFIX[split], 3 if kind == "images" else 1
    names = [f"{prefix}-{kind}-idx{dims}-ubyte", f"{prefix}-{kind}.idx{dims}-ubyte"]
    return [name + ext for name in names for ext in ("", ".gz")]


def _mnist_file(folder: str, split: str, kind: str) -> str | None:
    """The path of one MNIST file in ``folder`` (plain or gzipped), or None."""
    for name in _mnist_candidates(split, kind):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return None


def mnist(path: str | os.PathLike, *, split: str = "train", n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read MNIST (or Fashion-MNIST, same files) from a folder you have: images and labels.

    Parameters
    ----------
    path : str or os.PathLike
        The folder holding ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte`` (for
        ``split='train'``) or ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (for
        ``'test'``), each plain or gzipped (``.gz``); the names with a dot,
        ``train-images.idx3-ubyte``, are found too. Nothing is downloaded.
    split : {'train', 'test'}, default 'train'
        The 60,000 training or the 10,000 test digits.
    n : int, optional
        Only the first ``n`` images and labels (the rest of the files is not read).

    Returns
    -------
    images : ndarray, shape (N, 1, 28, 28), float32
        Values in [0, 1] (bytes / 255), white digits on black, the layout of
        :func:`digit_batch`: ``mnist(folder, n=64)[0]`` can replace the drawn threes.
    labels : ndarray, shape (N,), int64
        The digit of each image.

    Raises
    ------
    ValueError
        If the folder or a file is missing, a file's magic number is not MNIST's (2051 for the
        images, 2049 for the labels), a file is truncated or a damaged gzip file, the images and
        labels do not have the same count, or ``n`` exceeds it. The message names the file.

    See Also
    --------
    read_idx : any IDX file.

    Examples
    --------
    Three tiny "digits" (a horizontal bar) written as IDX files, the images gzipped:

    >>> import gzip, os, tempfile
    >>> import numpy as np
    >>> from im2col import data
    >>> tmp = tempfile.TemporaryDirectory()
    >>> pixels = np.zeros((3, 28, 28), np.uint8)
    >>> pixels[:, 14, 4:24] = 255
    >>> header = bytes([0, 0, 0x08, 3]) + np.array([3, 28, 28], ">u4").tobytes()
    >>> with gzip.open(os.path.join(tmp.name, "train-images-idx3-ubyte.gz"), "wb") as f:
    ...     _ = f.write(header + pixels.tobytes())
    >>> with open(os.path.join(tmp.name, "train-labels-idx1-ubyte"), "wb") as f:
    ...     _ = f.write(bytes([0, 0, 0x08, 1]) + np.array([3], ">u4").tobytes() + bytes([7, 2, 1]))
    >>> images, labels = data.mnist(tmp.name)
    >>> images.shape, images.dtype, float(images.max()), labels.tolist()
    ((3, 1, 28, 28), dtype('float32'), 1.0, [7, 2, 1])
    >>> data.mnist(tmp.name, n=2)[1].dtype
    dtype('int64')
    >>> tmp.cleanup()
    """
    fn = "mnist"
    folder = _fspath(path, fn)
    if split not in _MNIST_PREFIX:
        raise ValueError(f"{fn}(): argument 'split' must be 'train' or 'test', got {split!r}")
    n = _check_n(n, fn)
    if not os.path.isdir(folder):
        what = "is a file; pass the folder that holds the MNIST files" if os.path.exists(folder) else "does not exist"
        raise ValueError(f"{fn}(): argument 'path' must be a folder, but '{folder}' {what}")
    paths = {}
    for kind in ("images", "labels"):
        found = _mnist_file(folder, split, kind)
        if found is None:
            names = ", ".join(_mnist_candidates(split, kind))
            raise ValueError(
                f"{fn}(): no MNIST {split} {kind} in '{folder}': looked for {names} "
                "(nothing is downloaded: put the files there)"
            )
        paths[kind] = found
    expected = {"images": (b"\0\0\x08\x03", 2051), "labels": (b"\0\0\x08\x01", 2049)}
    files = {}
    try:
        for kind, p in paths.items():
            f = files[kind] = _Idx(p, fn)
            magic, number = expected[kind]
            if f.magic != magic:
                raise ValueError(
                    f"{fn}(): '{p}' is not an MNIST {kind[:-1]} file: its magic number is "
                    f"{_describe_magic(f.magic)}, expected {_describe_magic(magic)} = {number}"
                )
        count, nlabels = files["images"].dims[0], files["labels"].dims[0]
        if count != nlabels:
            raise ValueError(
                f"{fn}(): '{paths['images']}' holds {count:,} images but '{paths['labels']}' "
                f"holds {nlabels:,} labels; they must come from the same split"
            )
        if n is not None and n > count:
            raise ValueError(f"{fn}(): argument 'n' asks for {n:,} images, but '{paths['images']}' holds {count:,}")
        pixels = files["images"].data(n)
        labels = files["labels"].data(n)
    finally:
        for f in files.values():
            f.close()
    images = (pixels.astype(np.float32) / np.float32(255))[:, None]
    return images, labels.astype(np.int64)
