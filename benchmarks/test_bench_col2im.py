"""col2im: ours beside torch fold, a NumPy slice-add fold, and a plain copy of the column bytes."""

IMPLS = ["ours", "torch fold", "numpy slice-add", "copy floor"]


def test_col2im(run_case, shape_name, impl):
    run_case("col2im", shape_name, impl)
