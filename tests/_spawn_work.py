"""The work that tests/test_threads.py runs in threads and in spawned processes.

It lives apart from the test module because a spawned child imports the module that defines the
function it runs: importing test_threads.py there would import ``conftest``, and with
``benchmarks/conftest.py`` also on ``sys.path`` the child can find the wrong one, fail to unpickle
its task and leave ``Pool.map`` waiting for ever. This module imports only NumPy and im2col.
"""

from __future__ import annotations

import numpy as np

import im2col


def work(seed: int):
    """Columns, a convolution and both its gradients for one random problem."""
    r = np.random.default_rng(seed)
    x = r.standard_normal((4, 8, 20, 20)).astype(np.float32)
    w = r.standard_normal((6, 8, 3, 3)).astype(np.float32)
    y = im2col.conv2d(x, w, padding=1)
    gx, gw, _ = im2col.conv2d_backward(np.ones_like(y), x, w, padding=1)
    return im2col.im2col(x, 3, stride=2), y, gx, gw
