"""Readers of the IDX format, MNIST's: :func:`read_idx` for any IDX file, :func:`mnist` for the dataset's folder.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions), the
dimension sizes as big-endian uint32, then the values, row-major and big-endian; MNIST ships its
images and labels this way, often gzipped. :class:`Idx` reads the header first and the data on
request, so every error (a folder, a truncated or damaged file, a wrong magic number) names the
file and what was expected. Re-exported by :mod:`im2col.data`.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from typing import Any

import numpy as np


def fspath(path: Any, fn: str) -> str:
    """``os.fspath(path)``, or a TypeError that names the reader ``fn`` (load_image uses it too)."""
    try:
        return os.fspath(path)
    except TypeError:
        raise TypeError(f"{fn}(): argument 'path' must be a str or os.PathLike, got {type(path).__name__}") from None


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


class Idx:
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


def check_n(n: Any, fn: str) -> int | None:
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
    p = fspath(path, fn)
    n = check_n(n, fn)
    f = Idx(p, fn)
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


def mnist_file(folder: str, split: str, kind: str) -> str | None:
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
    folder = fspath(path, fn)
    if split not in _MNIST_PREFIX:
        raise ValueError(f"{fn}(): argument 'split' must be 'train' or 'test', got {split!r}")
    n = check_n(n, fn)
    if not os.path.isdir(folder):
        what = "is a file; pass the folder that holds the MNIST files" if os.path.exists(folder) else "does not exist"
        raise ValueError(f"{fn}(): argument 'path' must be a folder, but '{folder}' {what}")
    paths = {}
    for kind in ("images", "labels"):
        found = mnist_file(folder, split, kind)
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
            f = files[kind] = Idx(p, fn)
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
