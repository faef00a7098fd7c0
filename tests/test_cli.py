"""The ``im2col`` command, run as a user runs it: ``python -m im2col ...`` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from im2col.__main__ import main


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONIOENCODING="utf-8", MPLBACKEND="Agg")
    return subprocess.run(
        [sys.executable, "-m", "im2col", *args], capture_output=True, text=True, encoding="utf-8",
        timeout=timeout, env=env,
    )  # fmt: skip


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    pytest.importorskip("matplotlib")
    out = tmp_path_factory.mktemp("pictures")
    return run("demo", "--save", str(out)), out


def test_demo_prints_the_seed_numbers(demo_run):
    r, _ = demo_run
    assert r.returncode == 0, r.stderr
    seed_numbers = [
        "(28 + 2·0 − 3) // 1 + 1 = 26",
        "(64, 9, 676)",
        "(64, 4, 26, 26)",
        "(64, 1, 28, 28)",
        "(4, 1, 3, 3)",
        "(4 × 9) @ (9 × 676) → (4 × 676) → (4, 26, 26)",
    ]
    for literal in seed_numbers:
        assert literal in r.stdout, literal
    assert max(len(line) for line in r.stdout.splitlines()) <= 100
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "torch is not installed" in r.stdout
    else:
        line = next(x for x in r.stdout.splitlines() if "max |im2col.conv2d − torch conv2d|" in x)
        assert float(line.split("=")[-1]) < 1e-5
        assert "equals torch's F.unfold exactly: True" in r.stdout


def test_demo_save_writes_pictures(demo_run):
    r, out = demo_run
    names = sorted(p.name for p in out.iterdir())
    pictures = [
        "padding.png",
        "kernels.png",
        "feature_maps.png",
        "unrolled.png",
        "sliding_window.png",
    ]
    for expected in [*pictures, "sliding_window_00.png"]:
        assert expected in names
        assert (out / expected).read_bytes()[:4] == b"\x89PNG"
    assert str(out / "kernels.png") in r.stdout


def test_explain_full_padding():
    r = run("explain", "--input", "1x1x5x5", "--kernel", "3", "--padding", "2", "--stride", "1")
    assert r.returncode == 0, r.stderr
    assert "(5 + 2·2 − 3) // 1 + 1 = 7" in r.stdout
    assert "(1 × 9) @ (9 × 49) → (1 × 49) → (1, 7, 7)" in r.stdout
    assert "·" in r.stdout


def test_explain_options_in_process(capsys):
    assert main(["explain", "--input", "1x1x28x28", "--kernel", "3", "--dilation", "2", "--stride", "2"]) == 0
    out = capsys.readouterr().out
    assert "effective kernel = d·(k − 1) + 1 = 2·(3 − 1) + 1 = 5" in out
    assert "(28 + 2·0 − 5) // 2 + 1 = 12" in out
    assert main(["explain", "--input", "5x5", "--kernel", "top_edge", "--padding", "1", "--matrix",
                 "--highlight", "2,3"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "column (2,3) is the receptive field of output (2, 3)" in out
    assert "row k·L + oh·OW + ow" in out
    assert main(["explain", "--input", "1x1x6x6", "--kernel", "edges", "--padding", "same"]) == 0
    assert "(1, 4, 6, 6)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, needle",
    [
        (["explain", "--input", "1x1x5", "--kernel", "3", "--bogus"], "--bogus"),
        (["explain", "--input", "axb", "--kernel", "3"], "--input"),
        (["explain", "--input", "1x1x5x5", "--kernel", "blurry"], "--kernel"),
        (["explain", "--input", "1x1x5x5", "--kernel", "3", "--stride", "0"], "--stride"),
        (["explain", "--input", "1x1x5x5", "--kernel", "3", "--padding", "x"], "--padding"),
        (["explain", "--kernel", "3"], "--input"),
        (["explain", "--input", "1x1x2x2", "--kernel", "3"], "output height"),
        (
            ["explain", "--input", "1x1x5x5", "--kernel", "3", "--highlight", "9,9"],
            "argument --highlight: output position OH,OW must lie in 0..2,0..2 (the output is 3×3), got 9,9",
        ),
        (["demo", "--sav", "x", "--nope"], "--nope"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_usage_errors_exit_2(args, needle, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert needle in capsys.readouterr().err


def test_usage_error_through_subprocess():
    r = run("explain", "--input", "1x1x5x5", "--kernel", "3", "--padding-typo", "2")
    assert r.returncode == 2
    assert "--padding-typo" in r.stderr and "usage:" in r.stderr


def test_help():
    r = run("--help")
    assert r.returncode == 0 and "demo" in r.stdout and "explain" in r.stdout and "bench" in r.stdout


def test_bench_forwards_arguments(monkeypatch):
    import types

    seen = {}
    fake = types.ModuleType("im2col.bench")
    fake.main = lambda argv: seen.setdefault("argv", list(argv)) and 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "im2col.bench", fake)
    import im2col

    monkeypatch.setattr(im2col, "bench", fake, raising=False)
    assert main(["bench", "--quick", "--op", "conv2d"]) == 0
    assert seen["argv"] == ["--quick", "--op", "conv2d"]


# --- the student's own data: --image, --kernels, --padding full ----------------------------------


@pytest.fixture
def files(tmp_path):
    """A grey PNG, an RGB JPEG, a text file, a cut PNG, an MNIST folder (train) and one (test only)."""
    Image = pytest.importorskip("PIL.Image")
    import gzip

    import numpy as np

    from im2col import data

    paths = {}
    three = (255 * data.digit_three(64)).astype(np.uint8)  # 64×64: too large for the explorer
    Image.fromarray(three).save(tmp_path / "three.png")
    paths["png"] = tmp_path / "three.png"
    rgb = np.stack([three, 255 - three, three // 2], axis=-1)
    Image.fromarray(rgb).save(tmp_path / "three.jpg", quality=95)
    paths["jpg"] = tmp_path / "three.jpg"
    (tmp_path / "notes.png").write_text("not a picture")
    paths["text"] = tmp_path / "notes.png"
    full = paths["png"].read_bytes()
    (tmp_path / "cut.png").write_bytes(full[: len(full) // 2])
    paths["cut"] = tmp_path / "cut.png"

    def idx(values: np.ndarray) -> bytes:
        dims = b"".join(d.to_bytes(4, "big") for d in values.shape)
        return bytes([0, 0, 0x08, values.ndim]) + dims + values.astype(np.uint8).tobytes()

    digits = (255 * data.digit_batch(3, seed=5)[:, 0]).astype(np.uint8)
    for name, prefix in (("mnist", "train"), ("mnist_test", "t10k")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx(digits)))
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(idx(np.array([7, 2, 1])))
        paths[name] = folder
    bad = tmp_path / "mnist_bad"
    bad.mkdir()
    (bad / "train-images-idx3-ubyte").write_bytes(idx(np.array([7, 2, 1])))  # a label file
    (bad / "train-labels-idx1-ubyte").write_bytes(idx(np.array([7, 2, 1])))
    paths["mnist_bad"] = bad
    paths["empty"] = tmp_path / "empty"
    paths["empty"].mkdir()
    return {k: str(v) for k, v in paths.items()}


def _after_input_line(out: str, expected_first: str) -> str:
    first, blank, rest = out.split("\n", 2)
    assert first == expected_first and blank == ""
    return rest


def test_explain_image_is_the_explanation_of_load_image(files, capsys):
    import im2col
    from im2col import data, kernels

    assert main(["explain", "--image", files["png"], "--kernel", "edges", "--size", "8"]) == 0
    out = capsys.readouterr().out
    rest = _after_input_line(out, f"input: your image '{files['png']}' (grey, resized to 8×8), shape (1, 1, 8, 8)")
    x = data.load_image(files["png"], size=8)
    assert rest == im2col.explain(x, kernels.edge_kernels()).to_text(width=100) + "\n"
    assert "(8 + 2·0 − 3) // 1 + 1 = 6" in rest and "(1, 4, 6, 6)" in rest
    # its own size without --size; --invert
    assert main(["explain", "--image", files["png"], "--kernel", "3", "--invert"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"input: your image '{files['png']}' (grey, inverted), shape (1, 1, 64, 64)")
    assert "(64 + 2·0 − 3) // 1 + 1 = 62" in out


def test_explain_image_rgb_with_kernels(files, capsys):
    assert main(["explain", "--image", files["jpg"], "--rgb", "--size", "6x5", "--kernel", "3",
                 "--kernels", "2"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert out.startswith(f"input: your image '{files['jpg']}' (rgb, resized to 6×5), shape (1, 3, 6, 5)")
    assert "by weight (2, 3, 3, 3)" in out
    assert "height: (6 + 2·0 − 3) // 1 + 1 = 4" in out and "width: (5 + 2·0 − 3) // 1 + 1 = 3" in out


def test_explain_mnist_folder_is_its_first_digit(files, capsys):
    import im2col
    from im2col import data, kernels

    for key, split in (("mnist", "train"), ("mnist_test", "test")):
        assert main(["explain", "--image", files[key], "--kernel", "edges"]) == 0
        rest = _after_input_line(
            capsys.readouterr().out,
            f"input: the first MNIST {split} digit in '{files[key]}' (label 7), shape (1, 1, 28, 28)",
        )
        x = data.mnist(files[key], split=split, n=1)[0]
        assert rest == im2col.explain(x, kernels.edge_kernels()).to_text(width=100) + "\n"


def test_explain_kernels_count(capsys):
    from im2col import kernels
    from im2col.__main__ import _edge_stack

    assert main(["explain", "--input", "1x1x5x5", "--kernels", "2"]) == 0  # default: edge kernels
    assert "by weight (2, 1, 3, 3)" in capsys.readouterr().out
    assert main(["explain", "--input", "1x2x5x5", "--kernel", "3x2", "--kernels", "3"]) == 0
    out = capsys.readouterr().out
    assert "by weight (3, 2, 3, 2)" in out and "(1, 3, 3, 4)" in out
    assert main(["explain", "--input", "1x4x5x5", "--kernel", "3", "--kernels", "4", "--groups", "2"]) == 0
    assert "by weight (4, 2, 3, 3)" in capsys.readouterr().out
    assert main(["explain", "--input", "1x1x5x5", "--kernel", "top_edge", "--kernels", "1"]) == 0
    # The stack: the edge kernels first, then seeded zero-sum kernels of −1, 0, 1.
    w, names = _edge_stack(7, seed=0)
    assert w.shape == (7, 1, 3, 3) and w.dtype.name == "float32"
    assert (w[:4] == kernels.edge_kernels()).all() and names[:4] == list(kernels.EDGE_NAMES)
    assert names[4:] == ["random_1", "random_2", "random_3"]
    assert set(w[4:].ravel().tolist()) <= {-1.0, 0.0, 1.0}
    assert (w[4:].sum(axis=(1, 2, 3)) == 0).all() and (abs(w[4:]).sum(axis=(1, 2, 3)) > 0).all()
    assert (_edge_stack(7, seed=0)[0] == w).all() and not (_edge_stack(7, seed=1)[0] == w).all()
    assert (_edge_stack(2, seed=0)[0] == kernels.edge_kernels()[:2]).all()


def test_explain_padding_full(capsys):
    assert main(["explain", "--input", "1x1x5x5", "--kernel", "3", "--padding", "full"]) == 0
    out = capsys.readouterr().out
    assert "padding 'full' became 2 per side" in out
    assert "(5 + 2·2 − 3) // 1 + 1 = 7" in out
    assert main(["explain", "--input", "1x1x5x5", "--kernel", "3", "--dilation", "2", "--padding", "full"]) == 0
    assert "(5 + 2·4 − 5) // 1 + 1 = 9" in capsys.readouterr().out


def test_demo_image_and_kernels(files, capsys, tmp_path):
    pytest.importorskip("matplotlib")
    assert main(["demo", "--image", files["png"], "--kernels", "6", "--save", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert f"xb: your image '{files['png']}' (grey, resized to 28×28)" in out
    assert "xb.shape = (1, 1, 28, 28)\n" in out
    assert "kernels.shape = (6, 1, 3, 3)   # --kernels 6: the four edge kernels, then 2 random" in out
    assert "random_1" in out and "(1, 6, 26, 26)" in out
    assert max(len(line) for line in out.splitlines() if str(tmp_path) not in line) <= 100
    if "torch is not installed" not in out:
        line = next(x for x in out.splitlines() if "max |im2col.conv2d − torch conv2d|" in x)
        assert float(line.split("=")[-1]) < 1e-5
    page = (tmp_path / "out" / "explorer.html").read_text(encoding="utf-8")
    assert "im2col explorer: three.png and 6 kernel(s)" in page
    assert (tmp_path / "out" / "feature_maps.png").read_bytes()[:4] == b"\x89PNG"


def test_demo_mnist_folder_batch(files, capsys):
    assert main(["demo", "--image", files["mnist"], "--kernels", "2"]) == 0
    out = capsys.readouterr().out
    assert f"xb: the first 3 MNIST train digits in '{files['mnist']}' (labels 7, 2, 1)" in out
    assert "xb.shape = (3, 1, 28, 28)" in out and "(3, 2, 26, 26)" in out
    assert "kernels.shape = (2, 1, 3, 3)   # --kernels 2: left_edge, top_edge" in out


@pytest.mark.parametrize(
    "args, needle",
    [
        (["explain", "--image", "{tmp}/missing.png", "--kernel", "3"],
         "load_image(): no image file at '{tmp}/missing.png'"),
        (["explain", "--image", "{text}", "--kernel", "3"],
         "load_image(): '{text}' is not an image file Pillow can read"),
        (["explain", "--image", "{cut}", "--kernel", "3"],
         "load_image(): cannot read the image '{cut}' (damaged or truncated?)"),
        (["explain", "--image", "{empty}", "--kernel", "3"],
         "mnist(): no MNIST train images in '{empty}': looked for train-images-idx3-ubyte,"),
        (["explain", "--image", "{mnist_bad}", "--kernel", "3"],
         "mnist(): '{mnist_bad}/train-images-idx3-ubyte' is not an MNIST image file: its magic number is 0x00000801"),
        (["explain", "--image", "{mnist}", "--size", "8", "--kernel", "3"],
         "argument --image: '{mnist}' is an MNIST folder, whose digits are 28×28 grey; --size and --rgb"),
        (["explain", "--image", "{png}", "--kernel", "3", "--html", "{tmp}/p.html"],
         "more than the explorer's limit of 40,000; use a smaller input, fewer channels or kernels, "
         "or a larger stride; --size HxW shrinks your image"),
        (["explain", "--image", "{jpg}", "--rgb", "--kernel", "edges"],
         "expects 1 input channels, but the input has 3"),
        (["explain", "--image", "{png}", "--input", "1x1x5x5", "--kernel", "3"],
         "argument --input: not allowed with argument --image"),
        (["explain", "--input", "1x1x5x5", "--kernel", "3", "--size", "3"],
         "--size, --invert and --rgb apply to an --image"),
        (["explain", "--input", "1x1x5x5"], "argument --kernel is required (or --kernels K for K edge kernels)"),
        (["explain", "--input", "1x1x5x5", "--kernel", "top_edge", "--kernels", "3"],
         "argument --kernels: a named kernel is one kernel, got --kernels 3; use --kernel edges or a kernel size"),
        (["explain", "--input", "1x1x5x5", "--kernels", "0"],
         "argument --kernels: a number of kernels must be a positive integer, got '0'"),
        (["explain", "--input", "1x1x5x5", "--kernel", "3", "--size", "0x2"],
         "argument --size: an image size must be positive, got '0x2'"),
        (["explain", "--input", "1x2x5x5", "--kernel", "3", "--kernels", "3", "--groups", "2"],
         "explain(): weight has 3 kernels, not divisible by groups=2"),
        (["demo", "--image", "{tmp}/missing.jpg"], "load_image(): no image file at '{tmp}/missing.jpg'"),
        (["demo", "--image", "{text}"], "is not an image file Pillow can read"),
        (["demo", "--image", "{empty}"], "mnist(): no MNIST train images in '{empty}'"),
        (["demo", "--size", "5"], "--size and --invert apply to an --image"),
        (["demo", "--image", "{png}", "--size", "64", "--save", "{tmp}/out"],
         "more than the explorer's limit of 40,000; use a smaller input, fewer channels or kernels, "
         "or a larger stride; --size HxW shrinks your image"),
        (["demo", "--kernels", "-1"], "argument --kernels: a number of kernels must be a positive integer"),
    ],
)  # fmt: skip
def test_data_errors_exit_2_naming_the_file(files, tmp_path, args, needle, capsys):
    values = {**files, "tmp": str(tmp_path)}
    with pytest.raises(SystemExit) as exc:
        main([a.format(**values) for a in args])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert needle.format(**values) in captured.err
    assert captured.out == ""  # nothing printed before the refusal
    assert "Traceback" not in captured.err


def test_missing_image_through_subprocess(tmp_path):
    r = run("explain", "--image", str(tmp_path / "digit.png"), "--kernel", "3")
    assert r.returncode == 2 and r.stdout == ""
    assert f"im2col explain: error: load_image(): no image file at '{tmp_path / 'digit.png'}'" in r.stderr
    assert "Traceback" not in r.stderr


def test_explain_route_prints_the_fast_path_only(capsys):
    from im2col import _engine

    old = _engine.set_mode("auto")
    try:
        assert main(["explain", "--input", "2x8x9x9", "--kernel", "3", "--groups", "8", "--route"]) == 0
        depthwise = capsys.readouterr().out
        assert main(["explain", "--input", "1x3x9x9", "--kernel", "3", "--route"]) == 0
        ordinary = capsys.readouterr().out
    finally:
        _engine.set_mode(old)
    if _engine.ISA != "portable":  # without a vector unit every call keeps the BLAS route
        assert depthwise.startswith("im2col.conv2d on these arrays takes the engine's depthwise route")
    assert ordinary.startswith("im2col.conv2d on these arrays takes the BLAS route")
    assert "why: auto mode takes the engine for depthwise and few-channel stride-1 layers" in ordinary
    assert "1. Output size" not in ordinary
