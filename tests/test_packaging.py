"""The sdist carries the Cython sources, and a wheel builds from it (no network: no build isolation)."""

from __future__ import annotations

import subprocess
import sys
import tarfile
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
    assert any(n.endswith("csrc/_kernels.pyx") for n in names), names
    assert not any(n.endswith(".so") for n in names)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(sdist)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("im2col-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        assert any(n.startswith("im2col/_kernels") and n.endswith(".so") for n in zf.namelist())
