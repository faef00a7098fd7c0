"""examples/what_is_convolution.ipynb runs top to bottom (needs the 'notebook' extra)."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "what_is_convolution.ipynb"


def test_notebook_runs():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    text = "\n".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )  # fmt: skip
    assert "(5 + 2·2 − 3) // 1 + 1 = 7" in text
    assert "(64, 9, 676)" in text and "(64, 4, 26, 26)" in text
    assert any("text/html" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
