"""The pictures render headless (Agg, through Figure directly) and never touch pyplot's state."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import im2col  # noqa: E402
from im2col import data, kernels, plots  # noqa: E402


def _render(fig, tmp_path, name):
    assert isinstance(fig, Figure)
    FigureCanvasAgg(fig).draw()
    path = tmp_path / name
    fig.savefig(path, dpi=60)
    assert path.stat().st_size > 2000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path


def test_every_picture_renders(tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    e = im2col.explain(data.digit_batch(4), kernels.edge_kernels())
    figs = {
        "padding": plots.plot_padded_input(),
        "padding_digit": plots.plot_padded_input(data.digit_three(), padding=1, kernel_size=3, position=(10, 10)),
        "kernels": plots.plot_kernels(),
        "classics": plots.plot_kernels(np.stack([kernels.sobel_x, kernels.blur]), ["sobel_x", "blur"]),
        "unrolled": plots.plot_unrolled(),
        "unrolled_digit": plots.plot_unrolled(e, start=8 * 26, max_columns=60),
        "unrolled_array": plots.plot_unrolled(np.ones((2, 6, 6)), 3, padding=1, stride=2),
        "feature_maps": plots.plot_feature_maps(),
        "sliding": plots.plot_sliding_window(padding=1, positions=[0, 7]),
    }
    for name, fig in figs.items():
        _render(fig, tmp_path, f"{name}.png")
    frames = plots.sliding_window_frames()
    assert len(frames) == 9  # 5×5 input, 3×3 kernel: 9 windows, one frame each
    _render(frames[4], tmp_path, "frame.png")
    assert len(plots.sliding_window_frames(data.digit_three(), positions=[0, 100])) == 2
    # Nothing went through pyplot: no global figures, backend unchanged.
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []
    assert matplotlib.get_backend() == backend


def test_titles_and_labels():
    fig = plots.plot_feature_maps()
    titles = [ax.get_title() for ax in fig.axes[:5]]
    assert titles == ["input 28×28"] + [f"{n} → 26×26" for n in kernels.EDGE_NAMES]
    fig = plots.plot_padded_input()
    assert fig.axes[0].get_title() == "5×5 input, padding 2: 3×3 kernel → 7×7 output"
    fig = plots.plot_unrolled()
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[0] == "(0,0,0)" and labels[-1] == "(0,2,2)"


def test_bad_arguments():
    with pytest.raises(ValueError, match="'image' must be one image"):
        plots.plot_feature_maps(np.zeros((2, 3, 4, 4)))
    with pytest.raises(ValueError, match="'weight'"):
        plots.plot_kernels(np.zeros((2, 3, 3, 3)))
    with pytest.raises(ValueError, match="2 kernels but 1 names"):
        plots.plot_kernels(np.zeros((2, 3, 3)), ["a"])
    with pytest.raises(ValueError, match="'start'"):
        plots.plot_unrolled(start=49)


def test_missing_matplotlib_message(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ImportError, match=r"pip install 'im2col\[plot\]'"):
        plots.plot_kernels()


def test_sliding_window_gif(tmp_path):
    from PIL import Image

    path = plots.save_sliding_window_gif(tmp_path / "w.gif", padding=1, stride=2)
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == 9  # 5×5, pad 1, stride 2: 3×3 window positions, one frame each
        assert gif.info["loop"] == 0
    # Frames really differ: the window moves and the matrix fills.
    frames, cols = plots.sliding_window_gif_frames(padding=1, stride=2)
    assert cols == list(range(9))
    assert len({f.tobytes() for f in frames}) == 9
    # Many positions: a documented, evenly spread subsample with both ends.
    frames, cols = plots.sliding_window_gif_frames(data.digit_three(), padding=1, max_frames=7)
    assert len(frames) == 7 and cols[0] == 0 and cols[-1] == 28 * 28 - 1
    with pytest.raises(ValueError, match="'max_frames' must be at least 1, got 0"):
        plots.save_sliding_window_gif(tmp_path / "x.gif", max_frames=0)
