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
    assert (
        main(
            ["explain", "--input", "1x1x28x28", "--kernel", "3", "--dilation", "2", "--stride", "2"]
        )
        == 0
    )
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
    assert (
        r.returncode == 0 and "demo" in r.stdout and "explain" in r.stdout and "bench" in r.stdout
    )


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
