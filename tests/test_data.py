"""im2col.data's loaders for the student's own files: images through Pillow, MNIST's IDX files.

Every file is written here, in tmp_path, by code that does not use the loaders (Pillow for the
images, raw bytes for IDX), so the tests check the loaders against an independent writer.
Nothing is downloaded.
"""

from __future__ import annotations

import doctest
import gzip
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from im2col import data

# The image tests need Pillow (matplotlib installs it); the IDX and MNIST tests do not.
needs_pillow = pytest.mark.skipif(importlib.util.find_spec("PIL") is None, reason="Pillow is not installed")

DOCS = Path(__file__).resolve().parent.parent / "docs" / "data.md"


# --- writers -------------------------------------------------------------------------------------


def idx_bytes(values: np.ndarray, code: int = 0x08, dims: tuple[int, ...] | None = None) -> bytes:
    """An IDX file by the book: magic 0x0000TTDD, big-endian uint32 sizes, big-endian values."""
    big = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    dims = values.shape if dims is None else dims
    header = bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    return header + np.ascontiguousarray(values, dtype=big).tobytes()


def write(path: Path, payload: bytes, *, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def write_mnist(folder: Path, split: str = "train", count: int = 5, *, gz: bool = True, dot: bool = False,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, count, dtype=np.uint8)
    prefix = {"train": "train", "test": "t10k"}[split]
    sep = "." if dot else "-"
    ext = ".gz" if gz else ""
    write(folder / f"{prefix}-images{sep}idx3-ubyte{ext}", idx_bytes(pixels), gz=gz)
    write(folder / f"{prefix}-labels{sep}idx1-ubyte{ext}", idx_bytes(labels), gz=gz)
    return pixels, labels


def save(array: np.ndarray, path: Path, **kwargs) -> Path:
    from PIL import Image

    Image.fromarray(array).save(path, **kwargs)
    return path


RNG = np.random.default_rng(7)
GREY = RNG.integers(0, 256, (6, 9), dtype=np.uint8)
RGB = RNG.integers(0, 256, (6, 9, 3), dtype=np.uint8)


# --- load_image ----------------------------------------------------------------------------------


@needs_pillow
def test_grey_png_values_shape_dtype(tmp_path):
    x = data.load_image(save(GREY, tmp_path / "g.png"))
    assert x.shape == (1, 1, 6, 9) and x.dtype == np.float32 and x.flags.c_contiguous
    np.testing.assert_array_equal(x[0, 0], GREY.astype(np.float32) / 255)
    assert x.min() >= 0 and x.max() <= 1


@needs_pillow
def test_rgb_png_channels_first(tmp_path):
    path = save(RGB, tmp_path / "c.png")
    x = data.load_image(path, mode="rgb")
    assert x.shape == (1, 3, 6, 9)
    np.testing.assert_array_equal(x[0], RGB.transpose(2, 0, 1).astype(np.float32) / 255)
    # grey of a colour file: ITU-R 601 luma, to Pillow's integer rounding (one level)
    luma = RGB.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255
    grey = data.load_image(path, mode="grey")
    assert grey.shape == (1, 1, 6, 9)
    np.testing.assert_allclose(grey[0, 0], luma, atol=1 / 255 + 1e-6)
    np.testing.assert_array_equal(data.load_image(path, mode="gray"), grey)


@needs_pillow
def test_grey_file_as_rgb_repeats_the_channel(tmp_path):
    x = data.load_image(save(GREY, tmp_path / "g.png"), mode="rgb")
    assert x.shape == (1, 3, 6, 9)
    for c in range(3):
        np.testing.assert_array_equal(x[0, c], GREY / np.float32(255))


@needs_pillow
def test_jpeg(tmp_path):
    flat = np.full((16, 24, 3), (200, 100, 50), dtype=np.uint8)
    path = save(flat, tmp_path / "flat.jpg", quality=95)
    x = data.load_image(path, mode="rgb")
    assert x.shape == (1, 3, 16, 24) and x.dtype == np.float32
    # JPEG is lossy; a flat colour survives to a few levels
    np.testing.assert_allclose(x[0, :, 8, 12], np.array([200, 100, 50]) / 255, atol=4 / 255)
    assert data.load_image(path).shape == (1, 1, 16, 24)


@needs_pillow
def test_resize_int_pair_and_order(tmp_path):
    path = save(GREY, tmp_path / "g.png")
    assert data.load_image(path, size=28).shape == (1, 1, 28, 28)
    assert data.load_image(path, size=(2, 5)).shape == (1, 1, 2, 5)  # (H, W), not Pillow's (W, H)
    assert data.load_image(path, size=[5, 2], mode="rgb").shape == (1, 3, 5, 2)
    assert data.load_image(path, size=(6, 9)).shape == (1, 1, 6, 9)


@needs_pillow
def test_resize_nearest_blows_up_blocks(tmp_path):
    small = np.array([[0, 255], [51, 102]], dtype=np.uint8)
    x = data.load_image(save(small, tmp_path / "s.png"), size=(4, 6), resample="nearest")
    np.testing.assert_array_equal(x[0, 0], np.kron(small, np.ones((2, 3), np.uint8)) / np.float32(255))


@needs_pillow
def test_resize_filters_keep_a_flat_image_flat(tmp_path):
    path = save(np.full((30, 40), 153, dtype=np.uint8), tmp_path / "flat.png")
    for resample in ("nearest", "box", "bilinear", "hamming", "bicubic", "lanczos"):
        x = data.load_image(path, size=(7, 11), resample=resample)
        np.testing.assert_allclose(x, 0.6, atol=1e-6)


@needs_pillow
def test_sixteen_bit_png(tmp_path):
    deep = np.array([[0, 1000, 65535], [32768, 12345, 7]], dtype=np.uint16)
    path = save(deep, tmp_path / "deep.png")
    x = data.load_image(path)
    np.testing.assert_allclose(x[0, 0], deep / 65535, rtol=1e-6)
    assert data.load_image(path, mode="rgb").shape == (1, 3, 2, 3)
    assert data.load_image(path, size=(4, 6)).shape == (1, 1, 4, 6)


@needs_pillow
def test_transparent_pixels_lie_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)  # black everywhere
    rgba[0, 0, 3] = 255  # only the corner is opaque
    x = data.load_image(save(rgba, tmp_path / "a.png"))
    np.testing.assert_array_equal(x[0, 0], [[0, 1], [1, 1]])


