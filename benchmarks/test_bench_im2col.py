"""im2col: ours beside torch unfold, NumPy's sliding_window_view, and a copy of the same bytes."""

IMPLS = ["ours", "torch unfold", "numpy sliding_window_view", "copy floor"]


def test_im2col(run_case, shape_name, impl):
    run_case("im2col", shape_name, impl)
