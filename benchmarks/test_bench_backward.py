"""conv2d backward (grad input + grad weight): ours beside torch autograd and the two bare GEMMs."""

IMPLS = ["ours", "torch autograd", "2 GEMMs floor torch.mm"]


def test_backward(run_case, shape_name, impl):
    run_case("backward", shape_name, impl)
