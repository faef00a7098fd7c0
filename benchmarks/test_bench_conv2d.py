"""conv2d forward: ours beside torch conv2d (oneDNN), unfold+matmul, NumPy, and the bare GEMMs."""

IMPLS = [
    "ours",
    "torch conv2d",
    "torch unfold+matmul",
    "numpy swv+matmul",
    "GEMM floor torch.mm",
    "GEMM floor np.matmul",
]


def test_conv2d(run_case, shape_name, impl):
    run_case("conv2d", shape_name, impl)