@needs_pillow
def test_invert(tmp_path):
    path = save(GREY, tmp_path / "g.png")
    np.testing.assert_allclose(data.load_image(path, invert=True), 1 - data.load_image(path), atol=0)


@needs_pillow
def test_exif_orientation_is_applied(tmp_path):
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = save(GREY, tmp_path / "phone.png", exif=exif)
    x = data.load_image(path)
    assert x.shape == (1, 1, 9, 6)
    np.testing.assert_array_equal(x[0, 0], np.rot90(GREY, k=-1) / np.float32(255))


@needs_pillow
def test_path_like_and_str(tmp_path):
    path = save(GREY, tmp_path / "g.png")
    np.testing.assert_array_equal(data.load_image(path), data.load_image(str(path)))


@needs_pillow
def test_image_file_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"^load_image\(\): no image file at '.*missing\.png'$"):
        data.load_image(tmp_path / "missing.png")
    with pytest.raises(ValueError, match=r"is a folder, not an image file .*im2col\.data\.mnist"):
        data.load_image(tmp_path)
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(ValueError, match=r"'.*notes\.png' is not an image file Pillow can read"):
        data.load_image(tmp_path / "notes.png")
    for ext in ("png", "jpg"):
        good = save(RNG.integers(0, 256, (40, 50), dtype=np.uint8), tmp_path / f"full.{ext}")
        cut = tmp_path / f"cut.{ext}"
        cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
        with pytest.raises(ValueError, match=rf"cannot read the image '.*cut\.{ext}' \(damaged or truncated\?\)"):
            data.load_image(cut)


@needs_pillow
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"mode": "RGB"}, r"argument 'mode' must be 'grey' or 'rgb', got 'RGB'"),
        ({"mode": "cmyk"}, r"argument 'mode' must be 'grey' or 'rgb', got 'cmyk'"),
        ({"size": 0}, r"argument 'size' must be None, a positive int or a pair \(H, W\) of positive ints, got 0"),
        ({"size": (28, 28, 3)}, r"argument 'size' .* got \(28, 28, 3\)"),
        ({"size": (28, 0)}, r"argument 'size' .* got \(28, 0\)"),
        ({"size": 2.5}, r"argument 'size' .* got 2\.5"),
        ({"size": True}, r"argument 'size' .* got True"),
        ({"resample": "cubic"}, r"argument 'resample' must be one of 'nearest', .*'lanczos', got 'cubic'"),
    ],
)
def test_image_argument_errors(tmp_path, kwargs, match):
    path = save(GREY, tmp_path / "g.png")
    with pytest.raises(ValueError, match=r"^load_image\(\): " + match):
        data.load_image(path, **kwargs)


