"""The explorer page: self-contained, refused when too large, and driven in a real browser.

The browser tests launch Debian's ``chromium`` through playwright (no browser download) and skip
with a reason when either is missing; CI installs both.
"""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

import im2col
from im2col import data, kernels
from im2col.__main__ import main
from im2col.explorer import MAX_CELLS, explorer_html, iframe_html, save_html

# --- without a browser ----------------------------------------------------------------------------


def test_page_is_self_contained():
    page = explorer_html(im2col.explain(data.digit_batch(2), kernels.edge_kernels()))
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and "import(" not in page and "fetch(" not in page
    for attr in ("kernel", "stride", "padding", "dilation"):
        assert f'data-control="{attr}"' in page
    assert 'data-role="output-size"' in page


def test_too_large_is_refused_with_the_sizes():
    e = im2col.explain((1, 3, 64, 64), 5, padding=2)
    with pytest.raises(
        ValueError,
        match=r"explorer: input 3×64×64 with 1 kernel\(s\) of 5×5 would draw 325,318 cells "
        r"\(padded input 13,872, unrolled matrix 307,200, output maps 4,096, weight matrix 75, "
        r"kernels 75\), more than the explorer's limit of "
        r"40,000",
    ):
        explorer_html(e)


def test_iframe_isolates_the_page():
    frame = iframe_html(im2col.explain((1, 1, 5, 5), 3))
    assert frame.startswith('<iframe srcdoc="') and 'sandbox="allow-scripts"' in frame
    assert "<script>" not in frame  # escaped inside srcdoc, so the notebook never runs it


