"""Sphinx configuration for the im2col documentation site.

Build (from the repository root, after ``pip install -e '.[docs]'``)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Nothing is fetched at build time: no intersphinx inventories, no CDN scripts (MathJax is served
from the site itself by sphinx-mathjax-offline, the ipywidgets scripts of myst-nb are switched
off), and the tutorial notebook is executed locally by myst-nb on every build.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# An editable install puts the package on sys.path already; this makes a plain checkout with a
# built extension work too (and the notebook kernel inherits it through PYTHONPATH).
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
# The notebook and the plot docstrings draw with matplotlib: never open a window.
os.environ.setdefault("MPLBACKEND", "Agg")

import im2col  # noqa: E402

project = "im2col"
author = "The im2col developers"
copyright = "The im2col developers, MIT licence"
version = release = im2col.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",  # registers myst_parser too: Markdown pages and executed notebooks
    "sphinx-mathjax-offline",  # the package's import name has hyphens; serves MathJax from _static
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "_templates"]
templates_path = ["_templates"]
# The pages in docs/ are also read on their own (on GitHub, in an editor), where a table of numbers
# under an H1 may use H3 headings; the site does not need the levels to be consecutive.
suppress_warnings = ["myst.header"]

# -- autodoc / autosummary / numpydoc --------------------------------------------------------------
autosummary_generate = True
autosummary_generate_overwrite = True
autosummary_imported_members = True
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types; signatures stay short
autodoc_typehints_format = "fully-qualified"  # "Bases: torch.nn.modules.conv.Conv2d", not a bare "Conv2d"
autodoc_inherit_docstrings = False  # else im2col.nn's forward() methods show torch's docstrings
numpydoc_show_class_members = True
numpydoc_show_inherited_class_members = False  # im2col.nn's modules inherit all of torch.nn.Module
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = False
numpydoc_xref_param_type = False

# -- MyST and the notebook executor ----------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist", "smartquotes"]
myst_heading_anchors = 3
nb_execution_mode = "force"  # run the tutorial on every build: its outputs are this version's
nb_execution_timeout = 300
nb_execution_raise_on_error = True  # a failing cell fails the build
nb_execution_show_tb = True
nb_merge_streams = True
nb_ipywidgets_js: dict = {}  # myst-nb's default loads require.js and the widget manager from a CDN
nb_kernel_rgx_aliases = {".*": "python3"}

# -- HTML ------------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"im2col {release}"
html_static_path = ["_static"]
html_css_files = ["im2col.css"]
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_align": "left",
    "header_links_before_dropdown": 4,  # the pages' titles are long: the rest go under "More"
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "secondary_sidebar_items": ["page-toc"],
    "icon_links": [],
}
html_sidebars = {"index": []}


# -- the pages' order -------------------------------------------------------------------------------
# index.md's toctree says READING_ORDER, then the API reference. READING_ORDER becomes the pages of
# this list that exist, in this order, then a glob for every other page in docs/ (alphabetically),
# so that a new page appears on the site without touching the index.
READING_ORDER = [
    ("getting-started", None),
    ("tutorial", "Tutorial"),
    ("how-it-works", None),
    ("torch", None),
    ("threads", None),
    ("performance", None),
    ("explorer", None),
    ("data", None),
    ("engine", None),
    ("hardening", None),
    ("development", None),
]


def _reading_order(app, docname: str, source: list[str]) -> None:
    if docname != root_doc:
        return
    pages = {p.stem for p in DOCS.iterdir() if p.suffix in source_suffix and p.stem != root_doc}
    entries = [f"{title} <{name}>" if title else name for name, title in READING_ORDER if name in pages]
    if pages - {name for name, _ in READING_ORDER}:
        entries.append("*")
    source[0] = source[0].replace("READING_ORDER\n", "".join(f"{e}\n" for e in entries))


# -- the filters' values ---------------------------------------------------------------------------
# im2col.kernels hands its arrays out through a module __getattr__ (a fresh copy per read), so
# autodoc would show ndarray's own docstring for them. This directive writes one ``py:data`` entry
# per kernel, with the values read from the module at build time.
from docutils import nodes  # noqa: E402
from docutils.parsers.rst import Directive  # noqa: E402
from docutils.statemachine import StringList  # noqa: E402


class KernelValues(Directive):
    """``.. im2col-kernel-values::``: every named kernel of :mod:`im2col.kernels` with its values."""

    has_content = False

    def run(self):
        import numpy as np

        from im2col import kernels

        lines: list[str] = []
        for name, value in kernels.all_kernels().items():
            text = np.array2string(value, separator=", ", precision=4, suppress_small=True)
            lines += [
                f".. py:data:: {name}",
                "   :type: numpy.ndarray, shape (3, 3), float32",
                "",
                "   ::",
                "",
                *(f"      {row}" for row in text.splitlines()),
                "",
            ]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="im2col.kernels"), self.content_offset, container)
        return container.children


def _fresh_stubs(app) -> None:
    """Delete autosummary's stub pages before it writes them again: a stub left from a function
    that was renamed or removed would otherwise fail the build as a page in no toctree."""
    import shutil

    shutil.rmtree(DOCS / "api" / "generated", ignore_errors=True)


def setup(app):
    app.add_directive("im2col-kernel-values", KernelValues)
    app.connect("builder-inited", _fresh_stubs, priority=100)  # before autosummary's (500)
    app.connect("source-read", _reading_order)
    return {"parallel_read_safe": True}