def test_without_pillow_the_error_says_how_to_install(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "PIL", None)  # makes `from PIL import …` fail
    with pytest.raises(ImportError, match=r"^load_image\(\) needs Pillow to read images: pip install pillow"):
        data.load_image(tmp_path / "x.png")


@needs_pillow
def test_image_type_errors(tmp_path):
    with pytest.raises(TypeError, match=r"argument 'path' must be a str or os.PathLike, got int"):
        data.load_image(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"argument 'invert' must be a bool, got 'yes'"):
        data.load_image(save(GREY, tmp_path / "g.png"), invert="yes")  # type: ignore[arg-type]


@needs_pillow
def test_loaded_image_feeds_explain(tmp_path):
    import im2col
    from im2col import kernels

    x = data.load_image(save(GREY, tmp_path / "g.png"), size=10)
    e = im2col.explain(x, kernels.edge_kernels())
    assert e.output.shape == (1, 4, 8, 8)
    np.testing.assert_allclose(e.output, im2col.conv2d(x, kernels.edge_kernels()), atol=1e-5)


# --- read_idx ------------------------------------------------------------------------------------


@pytest.mark.parametrize("code, dtype", [(0x08, np.uint8), (0x09, np.int8), (0x0B, np.int16),
                                         (0x0C, np.int32), (0x0D, np.float32), (0x0E, np.float64)])  # fmt: skip
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_every_type_big_endian(tmp_path, code, dtype, gz):
    values = (np.arange(24).reshape(2, 3, 4) * (-1) ** np.arange(24).reshape(2, 3, 4)).astype(dtype)
    if dtype == np.uint8:
        values = np.arange(24, dtype=np.uint8).reshape(2, 3, 4) * 10
    path = write(tmp_path / "t.idx", idx_bytes(values, code), gz=gz)
    out = data.read_idx(path)
    assert out.dtype == dtype and out.dtype.isnative and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, values)
    np.testing.assert_array_equal(data.read_idx(path, n=1), values[:1])
    assert data.read_idx(path, n=0).shape == (0, 3, 4)


def test_read_idx_multibyte_is_big_endian_on_disk(tmp_path):
    # 258 = 0x0102: stored as 01 02; a little-endian reader would see 513
    path = write(tmp_path / "t.idx", bytes([0, 0, 0x0B, 1, 0, 0, 0, 1, 1, 2]))
    assert data.read_idx(path).tolist() == [258]


def test_read_idx_detects_gzip_by_content_not_name(tmp_path):
    values = np.arange(6, dtype=np.uint8).reshape(2, 3)
    gz_without_name = write(tmp_path / "x-idx2-ubyte", idx_bytes(values), gz=True)
    plain_named_gz = write(tmp_path / "y-idx2-ubyte.gz", idx_bytes(values))  # a browser gunzipped it
    np.testing.assert_array_equal(data.read_idx(gz_without_name), values)
    np.testing.assert_array_equal(data.read_idx(plain_named_gz), values)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_errors(tmp_path, gz):
    good = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    f = tmp_path / "f.idx"
    with pytest.raises(ValueError, match=r"^read_idx\(\): no IDX file at '.*nothing\.idx'$"):
        data.read_idx(tmp_path / "nothing.idx")
    with pytest.raises(ValueError, match=r"is a folder, not an IDX file"):
        data.read_idx(tmp_path)
    cases = [
        (b"\x89PNG" + good[4:], r"'.*f\.idx' is not an IDX file: its magic number is 0x89504E47; an IDX "
                                r"file starts with two zero bytes, a type code \(0x08 unsigned bytes, .*\)"),
        (bytes([0, 0, 0x0A, 3]) + good[4:], r"'.*f\.idx' is not an IDX file: its magic number is 0x00000A03;"),
        (good[:2], r"'.*f\.idx' is truncated: the 4-byte magic number needs 4 bytes, but only 2 bytes are left"),
        (good[:9], r"'.*f\.idx' is truncated: the 3 dimension sizes needs 12 bytes, but only 5 bytes are left"),
        (good[:-1], r"'.*f\.idx' is truncated: the data, shape \(2, 3, 4\) of unsigned bytes, needs 24 bytes, "
                    r"but only 23 bytes are left"),
    ]  # fmt: skip
    for payload, match in cases:
        write(f, payload, gz=gz)
        with pytest.raises(ValueError, match=r"^read_idx\(\): " + match):
            data.read_idx(f)
    write(f, good, gz=gz)
    with pytest.raises(ValueError, match=r"argument 'n' asks for 3 entries, but '.*f\.idx' holds 2 entries"):
        data.read_idx(f, n=3)
    for n in (-1, 1.5, True):
        with pytest.raises(ValueError, match=r"argument 'n' must be None or an int ≥ 0, got"):
            data.read_idx(f, n=n)