def test_save_html(tmp_path):
    path = save_html(im2col.explain((1, 1, 5, 5), 3, padding=1), tmp_path / "p.html")
    assert (tmp_path / "p.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert path == str(tmp_path / "p.html")


def test_cli_html(tmp_path, capsys):
    out = tmp_path / "e.html"
    args = ["explain", "--input", "1x1x6x6", "--kernel", "3", "--padding", "1", "--stride", "2"]
    assert main([*args, "--html", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    assert 'data-control="padding"' in out.read_text(encoding="utf-8")


def test_cli_html_too_large_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["explain", "--input", "1x3x64x64", "--kernel", "5", "--html", str(tmp_path / "x.html")])
    assert exc.value.code == 2
    assert f"more than the explorer's limit of {MAX_CELLS:,}" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


# --- in a browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("no chromium on PATH (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def open_page(browser, tmp_path):
    pages = []

    def go(e):
        path = tmp_path / f"page{len(pages)}.html"
        save_html(e, path)
        page = browser.new_page()
        errors, requests = [], []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri())
        page.wait_for_selector("[data-cell]")
        pages.append((page, errors, requests, path.as_uri()))
        return page

    yield go
    for page, errors, requests, uri in pages:
        page.close()
        assert errors == [], errors
        assert requests == [uri], requests


def _lit(page, attr):
    vals = page.eval_on_selector_all(f"[{attr}].hl, [{attr}].src", f"es => es.map(e => e.getAttribute('{attr}'))")
    return {tuple(int(v) for v in s.split(",")) for s in vals}


CONFIGS = [
    pytest.param(((1, 1, 7, 7), 3), dict(stride=2), id="stride2"),
    pytest.param(((1, 1, 5, 5), 3), dict(padding=1), id="pad1"),
    pytest.param(((1, 1, 6, 5), 3), dict(padding="same"), id="same"),
    pytest.param(((1, 1, 4, 4), 3), dict(padding=2), id="full"),
    pytest.param(((1, 1, 9, 9), 3), dict(dilation=2, padding=1), id="dilation2"),
]


def _kernels(C, K, kh, kw):
    return np.random.default_rng(0).integers(-2, 3, (K, C, kh, kw)).astype(np.float32)


@pytest.mark.parametrize("shape_k, kw", CONFIGS)
def test_click_output_links_receptive_field_and_column(open_page, shape_k, kw):
    shape, k = shape_k
    e = im2col.explain(shape, k, **kw)
    _check_clicks(open_page(e), e, k=0)


def test_multichannel_several_kernels(open_page):
    x = np.random.default_rng(1).random((1, 2, 6, 7)).astype(np.float32)
    e = im2col.explain(x, _kernels(2, 3, 3, 2), stride=(1, 2), padding=1)
    page = open_page(e)
    _check_clicks(page, e, k=2)
    assert page.locator("[data-input]").count() == 2 * 8 * 9  # every channel, padding included
    assert page.locator("[data-output]").count() == 3 * e.L


def _check_clicks(page, e, k):
    for oh, ow in {(0, 0), (e.OH - 1, e.OW - 1), (e.OH // 2, e.OW // 3)}:
        page.click(f'[data-output="{k},{oh},{ow}"]')
        want = {(s.c, s.h, s.w) for s in e.receptive_field(oh, ow)}
        assert _lit(page, "data-input") == want
        col = oh * e.OW + ow
        assert _lit(page, "data-cell") == {(r, col) for r in range(e.rows)}
        assert _lit(page, "data-weight") == {(k, j) for j in range(e.rows)}
        text = page.inner_text('[data-role="info"]')
        assert f"= {_num(e.output[0, k, oh, ow])}" in text
        page.click(f'[data-output="{k},{oh},{ow}"]')  # unpin


def _num(v):
    v = float(v)
    return str(int(v)) if v.is_integer() else f"{v:.2f}".rstrip("0").rstrip(".")


def test_pointing_at_pixels_and_cells(open_page):
    e = im2col.explain((1, 1, 5, 5), 3, padding=1)
    page = open_page(e)
    page.hover('[data-input="0,2,2"]')  # the centre pixel: in all 9 windows
    cells = _lit(page, "data-cell")
    assert len(cells) == 9 and all(e.source(r, col)[1:3] == (2, 2) for r, col in cells)
    assert "copied 9 times" in page.inner_text('[data-role="info"]')
    page.hover('[data-input="0,0,0"]')
    assert "copied 4 times" in page.inner_text('[data-role="info"]')
    page.hover('[data-cell="0,0"]')
    assert "padding at (0, -1, -1)" in page.inner_text('[data-role="info"]')
    page.hover('[data-cell="8,0"]')
    assert "input pixel (0, 1, 1) = 7" in page.inner_text('[data-role="info"]')
    assert _lit(page, "data-input") == {(0, 1, 1)}
    # A click keeps the highlight while the pointer moves on.
    page.click('[data-cell="8,0"]')
    page.hover('[data-input="0,4,4"]')
    assert _lit(page, "data-input") == {(0, 1, 1)}
    # The keyboard: focus the output map, move with the arrows, Enter pins.
    page.keyboard.press("Escape")
    page.focus('[data-output="0,0,0"] >> xpath=..')
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert _lit(page, "data-input") == {(s.c, s.h, s.w) for s in e.receptive_field(1, 1)}


@pytest.mark.parametrize(
    "control, value, kwargs",
    [
        ("stride", "2", dict(kernel_size=3, stride=2, padding=1)),
        ("padding", "same", dict(kernel_size=3, padding="same")),
        ("padding", "full", dict(kernel_size=3, padding=2)),
        ("padding", "0", dict(kernel_size=3)),
        ("kernel", "5", dict(kernel_size=5, padding=1)),
        ("kernel", "2x3", dict(kernel_size=(2, 3), padding=1)),
        ("dilation", "2", dict(kernel_size=3, dilation=2, padding=1)),
    ],
)
def test_controls_recompute_the_output_size(open_page, control, value, kwargs):
    e = im2col.explain((1, 2, 9, 8), _kernels(2, 2, 3, 3), padding=1)
    page = open_page(e)
    assert page.inner_text('[data-role="output-size"]') == "9×8"
    page.fill(f'[data-control="{control}"]', value)
    page.dispatch_event(f'[data-control="{control}"]', "change")
    oh, ow = im2col.output_size((9, 8), **kwargs)
    assert page.inner_text('[data-role="output-size"]') == f"{oh}×{ow}"
    assert page.locator("[data-output]").count() == 2 * oh * ow
    assert f"= {oh}" in page.inner_text('[data-role="formula"]')


def test_invalid_configuration_says_why(open_page):
    page = open_page(im2col.explain((1, 1, 5, 5), 3))
    page.fill('[data-control="kernel"]', "7")
    page.dispatch_event('[data-control="kernel"]', "change")
    err = page.inner_text('[data-role="error"]')
    assert "output height = -1, but it must be at least 1" in err
    assert page.inner_text('[data-role="output-size"]') == "—"
    page.fill('[data-control="padding"]', "same")
    page.fill('[data-control="stride"]', "2")
    page.dispatch_event('[data-control="stride"]', "change")
    assert "padding 'same' needs stride 1" in page.inner_text('[data-role="error"]')
    page.fill('[data-control="stride"]', "x")
    page.dispatch_event('[data-control="stride"]', "change")
    assert "stride must be a whole number" in page.inner_text('[data-role="error"]')
    page.fill('[data-control="stride"]', "1")
    page.fill('[data-control="kernel"]', "3")
    page.dispatch_event('[data-control="kernel"]', "change")
    assert page.is_hidden('[data-role="error"]')
    assert page.inner_text('[data-role="output-size"]') == "5×5"


def test_animation_fills_columns_and_col2im_counts(open_page):
    e = im2col.explain((1, 1, 5, 5), 3, padding=1)
    page = open_page(e)
    page.click('[data-role="step"]')
    page.click('[data-role="step"]')
    unfilled = page.eval_on_selector_all("[data-cell].unf", "es => es.length")
    assert unfilled == e.rows * (e.L - 2)
    assert _lit(page, "data-input") == {(s.c, s.h, s.w) for s in e.receptive_field(0, 1)}
    page.click('[data-role="show-all"]')
    assert page.eval_on_selector_all(".unf", "es => es.length") == 0
    page.select_option('[data-control="mode"]', "col2im")
    counts = page.eval_on_selector_all("[data-count]", "es => es.map(e => +e.textContent)")
    ones = np.ones((1, 1, 5, 5), np.float32)
    want = im2col.col2im(im2col.im2col(ones, 3, padding=1), (5, 5), 3, padding=1)
    assert counts == want.ravel().astype(int).tolist()
    page.hover('[data-fold="0,0,0"]')
    assert "= 4 × 1" in page.inner_text('[data-role="info"]')


def test_seed_page_in_browser(open_page):
    e = im2col.explain(data.digit_batch(), kernels.edge_kernels())
    page = open_page(e)
    assert page.inner_text('[data-role="output-size"]') == "26×26"
    assert page.locator("[data-cell]").count() == 9 * 676
    page.click('[data-output="1,10,12"]')
    assert _lit(page, "data-input") == {(s.c, s.h, s.w) for s in e.receptive_field(10, 12)}


def test_demo_save_writes_page_and_gif(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from PIL import Image

    assert main(["demo", "--save", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    page = (tmp_path / "explorer.html").read_text(encoding="utf-8")
    assert "the blog post's digit" in page and str(tmp_path / "explorer.html") in out
    with Image.open(tmp_path / "sliding_window.gif") as gif:
        assert gif.n_frames == 25  # the 5×5 teaching input with padding 1
    assert str(tmp_path / "sliding_window.gif") in out


# --- the page's JavaScript twin of im2col/_geometry.py, run in node (no browser) ------------------


def _js_function(src: str, name: str) -> str:
    """The text of the top-level ``function name(...)`` of the page's script, up to its closing brace."""
    start = src.index(f"function {name}(")
    one_line = src.index("\n", start)
    if src[start:one_line].rstrip().endswith("}"):
        return src[start:one_line]
    return src[start : src.index("\n}\n", start) + 2]


@pytest.mark.parametrize(
    "size, k, s, d, padding",
    [
        ((9, 8), (3, 3), (1, 1), (1, 1), "1"),
        ((9, 8), (3, 2), (2, 1), (1, 2), "2x1"),
        ((9, 8), (4, 3), (1, 1), (1, 2), "same"),
        ((9, 8), (5, 5), (2, 3), (1, 1), "valid"),
        ((9, 8), (3, 3), (3, 2), (2, 1), "1,0,2,3"),
        ((7, 11), (3, 2), (2, 2), (2, 3), "full"),
    ],
)
def test_page_output_size_is_the_libraries(size, k, s, d, padding):
    # explorer.js cannot import Python: its padding parser and output-size formula are twins of
    # _geometry.parse_padding (explain's, for 'full') and _geometry.out_sizes, checked here in node
    import json
    import subprocess
    from pathlib import Path

    from im2col import _geometry
    from im2col._explain_args import parse_padding

    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("no node on PATH (apt-get install nodejs)")
    here = Path(im2col.__file__).parent
    src = (here / "explorer_args.js").read_text() + (here / "explorer.js").read_text()
    funcs = "\n".join(_js_function(src, f) for f in ("pairText", "parsePair", "parsePadding"))
    span = re.search(r"const span = [^;]*;", src)
    out = re.search(r"const o = Math\.floor[^;]*;", src)
    assert span and out, "explorer.js's size formula moved: update this test"
    script = f"""{funcs}
const [sizes, k, s, d, text] = JSON.parse(process.argv[1]);
const p = parsePadding(text, k, d, s);
const sizesOut = [0, 1].map((a) => {{ {span.group(0)} {out.group(0)} return o; }});
console.log(JSON.stringify([p, sizesOut]));
"""
    run = subprocess.run([node, "-e", script, json.dumps([size, k, s, d, padding])], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    js_pads, js_out = json.loads(run.stdout)
    arg = tuple(int(v) for v in padding.replace("x", ",").split(",")) if padding[0].isdigit() else padding
    if isinstance(arg, tuple):  # "1" → 1, "2x1" → (2, 1), "1,0,2,3" → ((1, 0), (2, 3)), as the page reads them
        arg = arg[0] if len(arg) == 1 else (arg[:2], arg[2:]) if len(arg) == 4 else arg
    pads = parse_padding(arg, 2, k, d, s)[0] if padding == "full" else _geometry.parse_padding(arg, "t", 2, k, d, s)
    assert tuple(map(tuple, js_pads)) == pads
    assert tuple(js_out) == _geometry.out_sizes("t", size, k, s, pads, d)
