"""The documentation site builds without warnings, offline, with a page per public name.

Builds docs/ with Sphinx (``-W``: warnings are errors) into a temporary folder once, then reads the
HTML: every public function and class of the documented modules has its API page, the tutorial
page holds the executed notebook's pictures and the explorer, and no page loads anything from
another host. Needs the 'docs' extra (``pip install -e '.[docs]'``); skipped without it.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

# The API pages and the modules whose public names each one must cover.
API_MODULES = {
    "im2col": "api/im2col.html",
    "im2col.nn": "api/nn.html",
    "im2col.explain": "api/explain.html",
    "im2col.explorer": "api/explorer.html",
    "im2col.kernels": "api/kernels.html",
    "im2col.data": "api/data.html",
    "im2col.plots": "api/plots.html",
    "im2col.reference": "api/reference.html",
}
# Names that im2col exports from a submodule and documents under the package's name.
DOCUMENTED_AS = {"im2col.explain.explain": "im2col.explain", "im2col.explain.Explanation": "im2col.Explanation"}


def _require_docs_tools() -> None:
    for name in ("sphinx", "numpydoc", "myst_nb", "pydata_sphinx_theme", "ipykernel", "matplotlib", "torch"):
        pytest.importorskip(name, reason=f"the docs build needs {name}: pip install -e '.[docs]'")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The built site's html folder (one build for the whole module, about 20 s)."""
    _require_docs_tools()
    if not (DOCS / "conf.py").is_file():
        pytest.skip("no docs/conf.py here (the sdist ships the tests, not the docs)")
    out = tmp_path_factory.mktemp("docs") / "html"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
    # -q leaves only warnings and errors in the output (the kernel's own start-up notice aside).
    problems = [
        line
        for line in proc.stderr.splitlines()
        if re.search(r"\b(WARNING|ERROR)\b", line) and "[IPKernelApp]" not in line
    ]
    assert problems == [], "\n".join(problems)
    return out


def _public_names(modname: str) -> list[str]:
    """The names a user can import from ``modname``: its ``__all__``, else its own functions."""
    mod = importlib.import_module(modname)
    if modname == "im2col.explain":  # the package's ``explain`` attribute is the function
        mod = sys.modules["im2col.explain"]
    if hasattr(mod, "__all__"):
        names = list(mod.__all__)
    else:
        names = [
            n
            for n, v in vars(mod).items()
            if not n.startswith("_") and inspect.isfunction(v) and v.__module__ == modname
        ]
    return [n for n in names if not isinstance(getattr(mod, n), types.ModuleType)]


def _kernel_arrays() -> list[str]:
    from im2col import kernels

    return list(kernels.all_kernels())


def test_every_public_name_has_an_api_page(site: Path):
    missing = []
    for modname, page in API_MODULES.items():
        assert (site / page).is_file(), f"no module page {page}"
        for name in _public_names(modname):
            if modname == "im2col.kernels" and name in _kernel_arrays():
                # The arrays are listed on the module page itself, with their values.
                html = (site / page).read_text(encoding="utf-8")
                if f'id="im2col.kernels.{name}"' not in html:
                    missing.append(f"{modname}.{name} (on {page})")
                continue
            full = f"{modname}.{name}"
            full = DOCUMENTED_AS.get(full, full)
            if not (site / "api" / "generated" / f"{full}.html").is_file():
                missing.append(full)
            elif f"{full}.html" not in (site / page).read_text(encoding="utf-8"):
                missing.append(f"{full} (page exists, but {page} does not link it)")
    assert missing == [], "public names without an API page: " + ", ".join(missing)


def test_api_pages_carry_the_docstrings(site: Path):
    page = (site / "api" / "generated" / "im2col.conv2d.html").read_text(encoding="utf-8")
    # numpydoc turned the sections into headings and the parameter list into a field list.
    assert "Parameters" in page and "Returns" in page and "Examples" in page
    assert "weight" in page and "padding" in page
    kernels = (site / "api" / "kernels.html").read_text(encoding="utf-8")
    assert "-1., -1., -1." in kernels  # top_edge's first row, read from the module at build time


def test_tutorial_shows_the_executed_notebook(site: Path):
    page = (site / "tutorial.html").read_text(encoding="utf-8")
    images = re.findall(r'<img[^>]*src="([^"]+)"', page)
    executed = [src for src in images if src.startswith("_images/")]
    # plot_kernels, plot_padded_input, plot_feature_maps, plot_sliding_window, plot_unrolled
    assert len(executed) >= 5, images
    for src in executed:
        assert (site / src).stat().st_size > 1000, src
    assert "(64, 9, 676)" in page and "(64, 4, 26, 26)" in page  # the cells' printed results
    assert "<iframe srcdoc=" in page and "im2col explorer" in page  # the explorer cell


def test_no_page_loads_anything_from_another_host(site: Path):
    external = re.compile(r'<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)="((?:https?:)?//[^"]*)"', re.I)
    found = {}
    for path in site.rglob("*.html"):
        hits = external.findall(path.read_text(encoding="utf-8"))
        if hits:
            found[str(path.relative_to(site))] = sorted(set(hits))
    assert found == {}, found