def test_read_idx_damaged_and_cut_gzip(tmp_path):
    payload = gzip.compress(idx_bytes(np.random.default_rng(1).integers(0, 256, (50, 28, 28), dtype=np.uint8)))
    cut = write(tmp_path / "cut.gz", payload[: len(payload) // 2])
    with pytest.raises(ValueError, match=r"'.*cut\.gz' is truncated: the data, .* but the gzip stream ends early"):
        data.read_idx(cut)
    broken = bytearray(payload)
    broken[len(broken) // 2 : len(broken) // 2 + 64] = bytes(64)
    bad = write(tmp_path / "bad.gz", bytes(broken))
    with pytest.raises(ValueError, match=r"^read_idx\(\): '.*bad\.gz' is (a damaged gzip file|truncated)"):
        data.read_idx(bad)
    crc = bytearray(payload)
    crc[-8] ^= 0xFF  # the CRC32 of the trailer: the data decompresses, its check fails
    with pytest.raises(ValueError, match=r"'.*crc\.gz' is a damaged gzip file: CRC check failed"):
        data.read_idx(write(tmp_path / "crc.gz", bytes(crc)))


# --- mnist ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("split", ["train", "test"])
def test_mnist_reads_images_and_labels(tmp_path, gz, split):
    pixels, labels = write_mnist(tmp_path, split, count=5, gz=gz)
    x, y = data.mnist(tmp_path, split=split)
    assert x.shape == (5, 1, 28, 28) and x.dtype == np.float32
    assert y.shape == (5,) and y.dtype == np.int64
    np.testing.assert_array_equal(x[:, 0], pixels.astype(np.float32) / 255)
    np.testing.assert_array_equal(y, labels)
    x2, y2 = data.mnist(str(tmp_path), split=split, n=2)
    np.testing.assert_array_equal(x2, x[:2])
    np.testing.assert_array_equal(y2, y[:2])
    assert data.mnist(tmp_path, split=split, n=0)[0].shape == (0, 1, 28, 28)


def test_mnist_splits_are_separate_and_names_with_a_dot(tmp_path):
    train = write_mnist(tmp_path, "train", count=4, seed=1, dot=True, gz=False)
    test = write_mnist(tmp_path, "test", count=3, seed=2, dot=True)
    np.testing.assert_array_equal(data.mnist(tmp_path)[1], train[1])
    np.testing.assert_array_equal(data.mnist(tmp_path, split="test")[1], test[1])


def test_mnist_plain_and_gzipped_mixed(tmp_path):
    pixels, labels = write_mnist(tmp_path, count=3, gz=True)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(labels))
    x, y = data.mnist(tmp_path)
    np.testing.assert_array_equal(y, labels)
    np.testing.assert_array_equal(x[:, 0] * 255, pixels)


def test_mnist_replaces_digit_batch(tmp_path):
    import im2col
    from im2col import kernels

    write_mnist(tmp_path, count=64)
    x, _ = data.mnist(tmp_path, n=64)
    assert x.shape == data.digit_batch().shape and x.dtype == data.digit_batch().dtype
    assert im2col.explain(x, kernels.edge_kernels()).columns.shape == (64, 9, 676)


def test_mnist_missing_folder_and_files(tmp_path):
    missing = r"^mnist\(\): argument 'path' must be a folder, but '.*nowhere' does not exist$"
    with pytest.raises(ValueError, match=missing):
        data.mnist(tmp_path / "nowhere")
    (tmp_path / "a.gz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"but '.*a\.gz' is a file; pass the folder that holds the MNIST files"):
        data.mnist(tmp_path / "a.gz")
    with pytest.raises(ValueError, match=(
        r"^mnist\(\): no MNIST train images in '.*': looked for train-images-idx3-ubyte, "
        r"train-images-idx3-ubyte\.gz, train-images\.idx3-ubyte, train-images\.idx3-ubyte\.gz "
        r"\(nothing is downloaded: put the files there\)$"
    )):  # fmt: skip
        data.mnist(tmp_path)
    write_mnist(tmp_path, "train", count=2)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(ValueError, match=r"no MNIST train labels in '.*': looked for train-labels-idx1-ubyte,"):
        data.mnist(tmp_path)
    with pytest.raises(ValueError, match=r"no MNIST test images in .*t10k-images-idx3-ubyte"):
        data.mnist(tmp_path, split="test")


def test_mnist_wrong_magic_names_the_file(tmp_path):
    _, labels = write_mnist(tmp_path, count=3, gz=False)
    # the label file copied over the image file: a real mistake, a valid IDX file of the wrong kind
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(labels))
    with pytest.raises(ValueError, match=(
        r"^mnist\(\): '.*train-images-idx3-ubyte' is not an MNIST image file: its magic number is "
        r"0x00000801 \(unsigned bytes, 1 dimension\), expected 0x00000803 \(unsigned bytes, 3 "
        r"dimensions\) = 2051$"
    )):  # fmt: skip
        data.mnist(tmp_path)
    write_mnist(tmp_path, count=3, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(labels.astype(np.int32), 0x0C))
    with pytest.raises(ValueError, match=r"'.*train-labels-idx1-ubyte' is not an MNIST label file: .*"
                                         r"0x00000C01 \(int32, 1 dimension\), expected 0x00000801"):  # fmt: skip
        data.mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(ValueError, match=r"^mnist\(\): '.*train-labels-idx1-ubyte' is not an IDX file: .* 0x504B0304"):
        data.mnist(tmp_path)


def test_mnist_mismatched_counts(tmp_path):
    write_mnist(tmp_path, count=4)
    rng = np.random.default_rng(3)
    write(tmp_path / "train-labels-idx1-ubyte.gz", idx_bytes(rng.integers(0, 10, 6, dtype=np.uint8)), gz=True)
    with pytest.raises(ValueError, match=(
        r"^mnist\(\): '.*train-images-idx3-ubyte\.gz' holds 4 images but '.*train-labels-idx1-ubyte\.gz' "
        r"holds 6 labels; they must come from the same split$"
    )):  # fmt: skip
        data.mnist(tmp_path)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_truncated(tmp_path, gz):
    pixels, _ = write_mnist(tmp_path, count=4, gz=gz)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    payload = idx_bytes(pixels)[:-100]
    write(tmp_path / name, payload, gz=gz)
    with pytest.raises(ValueError, match=(
        rf"^mnist\(\): '.*{re.escape(name)}' is truncated: the data, shape \(4, 28, 28\) of unsigned bytes, needs "
        r"3,136 bytes, but only 3,036 bytes are left$"
    )):  # fmt: skip
        data.mnist(tmp_path)
    # the first images are whole: asking only for them works
    x, _ = data.mnist(tmp_path, n=3)
    np.testing.assert_array_equal(x[:, 0] * 255, pixels[:3])


def test_mnist_argument_errors(tmp_path):
    write_mnist(tmp_path, count=4)
    with pytest.raises(ValueError, match=r"^mnist\(\): argument 'split' must be 'train' or 'test', got 't10k'$"):
        data.mnist(tmp_path, split="t10k")
    too_many = r"argument 'n' asks for 5 images, but '.*train-images-idx3-ubyte\.gz' holds 4$"
    with pytest.raises(ValueError, match=too_many):
        data.mnist(tmp_path, n=5)
    with pytest.raises(ValueError, match=r"^mnist\(\): argument 'n' must be None or an int ≥ 0, got -1$"):
        data.mnist(tmp_path, n=-1)
    with pytest.raises(TypeError, match=r"^mnist\(\): argument 'path' must be a str or os.PathLike, got NoneType$"):
        data.mnist(None)  # type: ignore[arg-type]


# --- the docs page -------------------------------------------------------------------------------


@needs_pillow
def test_docs_page_examples_run():
    if not DOCS.exists():
        pytest.skip("docs/data.md is not in this checkout")
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testfile(str(DOCS), module_relative=False, optionflags=flags, verbose=False)
    assert result.attempted > 0 and result.failed == 0, result
