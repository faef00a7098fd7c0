"""The sdist carries every source (Cython and the engine's C), a wheel builds from it (no build
isolation), and that wheel installed into a fresh virtual environment imports and computes, outside
the source tree, with its package data (the explorer's JS/CSS) in place."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not (ROOT / "setup.py").exists(), reason="not run from a source checkout")
def test_sdist_has_pyx_and_builds_a_wheel(tmp_path):
    pytest.importorskip("build")
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (sdist,) = tmp_path.glob("im2col-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    for source in ("csrc/_kernels.pyx", "csrc/_engine.pyx", "csrc/engine/conv.c", "csrc/engine/ukernel.h"):
        assert any(n.endswith(source) for n in names), (source, names)
    assert not any(n.endswith(".so") for n in names)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(sdist)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("im2col-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        assert any(n.startswith("im2col/_kernels") and n.endswith(".so") for n in zf.namelist())

    # A fresh venv (no system site-packages): pip brings numpy, the wheel brings the compiled code.
    env_dir = tmp_path / "fresh"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], check=True, capture_output=True)
    check = (
        "import numpy as np, im2col\n"
        "from im2col import reference, explorer\n"
        "assert 'site-packages' in im2col.__file__, im2col.__file__\n"
        "x = np.random.default_rng(0).standard_normal((2, 3, 9, 9))\n"
        "w = np.random.default_rng(1).standard_normal((4, 3, 3, 3))\n"
        "np.testing.assert_allclose(im2col.conv2d(x, w, padding=1), "
        "reference.conv2d(x, w, None, (1, 1), ((1, 1), (1, 1)), (1, 1), 1), rtol=1e-10, atol=1e-10)\n"
        "page = im2col.explain((1, 1, 5, 5), 3).explorer_html()\n"
        "assert '<script>' in page and 'data-output' in page\n"
        "print('ok')\n"
    )
    out = subprocess.run([str(py), "-c", check], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
