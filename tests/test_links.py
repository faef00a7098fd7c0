"""The README and the pages in docs/: every relative link and image resolves, and the structure the
tools rely on holds (the README's length and command markers, heading levels for Sphinx).

A link ``[text](path#anchor)`` must name a file or directory that exists, relative to the page;
an anchor into a Markdown page (or ``#anchor`` alone, into the same page) must be the slug of one of
its headings, as GitHub and MyST make them. Absolute URLs are not fetched.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# An unpacked sdist carries the tests and the README but not docs/: nothing to check there.
pytestmark = pytest.mark.skipif(not (ROOT / "docs").is_dir(), reason="not run from a source checkout")
README = ROOT / "README.md"
PAGES = [README] + sorted(p for p in (ROOT / "docs").rglob("*.md") if "_build" not in p.parts)

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
# [text](target) and ![alt](target), the text allowing one level of nested brackets
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_SRC = re.compile(r"<(?:img|a)\b[^>]*?\b(?:src|href)=\"([^\"]+)\"", re.I)
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
URL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto:, ...


def prose(text: str) -> str:
    """``text`` without fenced code blocks (blank lines keep the line count) or inline code."""
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return INLINE_CODE.sub("``", text)


def slug(heading: str) -> str:
    """GitHub's (and MyST's) anchor for a heading: lower case, punctuation dropped, spaces → '-'."""
    text = heading.replace("`", "").strip().lower()
    text = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LN")
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of ``page``, with GitHub's ``-1``, ``-2`` suffixes for repeats."""
    seen: dict[str, int] = {}
    out = set()
    for _, title in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        s = slug(title)
        n = seen.get(s, 0)
        out.add(s if n == 0 else f"{s}-{n}")
        seen[s] = n + 1
    return out


def links(page: Path) -> list[str]:
    text = prose(page.read_text(encoding="utf-8"))
    return LINK.findall(text) + HTML_SRC.findall(text)


def test_the_helpers_find_links_slugs_and_skip_code(tmp_path):
    page = tmp_path / "probe.md"
    page.write_text(
        'see [a `b`](x.md#c-d) and ![p](img/p.png)\n```bash\n[no](nothing.md)\n```\n<img src="q.png">\n'
        "# Top\n## Same\n## Same\n",
        encoding="utf-8",
    )
    assert links(page) == ["x.md#c-d", "img/p.png", "q.png"]
    assert anchors(page) == {"top", "same", "same-1"}
    assert slug("`im2col explain`: one convolution taken apart") == "im2col-explain-one-convolution-taken-apart"
    assert slug("Rerun on an Intel Xeon (2026-11-30)") == "rerun-on-an-intel-xeon-2026-11-30"
    assert slug("Beyond 2-D, and padding modes") == "beyond-2-d-and-padding-modes"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    bad = []
    for target in links(page):
        if URL.match(target):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{target}: no file {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target}: no heading with anchor #{anchor} in {dest.name}")
    assert not bad, f"{page.relative_to(ROOT)} has broken links:\n" + "\n".join(bad)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_headings_start_with_one_title_and_never_skip_a_level(page):
    """Sphinx (MyST) warns about a page without a single top title or a jump such as # → ###, and
    the docs build treats warnings as errors."""
    levels = [len(h) for h, _ in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8")))]
    assert levels and levels[0] == 1 and levels.count(1) == 1, f"{page.name}: heading levels {levels}"
    jumps = [(a, b) for a, b in zip(levels, levels[1:]) if b > a + 1]
    assert not jumps, f"{page.name}: heading level jumps {jumps}"


def test_readme_is_a_landing_page_with_its_command_blocks():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    for marker in ("<!-- test-command", "<!-- docs-command -->"):
        after = text.split(marker, 1)[1].split("\n", 2)
        assert after[1] == "```bash", f"{marker} must be followed by a ```bash block, got {after[1]!r}"
