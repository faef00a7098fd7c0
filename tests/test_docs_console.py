"""The ``im2col explain`` outputs shown in README.md and docs/*.md are what the command prints now.

A ```console block that holds exactly one command, ``$ im2col explain ...``, followed by its
output is run through :func:`im2col.__main__.main` and compared line for line. Blocks with several
commands, or shortened with ``…``, are examples of usage and are not compared.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from im2col.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
# An unpacked sdist carries the tests and the README but not docs/: nothing to check there.
pytestmark = pytest.mark.skipif(not (ROOT / "docs").is_dir(), reason="not run from a source checkout")
PAGES = [ROOT / "README.md"] + sorted(p for p in (ROOT / "docs").rglob("*.md") if "_build" not in p.parts)
CONSOLE = re.compile(r"^```console\n(.*?)^```", re.S | re.M)


def explain_blocks() -> list[tuple[str, str, str]]:
    """(page, command line, shown output) for every single-command ``im2col explain`` block."""
    found = []
    for page in PAGES:
        for block in CONSOLE.findall(page.read_text(encoding="utf-8")):
            first, _, output = block.partition("\n")
            commands = [line for line in block.splitlines() if line.startswith("$ ")]
            if first.startswith("$ im2col explain ") and len(commands) == 1:
                found.append((str(page.relative_to(ROOT)), first[2:], output))
    return found


BLOCKS = explain_blocks()


def test_the_docs_show_at_least_one_explain_output():
    assert any(page == "docs/how-it-works.md" for page, _, _ in BLOCKS), BLOCKS


@pytest.mark.parametrize(("page", "command", "shown"), BLOCKS, ids=[f"{p}: {c}" for p, c, _ in BLOCKS])
def test_shown_output_is_current(page, command, shown, capsys):
    argv = shlex.split(command)[1:]  # drop the program name
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.rstrip("\n").splitlines() == shown.rstrip("\n").splitlines(), (
        f"{page}: the output of `{command}` changed; paste the new one:\n{printed}"
    )
