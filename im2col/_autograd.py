"""The public functions' one way up: a call that needs autograd is handed to :mod:`im2col.nn`.

``im2col.conv2d(x, w)`` with a tensor that requires grad must keep autograd, so it runs through
the operators im2col.nn registers with torch, which in turn call the NumPy-level functions. That is
the only import from the public functions up to the torch layer; it happens at call time and only
for such a call, so ``import im2col`` never imports torch (tests/test_imports.py lists this edge
as its one allowed exception).
"""

from __future__ import annotations

from typing import Any


def autograd_call(fn: str, **arguments: Any) -> Any:
    """Run the public function ``fn`` through im2col.nn (imported here, lazily: it imports us)."""
    from . import nn

    return nn._autograd_call(fn, **arguments)
